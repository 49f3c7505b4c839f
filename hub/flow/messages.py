"""What reaches the flow, typed: a ``Record`` as read from a topic becomes
one of four messages (an event, a team's feedback, a clock tick, entity
resolution's traffic), or is refused with a reason code (``Refused``), which
the flow turns into a dead letter."""
from __future__ import annotations

import datetime as dt
import re
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Callable, Iterator, NamedTuple, Union

from hub.domain.events import Event, event_key
from hub.domain.lifecycle import Action
from hub.domain.validation import Invalid, check_record
from hub.flow.codec import DecodeError
from hub.flow.topics import FEEDBACK_TOPIC, RESOLUTION_TOPIC
from hub.settings import ValidationSettings

LEAD_ID = re.compile(r"lead-[0-9a-f]{20}")


class Record(NamedTuple):
    """A message as a topic holds it."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes | None  # None: a tombstone, which no hub topic should carry
    offset: int = -1  # where it sits on its topic, for the dead letter


class Refused(Exception):
    """The record cannot be applied; it becomes a dead letter with this code."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class ResolutionKind(StrEnum):
    REGISTER = "REGISTER"  # what a business's identified records teach a lookup key
    WATCH = "WATCH"  # a lookup key asks another for what it knows
    PARK = "PARK"  # a record without a USCC waits at its home key
    EVENT = "EVENT"  # a resolved record reaches its business
    MOVED = "MOVED"  # a record left this business (or came back)


@dataclass(frozen=True)
class EventMessage:
    """事件: an agency's record, keyed by its business."""

    record: Record
    key: bytes
    event: Event


@dataclass(frozen=True)
class FeedbackMessage:
    """A team's status change on a lead (反馈)."""

    record: Record
    business: bytes
    feedback: dict[str, Any]
    at_ms: int


@dataclass(frozen=True)
class Tick:
    """The lifecycle's clock, on one partition: deadlines are checked as of ``at_ms``."""

    record: Record
    at_ms: int


@dataclass(frozen=True)
class ResolutionMessage:
    record: Record
    key: bytes
    kind: ResolutionKind
    body: dict[str, Any]
    event: Event | None  # the record it carries (PARK, EVENT), decoded and checked


Message = Union[EventMessage, FeedbackMessage, Tick, ResolutionMessage]
Decoder = Callable[[bytes | None], dict[str, Any]]


def resolution_message(kind: ResolutionKind, **fields: Any) -> dict[str, Any]:
    """A message for the resolution topic, every optional field empty but those given."""
    return {"kind": kind.value, "candidate": None, "relayed": False, "watcher": None, "event": None,
            "event_topic": None, "provisional_key": None, "event_id": None, "moved_to": None, **fields}


class Reader:
    """Records into messages: decoded, validated, size-checked."""

    def __init__(self, decoder: Callable[[str], Decoder], limits: ValidationSettings) -> None:
        self.decode_event = decoder("event")
        self.decode_feedback = decoder("feedback")
        self.decode_resolution = decoder("resolution")
        self.limits = limits

    def read(self, record: Record, latest: dt.date) -> Message:
        """``latest``: the last date a record may carry (today, plus the allowed skew)."""
        value = record.value
        if value is None:
            raise Refused("tombstone", "a null value (tombstone): the hub's topics carry none")
        limit = self.limits.max_event_bytes * (4 if record.topic == RESOLUTION_TOPIC else 1)
        if len(value) > limit:
            raise Refused("oversized_message", f"{len(value)} bytes, more than {limit}")
        if record.topic == FEEDBACK_TOPIC:
            return self._feedback(record, value, latest)
        if record.topic == RESOLUTION_TOPIC:
            return self._resolution(record, value, latest)
        event = self.event(value, latest)
        # A producer that did not key by business: still joinable.
        return EventMessage(record, record.key if record.key is not None else event_key(event).encode(), event)

    def event(self, value: bytes, latest: dt.date, code: str = "undecodable_event") -> Event:
        with _refusing(code):
            event = self.decode_event(value)
            check_record(event, self.limits, latest)
        return event

    def _feedback(self, record: Record, value: bytes, latest: dt.date) -> FeedbackMessage | Tick:
        with _refusing("undecodable_feedback"):
            feedback = self.decode_feedback(value)
            ahead = self.limits.max_tick_ahead_days if feedback["action"] == Action.TICK else 0
            check_record(feedback, self.limits, latest + dt.timedelta(days=ahead))
        at_ms = int(feedback["at"].timestamp() * 1000)
        if feedback["action"] == Action.TICK:
            return Tick(record, at_ms)
        if not LEAD_ID.fullmatch(feedback["lead_id"]):  # a forged field could hold anything: never echo it
            raise Refused("unknown_lead", "feedback on something that is no lead ID")
        return FeedbackMessage(record, feedback["business_key"].encode(), feedback, at_ms)

    def _resolution(self, record: Record, value: bytes, latest: dt.date) -> ResolutionMessage:
        with _refusing("undecodable_resolution"):
            body = self.decode_resolution(value)
        event = None if body["event"] is None else self.event(body["event"], latest, "undecodable_resolution")
        if record.key is None:
            raise Refused("unkeyed_resolution", "a resolution message needs its key")
        kind = ResolutionKind(body["kind"])
        if kind in (ResolutionKind.EVENT, ResolutionKind.PARK) and event is None:
            raise Refused("incomplete_resolution", f"a {kind} message needs its event")
        return ResolutionMessage(record, record.key, kind, body, event)


@contextmanager
def _refusing(code: str) -> Iterator[None]:
    """Decoding and validation failures as ``Refused``, with their reason codes."""
    try:
        yield
    except DecodeError as exc:
        raise Refused(exc.reason_code or code, str(exc)) from None
    except Invalid as exc:
        raise Refused(exc.reason_code, str(exc)) from None
