"""Index states (see ``hub.domain.signals``): what many businesses share
meets at a state keyed by what is shared, kept in the businesses' table.

- A complainant's index is a ``ComplainantIndex``: the complainant's
  filings (which business, when) and the businesses it told that the
  complainant files serially.
- A legal representative's index is a ``PersonIndex``: the businesses they
  represent (``Member``: name, USCC, division, why each matters) and the
  links it told (``Told``: to whom, of which business, for which reason).
- An area's index holds a lead of its own (AREA_RISK, with its lifecycle),
  so it is a ``BusinessState`` whose facts are its members' failed samples,
  each naming its business (``party``).

These functions change an index state; the flow carries the messages. Both
index types are stored with an explicit version (``INDEX_STATE_VERSION``);
one stored by a release before they had types of their own (a business
state's layout) is read through a tested migration (``_from_business``)."""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

import msgspec

from hub.domain.events import UNRESOLVED_PREFIX, Event
from hub.domain.identifiers import region
from hub.domain.leads import BusinessState
from hub.domain.names import normalise_name
from hub.domain.rules import history_horizon, kept_history, to_fact
from hub.domain.signals import WITHDRAWN, IndexKey, IndexKind, Party, windows
from hub.settings import RuleSettings

INDEX_STATE_VERSION = 1
# Before index states had types of their own, a person index kept each
# member as a fact with this event-ID prefix, and both kinds kept what they
# told as ``told:`` entries of the business state's ``flagged`` set.
_LEGACY_MEMBER = "member:"
_LEGACY_TOLD = "told:"


# -- a complainant's index ------------------------------------------------
@dataclass(frozen=True)
class Filing:
    """A complaint or tip-off at its complainant's index."""

    event_id: str
    business: str  # the business's key
    name: str  # the business's name
    occurred_on: dt.date


@dataclass
class ComplainantIndex:
    """Every business one complainant filed against (职业索赔 once they are
    ``serial_filer_businesses`` within the window), and the businesses told so."""

    filings: dict[str, Filing] = field(default_factory=dict)  # by event ID
    told: set[str] = field(default_factory=set)  # business keys

    def snapshot(self) -> ComplainantIndex:
        return ComplainantIndex(dict(self.filings), set(self.told))


def count(index: ComplainantIndex, event: Event, subject: Party, rules: RuleSettings) -> bool:
    """A complaint at its complainant's index; whether it is new there."""
    known = index.filings.get(event["event_id"])
    if known is not None:
        if not _renamed(known.business, subject.key):
            return False
        index.filings[known.event_id] = dataclasses.replace(known, business=subject.key, name=subject.name)
        return True
    index.filings[event["event_id"]] = Filing(event["event_id"], subject.key, subject.name, event["occurred_on"])
    _prune_filings(index, rules)
    return True


def _renamed(known: str, subject: str) -> bool:
    """The same record, first counted under its business's provisional key
    (not resolved yet), then again once resolution moved it to the USCC: the
    index names the business by its USCC, as it would had resolution come
    first, so what it tells does not depend on that race."""
    return known.startswith(UNRESOLVED_PREFIX) and not subject.startswith(UNRESOLVED_PREFIX)


def _prune_filings(index: ComplainantIndex, rules: RuleSettings) -> None:
    """The history a business's state keeps: ``history_days`` back from the
    latest filing, at most ``history_max_events``."""
    kept = kept_history(index.filings.values(), history_horizon(index.filings.values(), rules),
                        rules.history_max_events)
    if len(kept) < len(index.filings):
        index.filings = {f.event_id: f for f in kept}


def serial_to_tell(index: ComplainantIndex, rules: RuleSettings) -> list[str]:
    """The businesses to tell that the complainant is a serial filer (once
    it is one, every business it filed against, and each it files against
    later), each once."""
    filings = sorted(index.filings.values(), key=lambda f: (f.occurred_on, f.event_id))
    if not windows(filings, rules.complaints_window_days, rules.serial_filer_businesses, _filer_business):
        return []
    told = sorted({f.business for f in filings} - index.told)
    index.told.update(told)
    return told


def _filer_business(filing: Filing) -> str:
    """A business by name, so that one that filed under its USCC and under
    its provisional key counts once."""
    return normalise_name(filing.name) or filing.business


# -- an area's index ------------------------------------------------------
def count_sample(state: BusinessState, key: IndexKey, event: Event, subject: Party, rules: RuleSettings) -> bool:
    """A business's failed sample at an area's index; whether it is new
    there. No near-duplicate merging: two businesses' alike results are two
    businesses failing."""
    known = state.facts.get(event["event_id"])
    if known is not None:
        if not _renamed(known.party, subject.key):
            return False
        state.facts[known.event_id] = dataclasses.replace(known, party=subject.key, party_name=subject.name,
                                                          party_region=subject.region_code or "")
        return True
    fact = dataclasses.replace(to_fact(event, rules), party=subject.key, party_name=subject.name,
                               party_region=subject.region_code or "", identity="", resolution="")
    state.facts[fact.event_id] = fact
    if not state.name:
        county, item, kind = key.area
        place = region(county)
        state.name, state.region_code = f"{place.name if place else county} {kind} {item} 区域风险", county
    state.prune(rules)
    return True


# -- a legal representative's index -----------------------------------------
@dataclass(frozen=True)
class Member:
    """A business one legal representative represents, as it last said."""

    key: str
    business_id: str | None
    name: str
    region_code: str | None
    reasons: tuple[str, ...]  # Reason values, sorted: why it matters to the others
    on: dt.date

    @classmethod
    def of(cls, party: Party) -> Member:
        return cls(party.key, party.business_id, party.name, party.region_code, tuple(sorted(party.reasons)),
                   party.on)


@dataclass(frozen=True, order=True)
class Told:
    """A link told: business ``to`` was told that ``about`` matters, for ``reason``."""

    to: str
    about: str
    reason: str


@dataclass
class PersonIndex:
    """Every business one legal representative represents, and the links told."""

    members: dict[str, Member] = field(default_factory=dict)  # by business key
    told: set[Told] = field(default_factory=set)

    def snapshot(self) -> PersonIndex:
        return PersonIndex(dict(self.members), set(self.told))


def member(index: PersonIndex, party: Party, rules: RuleSettings) -> list[tuple[str, Party]]:
    """A business says it is the representative's (and why it matters, if it
    does). The links to tell, each once: (to whom, the other business, with
    one reason); a reason told that holds no more (a listing removed) is
    told as withdrawn, once. A representative of more than
    ``related_party_max_businesses`` links nothing (an agent who registers
    hundreds would link them all)."""
    if party.key not in index.members and len(index.members) > rules.related_party_max_businesses:
        return []  # over-common already: it links nothing, and need not keep counting
    index.members[party.key] = Member.of(party)
    if len(index.members) > rules.related_party_max_businesses:
        return []
    out = []
    for one in sorted(index.members):
        for other in sorted(index.members):
            if one != other:
                out += _links(index, index.members[one], index.members[other])
    return out


def _links(index: PersonIndex, one: Member, other: Member) -> list[tuple[str, Party]]:
    """What ``one`` is to be told of ``other``: each current reason once, and
    each reason told before that holds no more, as withdrawn."""
    out = []
    for reason in other.reasons:
        told = Told(one.key, other.key, reason)
        if told not in index.told:
            index.told.add(told)
            out.append((one.key, _other(one, other, reason)))
    for told in sorted(t for t in index.told if t.to == one.key and t.about == other.key):
        if told.reason not in other.reasons:
            index.told.discard(told)
            out.append((one.key, _other(one, other, WITHDRAWN + told.reason)))
    return out


def _other(one: Member, other: Member, reason: str) -> Party:
    return Party(other.key, other.business_id, other.name, other.region_code, (reason,), max(one.on, other.on))


# -- storage -----------------------------------------------------------------
class _FilingRecord(msgspec.Struct, array_like=True, frozen=True):
    event_id: str
    business: str
    name: str
    occurred_on: int  # an ordinal


class _MemberRecord(msgspec.Struct, array_like=True, frozen=True):
    key: str
    business_id: str | None
    name: str
    region_code: str | None
    reasons: list[str]
    on: int  # an ordinal


class _ToldRecord(msgspec.Struct, array_like=True, frozen=True):
    to: str
    about: str
    reason: str


class _ComplainantRecord(msgspec.Struct, tag="complainant", tag_field="i"):
    filings: list[_FilingRecord]
    told: list[str]
    v: int = INDEX_STATE_VERSION


class _PersonRecord(msgspec.Struct, tag="person", tag_field="i"):
    members: list[_MemberRecord]
    told: list[_ToldRecord]
    v: int = INDEX_STATE_VERSION


IndexState = ComplainantIndex | PersonIndex
_DECODER = msgspec.json.Decoder(_ComplainantRecord | _PersonRecord)
_ENCODER = msgspec.json.Encoder()


def index_kind(key: bytes) -> IndexKind | None:
    """The kind of index state a key holds, for the kinds with a type of
    their own (a complainant's, a person's); None for a business or an area."""
    parsed = IndexKey.parse(key.decode())
    return parsed.kind if parsed is not None and parsed.kind is not IndexKind.AREA else None


def new_index(kind: IndexKind) -> IndexState:
    return ComplainantIndex() if kind is IndexKind.COMPLAINANT else PersonIndex()


def to_bytes(index: IndexState) -> bytes:
    if isinstance(index, ComplainantIndex):
        return _ENCODER.encode(_ComplainantRecord(
            [_FilingRecord(f.event_id, f.business, f.name, f.occurred_on.toordinal())
             for f in sorted(index.filings.values(), key=lambda f: f.event_id)], sorted(index.told)))
    return _ENCODER.encode(_PersonRecord(
        [_MemberRecord(m.key, m.business_id, m.name, m.region_code, list(m.reasons), m.on.toordinal())
         for _, m in sorted(index.members.items())],
        [_ToldRecord(t.to, t.about, t.reason) for t in sorted(index.told)]))


def from_bytes(kind: IndexKind, data: bytes) -> IndexState:
    """An index state as stored; one stored as a business state (before
    index states had types of their own) is migrated."""
    try:
        record = _DECODER.decode(data)
    except msgspec.ValidationError:  # no index record: the layout of before
        return _from_business(kind, BusinessState.from_bytes(data))
    if isinstance(record, _ComplainantRecord):
        return ComplainantIndex(
            {f.event_id: Filing(f.event_id, f.business, f.name, dt.date.fromordinal(f.occurred_on))
             for f in record.filings}, set(record.told))
    return PersonIndex({m.key: Member(m.key, m.business_id, m.name, m.region_code, tuple(m.reasons),
                                      dt.date.fromordinal(m.on)) for m in record.members},
                       {Told(t.to, t.about, t.reason) for t in record.told})


def _from_business(kind: IndexKind, state: BusinessState) -> IndexState:
    """An index kept in a business state's layout (storage version 6 and
    before): a complainant's filings were facts naming their business
    (``party``); a person's members were facts keyed ``member:<key>``, the
    USCC in ``summary`` and the reasons, comma-joined, in ``identity``;
    what either told was in ``flagged`` as ``told:`` entries."""
    told = [t.removeprefix(_LEGACY_TOLD) for t in state.flagged if t.startswith(_LEGACY_TOLD)]
    if kind is IndexKind.COMPLAINANT:
        return ComplainantIndex({f.event_id: Filing(f.event_id, f.party, f.party_name, f.occurred_on)
                                 for f in state.facts.values()}, set(told))
    members = {f.party: Member(f.party, f.summary or None, f.party_name, f.party_region or None,
                               tuple(r for r in f.identity.split(",") if r), f.occurred_on)
               for f in state.facts.values() if f.event_id.startswith(_LEGACY_MEMBER)}
    return PersonIndex(members, {_legacy_told(t, members) for t in told})


def _legacy_told(entry: str, members: dict[str, Member]) -> Told:
    """``<to>><about>:<reason>``: a reason holds no ``:``; the pair is split
    where it names two members (a provisional key may hold a ``>``)."""
    pair, reason = entry.rsplit(":", 1)
    to, about = next(((k, pair[len(k) + 1:]) for k in members
                      if pair.startswith(k + ">") and pair[len(k) + 1:] in members), pair.split(">", 1))
    return Told(to, about, reason)

