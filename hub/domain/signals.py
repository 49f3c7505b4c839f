"""New signals (新信号): complaints and tip-offs (投诉举报), batch trace
(可追溯), area risk (风险预警) and related parties (关联主体).

Two of them live in one business's history like the first rules:
``COMPLAINTS`` (distinct complainants against the business) and
``BATCH_TRACE`` (a producer's batch failing at distinct sellers). The others
need what many businesses share, so they meet at **index states**, keyed by
what is shared and kept in the businesses' table:

- ``complainant:<ref>``: every business one complainant filed against. At
  ``serial_filer_businesses`` within the window the complainant is a serial
  filer (职业索赔), and each business is told (``SERIAL``): their filings
  stay as evidence and count toward no threshold.
- ``area:<county>|<item>|<category>``: every business of a county whose
  sample failed one item in one category. The ``AREA_RISK`` lead is the
  area's own (its lead ID, its lifecycle), not any business's.
- ``person:<ref>``: every business one legal representative represents,
  and whether each is listed or has a criminal referral. Each business is
  told of the others that are (``LINK``), unless the representative has
  more than ``related_party_max_businesses`` (an over-common value links
  nothing, as an agent who registers hundreds would link them all).

An index key is an ``IndexKey`` (its ``IndexKind`` and what is shared).
The index states and what changes them are in ``hub.domain.indexes``: a
complainant's and a person's have types of their own, with named members
and what they told (so a replay tells nobody twice); an area's holds a lead,
so it is a business state whose facts are its members' failed samples
(``party``: the member's key, ``party_name``, ``party_region``). The flow
carries the messages.
"""
from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Iterable

from hub.domain.events import COMPLAINT_KINDS, Event, EventKind, Outcome, detail_of
from hub.domain.lifecycle import LeadMark
from hub.domain.names import normalise_name
from hub.domain.records import CreditFields, LeadParty
from hub.domain.rules import D, Fact, LeadDraft, RuleFamily, chains, batch_of, category, lead_id
from hub.settings import RuleSettings

LINK_PREFIX = "link:"
_QUALIFIER = re.compile(r"[（(].*$")


class IndexKind(enum.StrEnum):
    """What an index state gathers businesses by."""

    COMPLAINANT = "complainant"  # one complainant's filings (keyed hash)
    AREA = "area"  # one county's failures of one item in one category
    PERSON = "person"  # one legal representative's businesses (keyed hash)


@dataclass(frozen=True)
class IndexKey:
    """The key of an index state, ``<kind>:<ref>``: a complainant's or a
    person's keyed hash, or an area's ``<county>|<item>|<category>``."""

    kind: IndexKind
    ref: str

    @classmethod
    def parse(cls, key: str) -> IndexKey | None:
        """The index a key names, or None for a business's key."""
        kind, sep, ref = key.partition(":")
        return cls(IndexKind(kind), ref) if sep and kind in _INDEX_KINDS else None

    def __str__(self) -> str:
        return f"{self.kind}:{self.ref}"

    @property
    def area(self) -> tuple[str, str, str]:
        """An area's county, item and category."""
        county, item, kind = self.ref.split("|", 2)
        return county, item, kind


_INDEX_KINDS = frozenset(k.value for k in IndexKind)


class Reason(enum.StrEnum):
    """Why another business of the same legal representative matters."""

    LISTED = "LISTED"  # on the serious-violation list (联合惩戒)
    CRIMINAL_REFERRAL = "CRIMINAL_REFERRAL"  # a lead for transfer to the police


class PartyRole(enum.StrEnum):
    """What another business named on a lead is to it."""

    SELLER = "SELLER"  # batch trace: a seller where the producer's batch failed
    MEMBER = "MEMBER"  # area risk: a business of the area that failed
    RELATED = "RELATED"  # related party: shares the legal representative


_REASON_TEXT = {Reason.LISTED: "已列入严重违法失信名单", Reason.CRIMINAL_REFERRAL: "有移送公安机关的线索"}
_WITHDRAWN_TEXT = {Reason.LISTED: "已移出严重违法失信名单", Reason.CRIMINAL_REFERRAL: "的移送公安机关线索已不成立"}
WITHDRAWN = "-"  # before a reason in a LINK: it no longer holds


@dataclass(frozen=True)
class Party:
    """A business as another state hears of it."""

    key: str
    business_id: str | None
    name: str
    region_code: str | None
    reasons: tuple[str, ...]
    on: dt.date

    def to_message(self) -> dict[str, object]:
        return {"key": self.key, "business_id": self.business_id, "name": self.name,
                "region_code": self.region_code, "reasons": list(self.reasons), "on": self.on}

    @classmethod
    def from_message(cls, message: dict[str, Any] | tuple[str, dict[str, Any]]) -> Party:
        """From a resolution message's ``party`` (a union branch read with its record name)."""
        raw = message[1] if isinstance(message, tuple) else message
        return cls(raw["key"], raw["business_id"], raw["name"], raw["region_code"], tuple(raw["reasons"]), raw["on"])


@dataclass(frozen=True)
class Credit:
    """A business's standing on the serious-violation list (严重违法失信名单),
    from its latest listing record."""

    event_id: str
    listed_on: dt.date
    reason: str | None
    authority: str | None
    removed_on: dt.date | None

    @property
    def listed(self) -> bool:
        return self.removed_on is None

    @property
    def as_of(self) -> dt.date:
        return self.removed_on or self.listed_on

    @classmethod
    def of(cls, event: Event) -> Credit:
        body = detail_of(event)
        return cls(event["event_id"], body["listed_on"], body.get("reason"), body.get("authority"),
                   body.get("removed_on"))

    def record(self) -> CreditFields:
        """The lead record's credit_* fields."""
        return {"credit_status": "LISTED" if self.listed else "REMOVED", "credit_listed_on": self.listed_on,
                "credit_reason": self.reason, "credit_authority": self.authority,
                "credit_removed_on": self.removed_on}

    def to_json(self) -> list[Any]:
        return [self.event_id, self.listed_on.toordinal(), self.reason, self.authority,
                self.removed_on.toordinal() if self.removed_on else None]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Credit:
        event_id, listed, reason, authority, removed = raw[:5]
        return cls(event_id, dt.date.fromordinal(listed), reason, authority,
                   dt.date.fromordinal(removed) if removed else None)


def is_index_key(key: str) -> bool:
    return IndexKey.parse(key) is not None


def complainant_key(event: Event) -> str | None:
    """The index of the complainant of a complaint or tip-off."""
    if event["kind"] not in COMPLAINT_KINDS:
        return None
    return str(IndexKey(IndexKind.COMPLAINANT, str(detail_of(event)["complainant_ref"])))


def area_keys(event: Event) -> list[str]:
    """The areas a failed sample counts in: its county, each failed item
    (without its qualifier: 铅(以Pb计) is 铅), its category. The sampled
    business only: a producer's copy of a seller's sample is not a second
    business failing in the seller's county."""
    if not event["adverse"] or event["business"]["role"] == "PRODUCER" or event["kind"] not in (
            EventKind.SAMPLING_FAILURE.value, EventKind.FARM_SAMPLING.value):
        return []
    county, kind = event["business"]["region_code"] or "", category(event)
    if not re.fullmatch(r"\d{4}(?!00)\d{2}", county) or not kind:
        return []  # no county (a province or city code says too little), or no category
    items = sorted({normalise_name(_QUALIFIER.sub("", f["item"])) for f in event["findings"] if f["failed"]})
    return [str(IndexKey(IndexKind.AREA, f"{county}|{item}|{normalise_name(kind)}")) for item in items if item]


def person_keys(refs: Iterable[str]) -> list[str]:
    return [str(IndexKey(IndexKind.PERSON, ref)) for ref in sorted(refs)]


def legal_representative(event: Event) -> str | None:
    """The keyed hash of the legal representative a registry entry or a listing names."""
    if event["kind"] not in (EventKind.REGISTRATION.value, EventKind.CREDIT_LISTING.value):
        return None
    ref = detail_of(event).get("legal_representative_ref")
    return str(ref) if ref else None


# -- a business's own history ---------------------------------------------
def drafts(business_key: str, facts: list[Fact], serial: set[str], rules: RuleSettings) -> list[LeadDraft]:
    """The new signals' leads on one business: complaints, batch trace, related parties."""
    live = [f for f in facts if not f.moved_to]
    return [*_complaints(business_key, live, serial, rules), *_batches(business_key, live, rules),
            *_related(business_key, live)]


def _complaints(business_key: str, facts: list[Fact], serial: set[str], rules: RuleSettings) -> list[LeadDraft]:
    complaints = [f for f in facts if f.kind in COMPLAINT_KINDS]
    # Each status of a complaint is a record of its own: one judged 不予受理 counts in none of them.
    refused = {f.source_record_id for f in complaints if f.outcome == Outcome.NOT_ACCEPTED.value}
    counted = sorted((f for f in complaints if f.source_record_id not in refused and f.party not in serial),
                     key=lambda f: (f.occurred_on, f.event_id))
    return [_draft(business_key, RuleFamily.COMPLAINTS, group)
            for group in windows(counted, rules.complaints_window_days, rules.complaints_min_complainants, _party)]


def _batches(business_key: str, facts: list[Fact], rules: RuleSettings) -> list[LeadDraft]:
    """One lead per batch of the producer's that failed at enough distinct sellers."""
    batches: dict[str, list[Fact]] = {}
    for fact in facts:
        if fact.adverse and (batch := batch_of(fact)):
            batches.setdefault(batch, []).append(fact)
    out = []
    for group in batches.values():
        if len({f.party for f in group}) >= rules.batch_trace_min_sellers:
            group.sort(key=lambda f: (f.occurred_on, f.event_id))
            # The batch's first sample dates the lead: a later seller joins it.
            first = group[0].occurred_on
            out.append(LeadDraft(lead_id(f"{business_key}|{batch_of(group[0])}", RuleFamily.BATCH_TRACE, first),
                                 RuleFamily.BATCH_TRACE, first, group[-1].occurred_on, tuple(group)))
    return out


def _related(business_key: str, facts: list[Fact]) -> list[LeadDraft]:
    by_day: dict[dt.date, list[Fact]] = {}
    for fact in sorted(facts, key=lambda f: f.event_id):
        if fact.outcome == Outcome.RELATED.value:
            by_day.setdefault(fact.occurred_on, []).append(fact)
    return [LeadDraft(lead_id(business_key, RuleFamily.RELATED_PARTY, day), RuleFamily.RELATED_PARTY, day, day,
                      tuple(links)) for day, links in sorted(by_day.items())]


def windows(facts: list[D], window_days: int, least: int, who: Callable[[D], str]) -> list[list[D]]:
    """Facts (sorted by date) in windows of ``window_days`` holding at least
    ``least`` distinct parties (``who``), chained as the first rules' are."""
    return chains(facts, window_days, lambda window: len({who(f) for f in window}) >= least)


def _draft(key: str, rule: RuleFamily, group: list[Fact]) -> LeadDraft:
    group.sort(key=lambda f: (f.occurred_on, f.event_id))
    return LeadDraft(lead_id(key, rule, group[0].occurred_on), rule, group[0].occurred_on, group[-1].occurred_on,
                     tuple(group))


def parties(rule: str, evidence: Iterable[Fact]) -> list[LeadParty]:
    """The other businesses a lead names, for its record: never a complainant."""
    role = {RuleFamily.BATCH_TRACE.value: PartyRole.SELLER, RuleFamily.AREA_RISK.value: PartyRole.MEMBER,
            RuleFamily.RELATED_PARTY.value: PartyRole.RELATED}.get(rule)
    if role is None:
        return []
    out: dict[tuple[str, str], LeadParty] = {}
    for fact in evidence:
        if not fact.party:
            continue
        link = f"LEGAL_REPRESENTATIVE:{fact.identity}" if role is PartyRole.RELATED else None
        out[(fact.party, link or "")] = {
            "role": role.value, "business_key": fact.party, "name": fact.party_name,
            "business_id": (fact.source_record_id or None) if role is PartyRole.RELATED else _uscc(fact.party),
            "region_code": fact.party_region or None, "link": link}
    return [out[k] for k in sorted(out)]


def _uscc(key: str) -> str | None:
    return key if len(key) == 18 and ":" not in key else None


def also_regions(rule: str, evidence: Iterable[Fact], own: str | None) -> list[str]:
    """Batch trace reaches the sellers' counties too."""
    if rule != RuleFamily.BATCH_TRACE.value:
        return []
    return sorted({f.party_region for f in evidence if f.party_region and f.party_region != own})


def link_fact(other: Party) -> Fact:
    """What a business keeps of a link: evidence for its RELATED_PARTY lead,
    naming the other business and why it matters, never the person. A
    withdrawn reason (the listing removed) replaces the link's fact with one
    that says so and counts for no lead: the lead is superseded, and its
    last record says the other business is no longer listed."""
    withdrawn = other.reasons[0].startswith(WITHDRAWN)
    reason = Reason(other.reasons[0].removeprefix(WITHDRAWN))
    summary = (f"法定代表人同时是{other.name}（{other.business_id or '统一社会信用代码未知'}）的法定代表人，"
               f"该主体{(_WITHDRAWN_TEXT if withdrawn else _REASON_TEXT)[reason]}")
    return Fact(f"{LINK_PREFIX}{other.key}:{reason.value}", "SAMR", EventKind.REGISTRATION.value, other.on, False, "",
                summary, other.business_id or "", 0, identity=reason.value,
                outcome="" if withdrawn else Outcome.RELATED.value,
                party=other.key, party_name=other.name, party_region=other.region_code or "")


def reasons(credit: Credit | None, leads: Iterable[LeadMark]) -> tuple[str, ...]:
    """Why a business matters to its legal representative's other businesses."""
    out = []
    if credit is not None and credit.listed:
        out.append(Reason.LISTED.value)
    if any(m.rule == RuleFamily.CRIMINAL_REFERRAL.value and m.status != "SUPERSEDED" for m in leads):
        out.append(Reason.CRIMINAL_REFERRAL.value)
    return tuple(out)


def area_drafts(key: str, facts: Iterable[Fact], rules: RuleSettings) -> list[LeadDraft]:
    """At an area's index: its AREA_RISK leads, the same whatever order the businesses came in."""
    ordered = sorted(facts, key=lambda f: (f.occurred_on, f.event_id))
    return [_draft(key, RuleFamily.AREA_RISK, group)
            for group in windows(ordered, rules.area_risk_window_days, rules.area_risk_min_businesses, member_name)]


def member_name(fact: Fact) -> str:
    """Who a member of an index is: by name, so that a business that sent
    one record under its USCC and one under its provisional key (no USCC,
    not resolved yet) counts once."""
    return normalise_name(fact.party_name) or fact.party


def _party(fact: Fact) -> str:
    return fact.party
