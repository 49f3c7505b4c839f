"""One batch of messages in, state changes and records to publish out. No
Kafka here: the Faust agent (``hub.worker``) feeds it and publishes what it
returns.

Three kinds of message meet a business's state, all keyed by business:
events (the rules), teams' feedback (the lead lifecycle) and clock ticks,
one per partition, at which the deadlines of that partition's leads are
checked. Time reaches the lifecycle only through ticks and feedback, so a
test (or a replay) controls it by what it publishes.

Entity resolution travels on its own topic, in the same agent: records that
carry a USCC teach the registry (REGISTER to each of the business's lookup
keys), records without one are parked at a lookup key (PARK), and when the
resolver's answer for a record changes the record moves (EVENT to its
business, MOVED to the key it leaves). See ``hub.domain.resolution``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, NamedTuple, TypeVar

from hub.domain.events import Event, EventKind, event_key
from hub.domain.leads import BusinessState
from hub.domain.lifecycle import FeedbackRejected
from hub.domain.names import normalise_name
from hub.domain.pii import PersonalDataHasher, describe
from hub.domain.resolution import Candidate, Move, ParkedRecord, ResolverState, is_lookup_key, record_keys
from hub.domain.validation import Invalid, check_record, latest_date
from hub.metrics import WorkerMetrics
from hub.serde import DecodeError, RegistryUnavailable
from hub.settings import Settings
from hub.topics import FEEDBACK_TOPIC, RESOLUTION_TOPIC, outcomes_topic


@dataclass
class BatchResult:
    states: dict[bytes, BusinessState] = field(default_factory=dict)  # changed states only
    leads: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (topic, feedback) for agencies
    oldest_received_at: float | None = None  # epoch seconds, of the batch's oldest event
    resolvers: dict[bytes, ResolverState] = field(default_factory=dict)  # changed resolver states only
    resolution: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (key, message) to send


class Message(NamedTuple):
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None  # None: a tombstone, which no hub topic should carry
    offset: int = -1  # where it sits on its topic, for the dead letter


@dataclass(frozen=True)
class _Marks:
    """How far a batch's result had got before a message: what to cut back to."""

    dead_letters: int
    outcomes: int
    resolution: int
    oldest_received_at: float | None

    @classmethod
    def of(cls, result: BatchResult) -> "_Marks":
        return cls(len(result.dead_letters), len(result.outcomes), len(result.resolution),
                   result.oldest_received_at)

    def restore(self, result: BatchResult) -> None:
        del result.dead_letters[self.dead_letters:], result.outcomes[self.outcomes:]
        del result.resolution[self.resolution:]
        result.oldest_received_at = self.oldest_received_at


log = logging.getLogger(__name__)
LEAD_ID = re.compile(r"lead-[0-9a-f]{20}")
Codec = Callable[[str, str], Callable[[Any], Any]]  # (topic, contract) -> encoder


def _message(kind: str, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "candidate": None, "relayed": False, "watcher": None, "event": None,
            "event_topic": None, "provisional_key": None, "event_id": None, "moved_to": None, **fields}


class LeadProcessor:
    def __init__(self, settings: Settings, decoder: Callable[[str], Callable[[bytes], dict[str, Any]]],
                 encoder: Codec, metrics: WorkerMetrics, clock: Callable[[], float] = time.time) -> None:
        """``decoder(contract)`` and ``encoder(topic, contract)``: the Avro codecs (``hub.serde.Serde``)."""
        self.rules = settings.rules
        self.lifecycle = settings.lifecycle
        self.limits = settings.validation
        self.hasher = PersonalDataHasher(settings.pii_key)
        # Who writes the states this processor changes: see BusinessState.resume.
        self.incarnation = uuid.uuid4().hex
        self.decode_event = decoder("event")
        self.decode_feedback = decoder("feedback")
        self.decode_resolution = decoder("resolution")
        self.encoder = encoder
        self.metrics = metrics
        self.clock = clock
        # partition -> business key -> its earliest pending deadline (epoch ms)
        self.deadlines: dict[int, dict[bytes, int]] = {}
        self._resumed_for: tuple[str, frozenset[int]] | None = None
        # lookup key -> (parked, ambiguous, oldest parked ms), on the owned
        # partitions, for keys with records waiting only: the gauges sum it per batch.
        self.unresolved: dict[bytes, tuple[int, int, int]] = {}
        self._unresolved_for: frozenset[int] | None = None
        self._latest = latest_date(clock(), self.limits)  # the last date a record may carry, per batch

    def process(self, batch: Iterable[Message | tuple[Any, ...]], load: Callable[[bytes], BusinessState],
                stored: Callable[[], Iterable[tuple[bytes, bytes]]] = lambda: (),
                assignment: frozenset[int] = frozenset(),
                partition_for: Callable[[bytes], int] = lambda key: 0,
                load_resolver: Callable[[bytes], ResolverState] = lambda key: ResolverState(),
                stored_resolvers: Callable[[], Iterable[tuple[bytes, bytes]]] = lambda: ()) -> BatchResult:
        """``stored``, ``assignment`` and ``partition_for`` (every stored
        state, the partitions this worker owns, and the partition of a
        business key) serve the pass over the states after a restart,
        rebalance or fence: the deadline index and the leads owed;
        ``stored_resolvers`` likewise the count of unresolved records.

        Each message is applied on its own: one that cannot be decoded,
        validated or processed becomes a dead letter, its changes are rolled
        back, and its batch-mates go on. Only ``RegistryUnavailable`` (the
        infrastructure, not the record) escapes, so the caller retries the
        whole batch without acknowledging it."""
        result = BatchResult()
        self._latest = latest_date(self.clock(), self.limits)  # one clock reading for the batch
        seen: dict[bytes, BusinessState] = {}
        partition_of: dict[bytes, int] = {}
        resolvers: dict[bytes, ResolverState] = {}
        if self._resumed_for != (self.incarnation, assignment):
            # After a (re)start, rebalance or fence, one pass over the stored
            # states: the deadline index, and the leads that states another
            # incarnation wrote may owe (it died or was fenced before
            # publishing them; waiting for each business's next event would
            # leave them unpublished for good where none comes).
            self.deadlines = {}
            for key, data in stored():
                partition = partition_for(key)
                if partition in assignment:
                    state = BusinessState.from_bytes(data)
                    self._index(key, state, partition)
                    if state.resume(self.incarnation):
                        seen[key] = result.states[key] = state
                        partition_of[key] = partition
            self._resumed_for = (self.incarnation, assignment)
        if self._unresolved_for != assignment:
            self.unresolved = {}
            for k, v in stored_resolvers():
                if partition_for(k) in assignment:
                    self._summarise_unresolved(k, ResolverState.from_bytes(v))
            self._unresolved_for = assignment
        # What the message being applied touched, to roll it back if it fails:
        # a key first loaded by it is simply forgotten; one an earlier message
        # of the batch changed is restored from its bytes.
        undo: dict[bytes, bytes | None] = {}
        undo_resolvers: dict[bytes, bytes | None] = {}
        applied: dict[bytes, list[Message]] = {}  # business key -> the messages applied to it
        current: list[Message] = []

        def state_of(key: bytes, partition: int) -> BusinessState:
            state = seen.get(key)
            if key not in undo:  # the first touch by this message
                undo[key] = None if state is None else state.to_bytes()
                applied.setdefault(key, []).append(current[0])
            if state is None:
                state = seen[key] = load(key)
                partition_of[key] = partition
                if state.resume(self.incarnation):
                    result.states[key] = state
            return state

        def resolver_of(key: bytes) -> ResolverState:
            state = resolvers.get(key)
            if key not in undo_resolvers:
                undo_resolvers[key] = None if state is None else state.to_bytes()
            if state is None:
                state = resolvers[key] = load_resolver(key)
            return state

        def roll_back(before: _Marks) -> None:
            for key in undo:
                applied[key].pop()
            _restore(undo, seen, result.states, BusinessState.from_bytes)
            _restore(undo_resolvers, resolvers, result.resolvers, ResolverState.from_bytes)
            before.restore(result)

        for raw in batch:
            message = Message(*raw)
            current[:] = [message]
            undo.clear()
            undo_resolvers.clear()
            before = _Marks.of(result)
            try:
                self._apply(message, state_of, resolver_of, result)
            except RegistryUnavailable:
                raise
            except Exception as exc:  # a bug or a record nobody foresaw: it alone fails
                roll_back(before)
                log.warning("%s[%s]@%s failed: %s", message.topic, message.partition, message.offset, describe(exc))
                self._dead(result, "processing_error", f"processing failed: {type(exc).__name__}", message)
        now = self.clock()
        if result.oldest_received_at is not None:
            self.metrics.lag_seconds.set(max(0.0, now - result.oldest_received_at))
        for key, state in list(result.states.items()):
            try:
                leads = state.lead_updates(key.decode(), self.rules, int(now * 1000), self.lifecycle)
            except Exception as exc:
                # The business's leads cannot be drawn: none of this batch's
                # changes to it are kept, and every message that made them is
                # a dead letter (replaying them would fail the same way).
                del result.states[key]
                for message in applied.get(key, []):
                    self._dead(result, "processing_error", f"drawing leads failed: {type(exc).__name__}", message)
                continue
            for lead in leads:
                result.leads.append(lead)
                self.metrics.leads_published.labels(lead["rules"][0]).inc()
                triggered = lead["triggered_by_received_at"].timestamp()
                if result.oldest_received_at is not None and triggered >= result.oldest_received_at:
                    self.metrics.event_to_lead.observe(max(0.0, now - triggered))  # new evidence, not feedback
            state.writer = self.incarnation
            self._index(key, state, partition_of[key])
        for key, resolver in result.resolvers.items():
            self._summarise_unresolved(key, resolver)
        self.report_unresolved()
        return result

    def _apply(self, message: Message, state_of: Callable[[bytes, int], BusinessState],
               resolver_of: Callable[[bytes], ResolverState], result: BatchResult) -> None:
        topic, partition, key, value = message.topic, message.partition, message.key, message.value
        if value is None:
            self._dead(result, "tombstone", "a null value (tombstone): the hub's topics carry none", message)
            return
        limit = self.limits.max_event_bytes * (4 if topic == RESOLUTION_TOPIC else 1)
        if len(value) > limit:
            self._dead(result, "oversized_message", f"{len(value)} bytes, more than {limit}", message)
            return
        if topic == FEEDBACK_TOPIC:
            self._feedback(message, state_of, result)
            return
        if topic == RESOLUTION_TOPIC:
            self._resolution(message, state_of, resolver_of, result)
            return
        event = self._decoded_event(value, message, result)
        if event is None:
            return
        if key is None:  # a producer that did not key by business: still joinable
            key = event_key(event).encode()
        self._event(topic, partition, key, value, event, state_of(key, partition), result)

    def _decoded_event(self, value: bytes, message: Message, result: BatchResult,
                       code: str = "undecodable_event") -> Event | None:
        """The event, decoded and checked; None (and a dead letter) if it is bad."""
        try:
            event = self.decode_event(value)
            check_record(event, self.limits, self._latest)
        except DecodeError as exc:
            self._dead(result, exc.reason_code or code, str(exc), message)
            return None
        except Invalid as exc:
            self._dead(result, exc.reason_code, str(exc), message)
            return None
        return event

    def _event(self, topic: str, partition: int, key: bytes, value: bytes, event: Event, state: BusinessState,
               result: BatchResult, restore: bool = False) -> None:
        received = event["received_at"].timestamp()
        if result.oldest_received_at is None or received < result.oldest_received_at:
            result.oldest_received_at = received
        if not restore:  # a resolved record coming back to its business was counted when it arrived
            self.metrics.events_processed.labels(event["agency"]).inc()
        # A registry entry teaches the registry and is no evidence of anything.
        outcome = "registered" if event["kind"] == EventKind.REGISTRATION.value else \
            state.accept(event, self.rules, restore)
        if outcome == "duplicate":
            self.metrics.duplicates.labels(event["agency"]).inc()
        elif outcome == "near_duplicate":
            self.metrics.near_duplicates.labels(event["agency"]).inc()
            result.states[key] = state
        elif outcome in ("new", "reopened", "explained", "remerged"):
            result.states[key] = state
            if outcome == "reopened":
                self.metrics.leads_reopened.inc()
        learned = state.learn(event)
        if learned is not None:
            result.states[key] = state
            result.resolution += [(k, _message("REGISTER", candidate=learned.to_json()))
                                  for k in learned.lookup_keys()]
        if outcome in ("new", "near_duplicate", "reopened") and not event["business"]["business_id"] and not restore:
            # No USCC: the rules see it under its provisional key, and it waits for its business.
            business = event["business"]
            home = record_keys(normalise_name(business["name"]), business["licence_number"],
                               business["registration_number"])[0]
            result.resolution.append((home, _message("PARK", event=value, event_topic=topic,
                                                     provisional_key=key.decode())))

    def _resolution(self, raw: Message, state_of: Callable[[bytes, int], BusinessState],
                    resolver_of: Callable[[bytes], ResolverState], result: BatchResult) -> None:
        partition, key, value = raw.partition, raw.key, raw.value
        assert value is not None
        try:
            message = self.decode_resolution(value)
        except DecodeError as exc:
            self._dead(result, exc.reason_code or "undecodable_resolution", str(exc), raw)
            return
        event = None
        if message["event"] is not None:
            event = self._decoded_event(message["event"], raw, result, "undecodable_resolution")
            if event is None:
                return
        if key is None:
            self._dead(result, "unkeyed_resolution", "a resolution message needs its key", raw)
            return
        kind = message["kind"]
        if kind in ("EVENT", "PARK") and event is None:
            self._dead(result, "incomplete_resolution", f"a {kind} message needs its event", raw)
            return
        if kind == "EVENT" and event is not None:  # a resolved record reaches its business
            self._event(RESOLUTION_TOPIC, partition, key, value, event, state_of(key, partition), result, True)
            return
        if kind == "MOVED":
            state = state_of(key, partition)
            if state.move(message["event_id"], message["moved_to"]):
                result.states[key] = state
            return
        text = key.decode()
        if not is_lookup_key(text):
            self._dead(result, "misrouted_resolution", f"{kind} sent to a key that is no lookup key", raw)
            return
        resolver = resolver_of(key)
        moves: list[Move] = []
        if kind == "REGISTER":
            candidate = Candidate.from_json(message["candidate"][1])  # (record name, fields): a union
            before = resolver.candidates.get(candidate.business_id)
            moves = resolver.register(candidate, message["relayed"])
            merged = resolver.candidates[candidate.business_id]
            if not message["relayed"] and merged != before:
                result.resolution += [(w, _message("REGISTER", candidate=merged.to_json(), relayed=True))
                                      for w in resolver.relay_to()]
        elif kind == "WATCH":
            result.resolution += [(message["watcher"], _message("REGISTER", candidate=c.to_json(),
                                                                relayed=True))
                                  for c in resolver.watch(message["watcher"])]
        elif kind == "PARK" and event is not None:
            record = _parked(event, message["provisional_key"], message["event_topic"], message["event"],
                             int(self.clock() * 1000))
            watch, moves = resolver.park(record)
            result.resolution += [(k, _message("WATCH", watcher=text)) for k in watch]
        result.resolvers[key] = resolver
        for move in moves:
            self._move(move, result)

    def _move(self, move: Move, result: BatchResult) -> None:
        """Publish a changed decision: the record leaves where it was and reaches
        where it now belongs, or, still on the same business, is sent there
        again with the new explanation."""
        record, old, new = move.record, move.old.business_id, move.new.business_id
        if old is not None and old != new:
            result.resolution.append((old, _message("MOVED", event_id=record.event_id,
                                                    moved_to=record.provisional_key)))
        if new is not None and move.candidate is not None:
            if old != new:
                self.metrics.resolved.labels(move.new.method).inc()
                result.resolution.append((record.provisional_key, _message("MOVED", event_id=record.event_id,
                                                                           moved_to=new)))
            event = self.decode_event(record.event)
            event["business"] = {**event["business"], "business_id": new,
                                 "region_code": move.candidate.region_code}
            event["resolution"] = move.new.explanation
            result.resolution.append((new, _message("EVENT", event=self.encoder(record.topic, "event")(event))))
        elif old is not None:
            result.resolution.append((record.provisional_key, _message("MOVED", event_id=record.event_id,
                                                                       moved_to="")))

    def _summarise_unresolved(self, key: bytes, state: ResolverState) -> None:
        waiting = state.unresolved()
        if not waiting:
            self.unresolved.pop(key, None)
            return
        ambiguous = sum(r.decision.ambiguous for r in waiting)
        self.unresolved[key] = (len(waiting) - ambiguous, ambiguous, min(r.parked_ms for r in waiting))

    def report_unresolved(self) -> None:
        parked = sum(p for p, _, _ in self.unresolved.values())
        ambiguous = sum(a for _, a, _ in self.unresolved.values())
        oldest = min((o for _, _, o in self.unresolved.values()), default=None)
        self.metrics.unresolved.labels("parked").set(parked)
        self.metrics.unresolved.labels("ambiguous").set(ambiguous)
        self.metrics.oldest_parked_age.set(0 if oldest is None else max(0.0, self.clock() - oldest / 1000))

    def _feedback(self, raw: Message, state_of: Callable[[bytes, int], BusinessState], result: BatchResult) -> None:
        partition = raw.partition
        assert raw.value is not None
        try:
            feedback = self.decode_feedback(raw.value)
            ahead = self.limits.max_tick_ahead_days if feedback["action"] == "TICK" else 0
            check_record(feedback, self.limits,
                         self._latest + dt.timedelta(days=ahead))
        except DecodeError as exc:
            self._dead(result, exc.reason_code or "undecodable_feedback", str(exc), raw)
            return
        except Invalid as exc:
            self._dead(result, exc.reason_code, str(exc), raw)
            return
        at_ms = int(feedback["at"].timestamp() * 1000)
        if feedback["action"] == "TICK":
            for business in [k for k, due in self.deadlines.get(partition, {}).items() if due <= at_ms]:
                state = state_of(business, partition)
                for level in state.escalate_due(self.lifecycle, at_ms):
                    self.metrics.escalations.labels(level).inc()
                    result.states[business] = state
                self._index(business, state, partition)
            return
        if not LEAD_ID.fullmatch(feedback["lead_id"]):  # a forged field could hold anything: never echo it
            self._dead(result, "unknown_lead", "feedback on something that is no lead ID", raw)
            return
        business = feedback["business_key"].encode()
        state = state_of(business, partition)
        # Scrubbed before anything is kept or sent on, whoever produced it.
        feedback = {**feedback, "note": self.hasher.scrub_feedback(feedback["note"], state.persons),
                    "by": self.hasher.desk(feedback["by"])}
        try:
            mark = state.apply_feedback(feedback["lead_id"], feedback["action"], feedback["team"],
                                        feedback["note"], at_ms)
        except FeedbackRejected as exc:
            self._dead(result, exc.code, f"feedback on {feedback['lead_id']}: {exc}", raw)
            return
        if mark is None:  # replayed after a crash: applied, and its outcomes sent, the first time
            return
        result.states[business] = state
        waited = max(0.0, (at_ms - mark.opened_ms) / 1000)
        responses = [h for h in mark.history if h[0] >= mark.opened_ms and h[2] is not None]
        if len(responses) == 1:  # the team's first answer since the lead (re)opened
            self.metrics.time_to_acknowledge.labels(mark.severity).observe(waited)
        if feedback["action"] == "CLOSED":
            self.metrics.time_to_close.labels(mark.severity).observe(waited)
        agencies = {state.facts[e].agency for e in (*mark.evidence, *mark.chained) if e in state.facts}
        result.outcomes += [(outcomes_topic(a), feedback) for a in sorted(agencies)]

    def _index(self, key: bytes, state: BusinessState, partition: int) -> None:
        due = state.next_deadline(self.lifecycle)
        if due is None:
            self.deadlines.get(partition, {}).pop(key, None)
        else:
            self.deadlines.setdefault(partition, {})[key] = due


    def _dead(self, result: BatchResult, code: str, reason: str, message: Message) -> None:
        result.dead_letters.append(_dead_letter(code, reason, message))
        self.metrics.dead_letters.labels(code).inc()


S = TypeVar("S")


def _restore(undo: dict[bytes, bytes | None], loaded: dict[bytes, S], changed: dict[bytes, S],
             parse: Callable[[bytes], S]) -> None:
    """Put back the states a failed message touched: one it loaded first is
    forgotten (the next touch loads it again), one changed earlier in the
    batch gets its bytes from before the message."""
    for key, raw in undo.items():
        if raw is None:
            del loaded[key]
            changed.pop(key, None)
        else:
            loaded[key] = parse(raw)
            if key in changed:
                changed[key] = loaded[key]


def _parked(event: Event, provisional_key: str, topic: str, value: bytes, now_ms: int) -> ParkedRecord:
    business = event["business"]
    return ParkedRecord(event["event_id"], provisional_key, topic, value, normalise_name(business["name"]),
                        business["name"], business["region_code"],
                        normalise_name(business["address"]) if business["address"] else None,
                        business["licence_number"], business["registration_number"], now_ms)


def _dead_letter(code: str, reason: str, message: Message) -> dict[str, Any]:
    """Where the record is and what it was, never what it said: a forged or
    mistyped record may carry personal data in any byte. ``offset`` finds it
    on its topic; the digests tell two dead letters of the same bytes apart."""
    key, value = message.key, message.value
    original = {"topic": message.topic, "partition": str(message.partition), "offset": str(message.offset),
                "key_sha256": hashlib.sha256(key).hexdigest() if key is not None else "none",
                "value_bytes": str(len(value)) if value is not None else "none",
                "value_sha256": hashlib.sha256(value).hexdigest() if value is not None else "none"}
    return {"stage": "worker", "source_file": None, "source_row": None, "column": None,
            "reason_code": code, "reason": reason, "original": original,
            "failed_at": dt.datetime.now(dt.timezone.utc)}
