"""How the worker's states are stored on the changelog: JSON with an explicit
version ``v``. A state written before versions were kept has no ``v`` and
counts as version 1.

A business's state is a ``BusinessRecord``; its facts and lead marks are
``FactRecord`` and ``MarkRecord``: named, typed fields written compactly as
JSON arrays in their declared order (``msgspec``'s ``array_like``). The rule
between releases: a new version may only add fields, at the end of a record
with a default, or as a new key with a default; so a release reads what a
newer one wrote by ignoring the fields it does not know, and a newer release
reads an older record by the defaults of the fields it lacks. Versions 2 to
6 changed the layout only so (follow-through, the new signals, lead
versions, records by name): nothing to migrate but the defaults. Version 1
kept merged reports without their dates and lead marks without their
lifecycle: ``business_v1_to_v2`` migrates those, tested with a real
changelog's worth of version 1 states. Changing what a field means needs a
new contract, not a new version."""
from __future__ import annotations

import datetime as dt
from typing import Any
from collections.abc import Callable, Mapping

import msgspec
import orjson

from hub.domain.lifecycle import LeadMark, LeadStatus
from hub.domain.rules import Fact

BUSINESS_STATE_VERSION = 6
RESOLVER_STATE_VERSION = 2

Raw = dict[str, Any]


class Report(msgspec.Struct, array_like=True, frozen=True):
    """A near-duplicate report merged into a fact."""

    event_id: str
    source_record_id: str
    day: int  # the report's date, as an ordinal


class FactRecord(msgspec.Struct, array_like=True, frozen=True):
    """A fact (``hub.domain.rules.Fact``) as stored; dates as ordinals."""

    event_id: str
    agency: str
    kind: str
    occurred_on: int
    adverse: bool
    criminal: str
    summary: str
    source_record_id: str
    received_ms: int
    # version 2: categories, near-duplicates, resolution
    category: str = ""
    identity: str = ""
    also_reported: list[Report] = []
    resolution: str = ""
    moved_to: str = ""
    # version 3: follow-through
    outcome: str = ""
    due: int = 0
    delay_days: int = 0
    # version 4: the new signals
    party: str = ""
    party_name: str = ""
    party_region: str = ""


class HistoryEntry(msgspec.Struct, array_like=True, frozen=True):
    at_ms: int
    status: str
    team: str | None = None
    note: str | None = None


class LinkRecord(msgspec.Struct, array_like=True, frozen=True):
    kind: str
    event_id: str
    day: int  # an ordinal
    lead_id: str


class MarkRecord(msgspec.Struct, array_like=True, frozen=True):
    """A lead mark (``hub.domain.lifecycle.LeadMark``) as stored."""

    first_seen_ms: int
    fingerprint: str
    rule: str
    window_start: int  # an ordinal
    evidence: list[str] = []
    status: str = "OPEN"
    # version 2: the lifecycle
    opened_ms: int = 0
    history: list[HistoryEntry] = []
    escalated: list[str] = []
    chained: list[str] = []
    reopened: int = 0
    closed_ms: int | None = None
    # Retired: the escalation the last record carried (every record now
    # carries the latest, ``escalated[-1]``). Read past, written as None.
    retired_escalation: str | None = None
    # version 3: follow-through
    links: list[LinkRecord] = []
    oversight: bool = False
    # version 5: lead versions
    version: int = 0


class BusinessRecord(msgspec.Struct, omit_defaults=False):
    """A business's (or an index's) state as stored: one-letter keys, as
    every version wrote them."""

    n: str  # name
    b: str | None  # USCC
    r: str | None  # region code
    p: int | None  # pruned through (an ordinal)
    f: list[FactRecord]
    l: dict[str, MarkRecord]  # noqa: E741 (the stored key since version 1)
    k: dict[str, Any] | None = None  # what it taught the registry (a Candidate)
    q: list[str] = []  # persons' keyed tokens
    o: list[str] = []  # the outbox
    w: str = ""  # the incarnation that wrote it
    x: list[str] = []  # flagged rectifications, and what an index told
    # version 4: the new signals
    c: list[Any] | None = None  # credit standing
    s: list[str] = []  # serial filers
    y: list[str] = []  # legal representatives' keyed hashes
    m: str = ""  # what it last told its representatives' indexes
    v: int = 1


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(BusinessRecord)


def dump_business(record: BusinessRecord) -> bytes:
    return _ENCODER.encode(record)


def load_business(data: bytes) -> BusinessRecord:
    """A stored business state of any version, as the current record."""
    try:
        record = _DECODER.decode(data)
    except msgspec.ValidationError:
        record = None  # a version 1 layout (merged reports without dates) is not a valid record yet
    if record is not None and record.v > 1:
        return record
    raw: Raw = orjson.loads(data)
    if raw.get("v", 1) > 1:
        raise msgspec.ValidationError(f"a stored state of version {raw['v']} does not decode")
    return msgspec.convert(business_v1_to_v2(raw), BusinessRecord)


def dump(raw: Raw, version: int) -> bytes:
    # orjson writes what json.dumps(ensure_ascii=False, compact separators)
    # does, byte for byte, about eight times faster (read: three times).
    return orjson.dumps({"v": version, **raw})


def load(data: bytes, version: int, migrations: Mapping[int, Callable[[Raw], Raw]]) -> Raw:
    raw: Raw = orjson.loads(data)
    written = raw.get("v", 1)
    while written < version:
        raw = migrations[written](raw)
        written += 1
    return raw


def _fact_v1(fact: list[Any]) -> list[Any]:
    """Merged reports kept without their date (the finding's date stands in)."""
    if len(fact) > 11:
        fact = [*fact[:11], [[e, s, *(d or [fact[3]])] for e, s, *d in fact[11]], *fact[12:]]
    return fact


def _lead_v1(mark: list[Any]) -> list[Any]:
    """Marks of 6 fields (before the lifecycle): open since first seen, no history."""
    return [*mark, mark[0]] if len(mark) == 6 else mark


def business_v1_to_v2(raw: Raw) -> Raw:
    return {"n": raw["n"], "b": raw["b"], "r": raw["r"], "p": raw.get("p"),
            "f": [_fact_v1(f) for f in raw["f"]], "l": {k: _lead_v1(m) for k, m in raw["l"].items()},
            "k": raw.get("k"), "q": raw.get("q") or [], "o": raw.get("o") or [], "w": raw.get("w") or "", "v": 2}


def resolver_v1_to_v2(raw: Raw) -> Raw:
    return raw  # the contents are unchanged: version 2 only writes its version


RESOLVER_MIGRATIONS = {1: resolver_v1_to_v2}


def fact_record(fact: Fact) -> FactRecord:
    return FactRecord(fact.event_id, fact.agency, fact.kind, fact.occurred_on.toordinal(), fact.adverse,
                      fact.criminal, fact.summary, fact.source_record_id, fact.received_ms, fact.category,
                      fact.identity, [Report(*r) for r in fact.also_reported], fact.resolution, fact.moved_to,
                      fact.outcome, fact.due, fact.delay_days, fact.party, fact.party_name, fact.party_region)


def fact_of(record: FactRecord) -> Fact:
    return Fact(record.event_id, record.agency, record.kind, dt.date.fromordinal(record.occurred_on),
                record.adverse, record.criminal, record.summary, record.source_record_id, record.received_ms,
                record.category, record.identity,
                tuple((r.event_id, r.source_record_id, r.day) for r in record.also_reported), record.resolution,
                record.moved_to, record.outcome, record.due, record.delay_days, record.party, record.party_name,
                record.party_region)


def mark_record(mark: LeadMark) -> MarkRecord:
    return MarkRecord(mark.first_seen_ms, mark.fingerprint, mark.rule, mark.window_start.toordinal(),
                      list(mark.evidence), str(mark.status), mark.opened_ms, [HistoryEntry(*h) for h in mark.history],
                      list(mark.escalated), list(mark.chained), mark.reopened, mark.closed_ms, None,
                      [LinkRecord(*k) for k in mark.links], mark.oversight, mark.version)


def mark_of(record: MarkRecord) -> LeadMark:
    return LeadMark(record.first_seen_ms, record.fingerprint, record.rule, dt.date.fromordinal(record.window_start),
                    tuple(record.evidence), LeadStatus(record.status), record.opened_ms,
                    [(h.at_ms, h.status, h.team, h.note) for h in record.history], tuple(record.escalated),
                    tuple(record.chained), record.reopened, record.closed_ms,
                    tuple((k.kind, k.event_id, k.day, k.lead_id) for k in record.links), record.oversight,
                    record.version)
