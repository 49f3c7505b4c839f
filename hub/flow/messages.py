"""What reaches the flow, typed: a ``Record`` as read from a topic becomes
one of four messages (an event, a team's feedback, a clock tick, entity
resolution's traffic), or is refused with a reason code (``Refused``), which
the flow turns into a dead letter."""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple, cast
from collections.abc import Callable, Iterator, Mapping

from hub.domain.events import Agency, Event, event_key
from hub.domain.lifecycle import Action
from hub.domain.records import Feedback
from hub.domain.resolution import Candidate
from hub.domain.signals import Party
from hub.domain.validation import Invalid, check_record
from hub.domain.teams import Team
from hub.flow.codec import DecodeError
from hub.flow.topics import FEEDBACK_TOPIC, RESOLUTION_TOPIC, events_topic, feedback_topic
from hub.settings import FlowSettings
from hub.trust import Role, Untrusted, Verified, Verifier
from hub.trust.signatures import Headers

LEAD_ID = re.compile(r"lead-[0-9a-f]{20}")


class Record(NamedTuple):
    """A message as a topic holds it."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes | None  # None: a tombstone, which no hub topic should carry
    offset: int = -1  # where it sits on its topic, for the dead letter
    headers: Headers = ()  # the sender's signature among them
    timestamp_ms: int | None = None  # the broker's, when known


# Refusals that say the sender is not proven, or not allowed to say what it
# said: forgeries, tampering, replays, stolen or retired keys.
UNTRUSTED_CODES = frozenset({
    "unsigned", "malformed_signature", "unknown_key", "revoked_key", "bad_signature", "replayed",
    "signed_in_future", "not_authorised", "wrong_agency", "wrong_connector", "wrong_team", "team_not_recipient",
    "bad_timestamp",
    "misrouted_event", "misrouted_feedback", "tick_too_far_ahead", "oversight_read_only"})


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
    # Cross-business signals (hub.domain.signals, hub.flow.signalling):
    SIGNAL = "SIGNAL"  # a business's record counted at an index (complainant, area)
    SERIAL = "SERIAL"  # a complainant's index tells a business the complainant files serially
    MEMBER = "MEMBER"  # a business tells its legal representative's index it is theirs
    LINK = "LINK"  # that index tells a business of another of theirs that is listed or referred


@dataclass(frozen=True)
class EventMessage:
    """事件: an agency's record, keyed by its business."""

    record: Record
    key: bytes
    event: Event


@dataclass(frozen=True)
class FeedbackMessage:
    """A team's status change on a lead (反馈), signed by that team."""

    record: Record
    business: bytes
    feedback: Feedback
    at_ms: int


@dataclass(frozen=True)
class Tick:
    """The lifecycle's clock, on one partition: deadlines are checked as of
    ``at_ms``. A worker's, or an operator's drill."""

    record: Record
    at_ms: int


class _Body:
    """A resolution message's fields for its kind (the other fields empty):
    a party or a candidate as its record, everything else as it is."""

    kind: ClassVar[ResolutionKind]

    def fields(self) -> dict[str, Any]:
        return {f.name: _wire(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def _wire(value: Any) -> Any:
    if isinstance(value, Party):
        return value.to_message()
    return value.to_json() if isinstance(value, Candidate) else value


@dataclass(frozen=True)
class Register(_Body):
    """What a business's identified records teach a lookup key; ``relayed``:
    copied on to a key that watches this one."""

    candidate: Candidate
    relayed: bool = False
    kind: ClassVar[ResolutionKind] = ResolutionKind.REGISTER


@dataclass(frozen=True)
class Watch(_Body):
    """A record parked at ``watcher`` also needs this lookup key's candidates."""

    watcher: str
    kind: ClassVar[ResolutionKind] = ResolutionKind.WATCH


@dataclass(frozen=True)
class Park(_Body):
    """A record without a USCC (its event, as published on ``event_topic``)
    waits at its home lookup key; its business's rules see it under
    ``provisional_key`` meanwhile."""

    event: bytes
    event_topic: str
    provisional_key: str
    kind: ClassVar[ResolutionKind] = ResolutionKind.PARK


@dataclass(frozen=True)
class Resolved(_Body):
    """A resolved record (its event, with the resolution's explanation) on its way to its business."""

    event: bytes
    kind: ClassVar[ResolutionKind] = ResolutionKind.EVENT


@dataclass(frozen=True)
class Moved(_Body):
    """A record left this business for ``moved_to``, or came back (``moved_to`` = "")."""

    event_id: str
    moved_to: str
    kind: ClassVar[ResolutionKind] = ResolutionKind.MOVED


@dataclass(frozen=True)
class Signal(_Body):
    """A business's record (its event) counted at an index; ``party``: the business."""

    event: bytes
    party: Party
    kind: ClassVar[ResolutionKind] = ResolutionKind.SIGNAL


@dataclass(frozen=True)
class Serial(_Body):
    """A complainant's index (``index_key``) tells a business the complainant files serially."""

    index_key: str
    kind: ClassVar[ResolutionKind] = ResolutionKind.SERIAL


@dataclass(frozen=True)
class Membership(_Body):
    """A business (``party``) tells its legal representative's index it is
    theirs, and why it matters (``party.reasons``)."""

    party: Party
    kind: ClassVar[ResolutionKind] = ResolutionKind.MEMBER


@dataclass(frozen=True)
class Link(_Body):
    """A representative's index tells a business of another of theirs (``party``) that matters."""

    party: Party
    kind: ClassVar[ResolutionKind] = ResolutionKind.LINK


ResolutionBody = Register | Watch | Park | Resolved | Moved | Signal | Serial | Membership | Link


@dataclass(frozen=True)
class ResolutionMessage:
    """实体识别 and the index signals: the workers' traffic on the resolution topic."""

    record: Record
    key: bytes
    body: ResolutionBody
    event: Event | None  # the record it carries (PARK, EVENT, SIGNAL), decoded and checked

    @property
    def kind(self) -> ResolutionKind:
        return self.body.kind


Message = EventMessage | FeedbackMessage | Tick | ResolutionMessage
Decoder = Callable[[bytes | None], dict[str, Any]]


def resolution_message(body: ResolutionBody) -> dict[str, Any]:
    """A message for the resolution topic: its kind's fields, every other empty."""
    return {"kind": body.kind.value, "candidate": None, "relayed": False, "watcher": None, "event": None,
            "event_topic": None, "provisional_key": None, "event_id": None, "moved_to": None, "party": None,
            "index_key": None, **body.fields()}


class Reader:
    """Records into messages: signatures verified and the sender authorised
    for the topic before anything is decoded, then decoded, validated and
    size-checked.

    Who may write where: an agency's event topic, that agency's connectors
    (and only events of that agency); a team's feedback topic, that team
    (and only answers in its name); the resolution topic, the workers; the
    clock topic, the workers' ticks and operators' drills."""

    def __init__(self, decoder: Callable[[str], Decoder], settings: FlowSettings, verifier: Verifier,
                 teams: Mapping[str, Team]) -> None:
        # The codec reads a record of the event contract: an Event by the schema.
        self.decode_event = cast(Callable[[bytes | None], Event], decoder("event"))
        self.decode_feedback = cast(Callable[[bytes | None], Feedback], decoder("feedback"))
        self.decode_resolution = decoder("resolution")
        self.limits = settings.validation
        self.verifier = verifier
        self.max_tick_ahead_ms = int(settings.max_tick_ahead_s * 1000)
        self.drills_allowed = settings.allow_drills
        self.max_skew_ms = int(settings.signature_max_skew_s * 1000)
        self.event_topics = {events_topic(a): a.value for a in Agency}
        self.team_topics = {feedback_topic(name): name for name in teams}

    def verify(self, record: Record) -> Verified:
        """Who sent the record, proven; first of all, so nothing unproven is even decoded."""
        value = record.value
        if value is None:
            raise Refused("tombstone", "a null value (tombstone): the hub's topics carry none")
        limit = self.limits.max_event_bytes * (4 if record.topic == RESOLUTION_TOPIC else 1)
        if len(value) > limit:
            raise Refused("oversized_message", f"{len(value)} bytes, more than {limit}")
        try:
            return self.verifier.verify(record.topic, record.key, value, record.headers, record.timestamp_ms)
        except Untrusted as exc:
            raise Refused(exc.code, str(exc)) from None

    def read(self, record: Record, signed: Verified, latest: dt.date, now_ms: int) -> Message:
        """The message a verified record holds, if its signer may send it
        there. ``latest``: the last date a record may carry (today, plus the
        allowed skew); ``now_ms``: the worker's clock."""
        value = record.value
        assert value is not None  # verify refused tombstones
        signer = signed.signer
        if record.topic == RESOLUTION_TOPIC:
            _require(signer.role is Role.WORKER, signed, "the resolution topic")
            return self._resolution(record, value, latest)
        if record.topic == FEEDBACK_TOPIC:
            _require(signer.role in (Role.WORKER, Role.OPERATOR), signed, "the clock topic")
            return self._tick(record, value, latest, signed, now_ms)
        team = self.team_topics.get(record.topic)
        if team is not None:
            if signer.role is not Role.TEAM or signer.name != team:
                raise Refused("wrong_team", f"{signer.identity} may not answer on {record.topic}")
            return self._feedback(record, value, latest, signed)
        agency = self.event_topics.get(record.topic)
        if agency is None:
            raise Refused("unknown_topic", f"the workers read no topic {record.topic!r}")
        _require(signer.role is Role.CONNECTOR, signed, record.topic)
        if signer.agency != agency:
            raise Refused("wrong_agency", f"{signer.identity} is a {signer.agency} connector: "
                                          f"it may not publish on {record.topic}")
        event = self.event(value, latest)
        if event["agency"] != agency:
            raise Refused("wrong_agency", f"a {event['agency']} event on {record.topic}")
        if event["source"]["connector"] != signer.name:
            # One connector's key speaks for that connector alone: the 12315
            # connector's may not publish a penalty (its event IDs, which
            # name the connector, could pre-empt the penalty connector's).
            raise Refused("wrong_connector", f"{signer.identity} may not publish another connector's events")
        key = event_key(event).encode()
        if record.key is not None and record.key != key:
            # It would join another business's state, in a partition that is not that business's.
            raise Refused("misrouted_event", "an event keyed by another business than its own")
        return EventMessage(record, key, event)

    def event(self, value: bytes, latest: dt.date, code: str = "undecodable_event") -> Event:
        with _refusing(code):
            event = self.decode_event(value)
            check_record(event, self.limits, latest)
        return event

    def claimed(self, record: Record) -> str | None:
        """The lead a refused answer names, for the audit trail, if the value
        decodes and names one in a lead ID's form: nothing else an unproven
        record says is ever repeated."""
        if record.value is None or not record.topic.startswith(FEEDBACK_TOPIC):
            return None
        try:
            lead = self.decode_feedback(record.value).get("lead_id")
        except Exception:  # whatever it holds, it stays a refused record
            return None
        return lead if isinstance(lead, str) and LEAD_ID.fullmatch(lead) else None

    def _tick(self, record: Record, value: bytes, latest: dt.date, signed: Verified, now_ms: int) -> Tick:
        with _refusing("undecodable_feedback"):
            tick = self.decode_feedback(value)
            check_record(tick, self.limits, latest + dt.timedelta(days=self.limits.max_tick_ahead_days))
        if tick["action"] != Action.TICK:
            raise Refused("wrong_team", "a team's answer belongs on the team's own feedback topic")
        at_ms = int(tick["at"].timestamp() * 1000)
        if at_ms - now_ms > self.max_tick_ahead_ms:
            drill = signed.signer.role is Role.OPERATOR and self.drills_allowed
            if not drill:
                raise Refused("tick_too_far_ahead", f"a tick {(at_ms - now_ms) // 1000} s ahead of the worker's "
                              "clock" + (" (drills are off on this cluster: HUB_ALLOW_DRILLS)"
                                         if signed.signer.role is Role.OPERATOR else ""))
        return Tick(record, at_ms)

    def _feedback(self, record: Record, value: bytes, latest: dt.date, signed: Verified) -> FeedbackMessage:
        with _refusing("undecodable_feedback"):
            feedback = self.decode_feedback(value)
            if feedback["action"] == Action.TICK:
                raise Refused("wrong_team", "a team may not tick the clock")
            check_record(feedback, self.limits, latest)
        if feedback["team"] != signed.signer.name:  # never echoed: a forged field may hold anything
            raise Refused("wrong_team", f"an answer signed by {signed.signer.identity} in another team's name")
        at_ms = int(feedback["at"].timestamp() * 1000)
        if abs(at_ms - signed.signed_at_ms) > self.max_skew_ms:
            # A team could otherwise date an acknowledgement before its deadline.
            raise Refused("bad_timestamp", "the answer's time is not when it was signed")
        if not LEAD_ID.fullmatch(feedback["lead_id"]):
            raise Refused("unknown_lead", "feedback on something that is no lead ID")
        business = feedback["business_key"].encode()
        if record.key != business:
            raise Refused("misrouted_feedback", "feedback keyed by another business than the one it names")
        return FeedbackMessage(record, business, feedback, at_ms)

    def _resolution(self, record: Record, value: bytes, latest: dt.date) -> ResolutionMessage:
        with _refusing("undecodable_resolution"):
            raw = self.decode_resolution(value)
        event = None if raw["event"] is None else self.event(raw["event"], latest, "undecodable_resolution")
        if record.key is None:
            raise Refused("unkeyed_resolution", "a resolution message needs its key")
        return ResolutionMessage(record, record.key, resolution_body(raw, event is not None), event)


def resolution_body(raw: dict[str, Any], has_event: bool = True) -> ResolutionBody:
    """A decoded resolution message as its kind's body; ``incomplete_resolution``
    when a field its kind needs is missing."""
    kind = ResolutionKind(raw["kind"])
    needed = _NEEDS[kind]
    missing = [name for name in needed if raw[name] is None or (name == "index_key" and not raw[name])]
    if "event" in needed and not has_event:
        missing.append("event")
    if missing:
        raise Refused("incomplete_resolution", f"a {kind} message needs its {' and '.join(sorted(set(missing)))}")
    return _BODY[kind](raw)


# What each kind needs, and how its body is read ((record name, fields): a union).
_NEEDS: dict[ResolutionKind, tuple[str, ...]] = {
    ResolutionKind.REGISTER: ("candidate",), ResolutionKind.WATCH: ("watcher",),
    ResolutionKind.PARK: ("event", "event_topic", "provisional_key"), ResolutionKind.EVENT: ("event",),
    ResolutionKind.MOVED: ("event_id", "moved_to"), ResolutionKind.SIGNAL: ("event", "party"),
    ResolutionKind.SERIAL: ("index_key",), ResolutionKind.MEMBER: ("party",), ResolutionKind.LINK: ("party",)}
_BODY: dict[ResolutionKind, Callable[[dict[str, Any]], ResolutionBody]] = {
    ResolutionKind.REGISTER: lambda raw: Register(Candidate.from_json(_branch(raw["candidate"])), bool(raw["relayed"])),
    ResolutionKind.WATCH: lambda raw: Watch(raw["watcher"]),
    ResolutionKind.PARK: lambda raw: Park(raw["event"], raw["event_topic"], raw["provisional_key"]),
    ResolutionKind.EVENT: lambda raw: Resolved(raw["event"]),
    ResolutionKind.MOVED: lambda raw: Moved(raw["event_id"], raw["moved_to"]),
    ResolutionKind.SIGNAL: lambda raw: Signal(raw["event"], Party.from_message(raw["party"])),
    ResolutionKind.SERIAL: lambda raw: Serial(raw["index_key"]),
    ResolutionKind.MEMBER: lambda raw: Membership(Party.from_message(raw["party"])),
    ResolutionKind.LINK: lambda raw: Link(Party.from_message(raw["party"])),
}


def _branch(value: Any) -> dict[str, Any]:
    """A record read from a union: its fields, whether or not the codec named its branch."""
    return dict(value[1] if isinstance(value, tuple) else value)


def _require(allowed: bool, signed: Verified, where: str) -> None:
    if not allowed:
        raise Refused("not_authorised", f"{signed.signer.identity} may not publish on {where}")


@contextmanager
def _refusing(code: str) -> Iterator[None]:
    """Decoding and validation failures as ``Refused``, with their reason codes."""
    try:
        yield
    except DecodeError as exc:
        raise Refused(exc.reason_code or code, str(exc)) from None
    except Invalid as exc:
        raise Refused(exc.reason_code, str(exc)) from None
