"""What the flow asks of the world for a batch, in the order it must happen:

1. ``first``: what a replay would derive again: entity resolution's
   messages, outcomes for the agencies, dead letters;
2. ``states``: the changed business and resolver states, encoded;
3. ``leads``: every lead's copies, the operators' in full and each
   receiving team's redacted one.

The states record the leads before the leads are sent (``BusinessState.resume``
publishes what a writer that died owed), so the edge must finish each step
before the next. ``observations`` are what happened, for metrics; the flow
never calls a metric itself.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from collections.abc import Mapping

from hub.audit.entries import Note


@dataclass(frozen=True)
class Send:
    """A record for a topic, not yet encoded: ``contract`` names its schema."""

    topic: str
    key: bytes
    contract: str
    value: Mapping[str, Any]


@dataclass(frozen=True)
class StateWrite:
    table: str
    key: bytes
    value: bytes


class Seen(Enum):
    """Things the flow observed, each with a label (and a value where one is measured)."""

    EVENT = "event"  # label: agency
    DUPLICATE = "duplicate"  # label: agency
    NEAR_DUPLICATE = "near_duplicate"  # label: agency
    DEAD_LETTER = "dead_letter"  # label: reason code
    UNTRUSTED = "untrusted"  # label: reason code (a record whose sender is not proven or not allowed)
    LEAD_PUBLISHED = "lead_published"  # label: rule
    EVENT_TO_LEAD = "event_to_lead"  # value: seconds
    REOPENED = "reopened"
    ESCALATED = "escalated"  # label: level
    ACKNOWLEDGED_AFTER = "acknowledged_after"  # label: severity; value: seconds
    CLOSED_AFTER = "closed_after"  # label: severity; value: seconds
    RESOLVED = "resolved"  # label: method
    TICK = "tick"  # label: partition: its deadlines were checked
    REPORTING_DELAY = "reporting_delay"  # label: connector; kind: event kind; value: seconds (迟报)
    LATE_CRITICAL = "late_critical"  # label: connector: a late finding in a CRITICAL lead
    SIGNAL = "signal"  # label: the message kind between a business and an index (SIGNAL, SERIAL, MEMBER, LINK)


@dataclass(frozen=True)
class Observation:
    seen: Seen
    label: str = ""
    value: float = 1.0
    kind: str = ""  # a second label, where one is needed


@dataclass(frozen=True)
class Unresolved:
    """Records without a USCC not tied to a business, on the owned partitions."""

    parked: int = 0
    ambiguous: int = 0
    oldest_parked_ms: int | None = None


class Stage(Enum):
    """Where a batch's time goes, for ``hub bench``: the flow's own stages,
    and the edge's (``ENCODE``, ``SIGN``, ``SEND``, ``STATE_WRITE``, ``FENCE``)."""

    VERIFY = "verify signature"
    DECODE = "decode and validate"
    STATE_LOAD = "state load"
    RULES = "rules and lifecycle"
    LEAD_BUILD = "lead build and routing"
    STATE_ENCODE = "state encode"
    ENCODE = "Avro encode"
    SIGN = "sign"
    AUDIT = "audit trail"
    SEND = "send and wait for acks"
    STATE_WRITE = "state write (changelog)"
    FENCE = "fence (heartbeats)"


@dataclass
class Effects:
    first: list[Send] = field(default_factory=list)
    states: list[StateWrite] = field(default_factory=list)
    leads: list[Send] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    audit: list[Note] = field(default_factory=list)  # for the audit trail: who did what, and what came of it
    oldest_received_at: float | None = None  # epoch seconds, of the batch's oldest event
    unresolved: Unresolved = Unresolved()
    seconds: defaultdict[Stage, float] = field(default_factory=lambda: defaultdict(float))  # time per stage
