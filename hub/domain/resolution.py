"""Entity resolution (主体识别): tying a record without a USCC to its business.

The hub learns its business registry from its own traffic: every record that
carries a USCC teaches the business's names, licence numbers (SC/JY) and old
15-digit registration numbers; the registry connector adds addresses. What it
knows of one business is a ``Candidate``.

A record without a USCC is *parked* at its home lookup key: its licence
number if it has one, else its registration number, else its normalised name
(``lookup_keys``). The home key's ``ResolverState`` collects every candidate
registered under any of the record's lookup keys (it *watches* the other
keys, which relay their candidates to it), and ``decide`` picks the business
from that set alone. A decision therefore depends only on which candidates
exist, never on the order records and candidates arrived in: when a new
candidate changes it (a registry record arriving late, or a second business
of the same name making a match ambiguous), the record moves.

No Kafka here: ``hub.flow.resolving`` carries these states and messages.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from typing import Any
from collections.abc import Callable, Iterable

from hub.domain import storage
from hub.domain.identifiers import region, within

NAME, LICENCE, REGISTRATION = "name:", "licence:", "reg:"
LOOKUP_PREFIXES = (NAME, LICENCE, REGISTRATION)

# How a record was tied to its business, strongest first.
BY_LICENCE = "licence"
BY_REGISTRATION_NUMBER = "registration_number"
BY_NAME_IN_REGION = "name_in_region"
BY_NAME_AND_ADDRESS = "name_and_address"
METHODS = (BY_LICENCE, BY_REGISTRATION_NUMBER, BY_NAME_IN_REGION, BY_NAME_AND_ADDRESS)


def is_lookup_key(key: str) -> bool:
    return key.startswith(LOOKUP_PREFIXES)


def _keys(names: Iterable[str], licences: Iterable[str], registrations: Iterable[str]) -> list[str]:
    return [*(LICENCE + x for x in licences), *(REGISTRATION + x for x in registrations), *(NAME + x for x in names)]


def record_keys(name: str, licence: str | None, registration_number: str | None) -> list[str]:
    """A record's lookup keys, its home (where it is parked) first: licence,
    else registration number, else normalised name."""
    return _keys([name], [licence] if licence else [], [registration_number] if registration_number else [])


@dataclass(frozen=True)
class Candidate:
    """What the hub knows of one registered business (登记主体). Every field
    only grows, so merging two views of a business is a union."""

    business_id: str
    # For people: of the spellings seen, the one that sorts first, so that the
    # merge is the same in any order and changes only with a new spelling.
    name: str
    region_code: str
    names: frozenset[str] = frozenset()  # normalised
    addresses: frozenset[str] = frozenset()  # normalised
    licences: frozenset[str] = frozenset()
    registration_numbers: frozenset[str] = frozenset()

    def lookup_keys(self) -> list[str]:
        return _keys(sorted(self.names), sorted(self.licences), sorted(self.registration_numbers))

    def merge(self, other: Candidate) -> Candidate:
        return replace(self, name=min(self.name, other.name), region_code=min(self.region_code, other.region_code),
                       names=self.names | other.names, addresses=self.addresses | other.addresses,
                       licences=self.licences | other.licences,
                       registration_numbers=self.registration_numbers | other.registration_numbers)

    def to_json(self) -> dict[str, Any]:
        return {"business_id": self.business_id, "name": self.name, "region_code": self.region_code,
                "names": sorted(self.names), "addresses": sorted(self.addresses),
                "licences": sorted(self.licences), "registration_numbers": sorted(self.registration_numbers)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Candidate:
        return cls(raw["business_id"], raw["name"], raw["region_code"], frozenset(raw["names"]),
                   frozenset(raw["addresses"]), frozenset(raw["licences"]),
                   frozenset(raw["registration_numbers"]))


@dataclass(frozen=True)
class Decision:
    """The outcome for one record: a business and how it was found, or why not."""

    business_id: str | None = None
    method: str = ""
    matched: str = ""  # the value that matched
    reason: str = ""  # why it is not resolved
    candidates: tuple[str, ...] = ()  # the businesses it could be, when more than one
    # How, for the lead's evidence: a new spelling of the same business
    # changes it too, and the record is sent to the business again with it.
    explanation: str = ""

    @property
    def ambiguous(self) -> bool:
        return self.business_id is None and len(self.candidates) > 1

    def to_json(self) -> list[Any]:
        return [self.business_id, self.method, self.matched, self.reason, list(self.candidates), self.explanation]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Decision:
        return cls(raw[0], raw[1], raw[2], raw[3], tuple(raw[4]), raw[5])


def _resolved(candidate: Candidate, method: str, matched: str) -> Decision:
    return Decision(candidate.business_id, method, matched, explanation=(
        f"{method}: {matched} -> {candidate.business_id} {candidate.name}"))


@dataclass(frozen=True)
class ParkedRecord:
    """A record without a USCC, waiting at its home key (待识别记录)."""

    event_id: str
    provisional_key: str  # where its events sit until resolved
    topic: str  # the event topic it came from
    event: bytes  # the event as received (Confluent wire format)
    name: str  # normalised
    display_name: str
    region_code: str | None  # from its address
    address: str | None  # normalised
    licence: str | None
    registration_number: str | None
    parked_ms: int
    decision: Decision = Decision()

    def lookup_keys(self) -> list[str]:
        return record_keys(self.name, self.licence, self.registration_number)

    def to_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "provisional_key": self.provisional_key, "topic": self.topic,
                "event": base64.b64encode(self.event).decode(), "name": self.name,
                "display_name": self.display_name, "region_code": self.region_code, "address": self.address,
                "licence": self.licence, "registration_number": self.registration_number,
                "parked_ms": self.parked_ms, "decision": self.decision.to_json()}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ParkedRecord:
        return cls(raw["event_id"], raw["provisional_key"], raw["topic"], base64.b64decode(raw["event"]),
                   raw["name"], raw["display_name"], raw["region_code"], raw["address"], raw["licence"],
                   raw["registration_number"], raw["parked_ms"], Decision.from_json(raw["decision"]))


def _overlap(a: str, b: str) -> bool:
    """One division contains the other (a USCC issued by a city, an address in one of its districts)."""
    return within(a, b) or within(b, a)


def _region_name(code: str) -> str:
    place = region(code)
    return f"{code} {place.name}" if place else code


def decide(record: ParkedRecord, candidates: Iterable[Candidate]) -> Decision:
    """Licence number, then registration number, then the normalised name within
    the record's region, then name plus address. A function of the set of
    candidates only."""
    pool = sorted(candidates, key=lambda c: c.business_id)
    by_number = _by_numbers(record, pool)
    if by_number is not None:
        return by_number
    named = [c for c in pool if record.name in c.names]
    if not named:
        return Decision(reason="no registered business has this name (yet)")
    return _by_name(record, named)


def _by_numbers(record: ParkedRecord, pool: list[Candidate]) -> Decision | None:
    """The decision by the record's licence number, else its registration
    number; None when neither is held by any candidate."""
    keys: tuple[tuple[str, str | None, Callable[[Candidate], bool]], ...] = (
        (BY_LICENCE, record.licence, lambda c: record.licence in c.licences),
        (BY_REGISTRATION_NUMBER, record.registration_number,
         lambda c: record.registration_number in c.registration_numbers))
    for method, value, holds in keys:
        if value:
            decision = _by_number(method, value, [c for c in pool if holds(c)])
            if decision is not None:
                return decision
    return None


def _by_number(method: str, value: str, hits: list[Candidate]) -> Decision | None:
    """One holder of the number resolves the record; several leave it for a person."""
    if len(hits) == 1:
        return _resolved(hits[0], method, value)
    if hits:  # one number, several licensees: the registry is wrong, a person must look
        return Decision(reason=f"{method} {value} is registered to {len(hits)} businesses",
                        candidates=tuple(c.business_id for c in hits))
    return None


def _by_name(record: ParkedRecord, named: list[Candidate]) -> Decision:
    """Among the businesses of the record's name: the one in its region, else
    the one at its address, else why not."""
    regional = _in_region(record, named)
    if len(regional) == 1:
        return _resolved(regional[0], BY_NAME_IN_REGION, f"{record.name} in {_region_name(record.region_code or '')}")
    by_address = _at_address(record, named)
    if len(by_address) == 1:
        return _resolved(by_address[0], BY_NAME_AND_ADDRESS, f"{record.name} at {record.address}")
    return _unresolved_by_name(record, regional, named)


def _in_region(record: ParkedRecord, named: list[Candidate]) -> list[Candidate]:
    return [c for c in named if record.region_code and _overlap(c.region_code, record.region_code)]


def _at_address(record: ParkedRecord, named: list[Candidate]) -> list[Candidate]:
    return [c for c in named if record.address and record.address in c.addresses]


def _unresolved_by_name(record: ParkedRecord, regional: list[Candidate], named: list[Candidate]) -> Decision:
    """Why the name tells the business from none: several in the region, no
    region to look in, or only businesses outside it."""
    ids = tuple(c.business_id for c in (regional or named))
    if len(regional) > 1:
        return Decision(reason=f"{len(regional)} registered businesses share this name in "
                               f"{_region_name(record.region_code or '')} and the address tells them apart "
                               "from none", candidates=ids)
    if not record.region_code:
        return Decision(reason="the record's address names no region and matches no registered address",
                        candidates=ids)
    return Decision(reason=f"registered under this name only outside {_region_name(record.region_code)}",
                    candidates=ids)


@dataclass(frozen=True)
class Move:
    """A decision changed: the record leaves ``old`` (a business ID, or None
    for its provisional key) for ``new``."""

    record: ParkedRecord
    old: Decision
    new: Decision
    candidate: Candidate | None  # the business it now belongs to


@dataclass
class ResolverState:
    """One lookup key's state: the candidates registered under it (``own``),
    those relayed from the other keys of records parked here, who watches
    this key, and the records whose home it is."""

    candidates: dict[str, Candidate] = field(default_factory=dict)
    own: set[str] = field(default_factory=set)
    watchers: set[str] = field(default_factory=set)
    records: dict[str, ParkedRecord] = field(default_factory=dict)

    def register(self, candidate: Candidate, relayed: bool) -> list[Move]:
        known = self.candidates.get(candidate.business_id)
        merged = known.merge(candidate) if known else candidate
        if not relayed:
            self.own.add(candidate.business_id)
        if merged == known:
            return []
        self.candidates[candidate.business_id] = merged
        return self._redecide()

    def relay_to(self) -> list[str]:
        """The watchers an own candidate's change must be relayed to."""
        return sorted(self.watchers)

    def park(self, record: ParkedRecord) -> tuple[list[str], list[Move]]:
        """The keys to watch for this record, and its move if it resolves now."""
        if record.event_id in self.records:
            return [], []  # a replay: parked already
        self.records[record.event_id] = record
        return record.lookup_keys()[1:], self._redecide()

    def watch(self, watcher: str) -> list[Candidate]:
        """Register a watcher; the own candidates it must be told of now."""
        self.watchers.add(watcher)
        return [self.candidates[b] for b in sorted(self.own)]

    def _redecide(self) -> list[Move]:
        moves = []
        for event_id, record in sorted(self.records.items()):
            decision = decide(record, self.candidates.values())
            if decision != record.decision:
                self.records[event_id] = replace(record, decision=decision)
                moves.append(Move(record, record.decision, decision,
                                  self.candidates.get(decision.business_id or "")))
        return moves

    def unresolved(self) -> list[ParkedRecord]:
        return [r for r in self.records.values() if r.decision.business_id is None]

    def to_bytes(self) -> bytes:
        return storage.dump({"c": [c.to_json() for c in self.candidates.values()], "o": sorted(self.own),
                             "w": sorted(self.watchers), "r": [r.to_json() for r in self.records.values()]},
                            storage.RESOLVER_STATE_VERSION)

    @classmethod
    def from_bytes(cls, data: bytes) -> ResolverState:
        raw = storage.load(data, storage.RESOLVER_STATE_VERSION, storage.RESOLVER_MIGRATIONS)
        candidates = [Candidate.from_json(c) for c in raw["c"]]
        records = [ParkedRecord.from_json(r) for r in raw["r"]]
        return cls({c.business_id: c for c in candidates}, set(raw["o"]), set(raw["w"]),
                   {r.event_id: r for r in records})
