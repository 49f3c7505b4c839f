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
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from hub.domain.events import Event, EventKind, event_key
from hub.domain.leads import BusinessState
from hub.domain.lifecycle import FeedbackRejected
from hub.domain.names import normalise_name
from hub.domain.resolution import Candidate, Move, ParkedRecord, ResolverState, is_lookup_key, record_keys
from hub.metrics import WorkerMetrics
from hub.serde import DecodeError
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


Message = tuple[str, int, "bytes | None", bytes]  # topic, partition, key, value
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
        self.decode_event = decoder("event")
        self.decode_feedback = decoder("feedback")
        self.decode_resolution = decoder("resolution")
        self.encoder = encoder
        self.metrics = metrics
        self.clock = clock
        # partition -> business key -> its earliest pending deadline (epoch ms)
        self.deadlines: dict[int, dict[bytes, int]] = {}
        self._indexed_for: frozenset[int] | None = None
        # lookup key -> (parked, ambiguous, oldest parked ms), on the owned
        # partitions, for keys with records waiting only: the gauges sum it per batch.
        self.unresolved: dict[bytes, tuple[int, int, int]] = {}
        self._unresolved_for: frozenset[int] | None = None

    def process(self, batch: Iterable[Message], load: Callable[[bytes], BusinessState],
                stored: Callable[[], Iterable[tuple[bytes, bytes]]] = lambda: (),
                assignment: frozenset[int] = frozenset(),
                partition_for: Callable[[bytes], int] = lambda key: 0,
                load_resolver: Callable[[bytes], ResolverState] = lambda key: ResolverState(),
                stored_resolvers: Callable[[], Iterable[tuple[bytes, bytes]]] = lambda: ()) -> BatchResult:
        """``stored``, ``assignment`` and ``partition_for`` rebuild the deadline
        index after a restart or rebalance: every stored state, the
        partitions this worker owns, and the partition of a business key;
        ``stored_resolvers`` likewise the count of unresolved records."""
        result = BatchResult()
        seen: dict[bytes, BusinessState] = {}
        partition_of: dict[bytes, int] = {}
        resolvers: dict[bytes, ResolverState] = {}
        if self._unresolved_for != assignment:
            self.unresolved = {}
            for k, v in stored_resolvers():
                if partition_for(k) in assignment:
                    self._summarise_unresolved(k, ResolverState.from_bytes(v))
            self._unresolved_for = assignment

        def state_of(key: bytes, partition: int) -> BusinessState:
            state = seen.get(key)
            if state is None:
                state = seen[key] = load(key)
                partition_of[key] = partition
            return state

        def resolver_of(key: bytes) -> ResolverState:
            state = resolvers.get(key)
            if state is None:
                state = resolvers[key] = load_resolver(key)
            return state

        for topic, partition, key, value in batch:
            if topic == FEEDBACK_TOPIC:
                self._feedback(partition, key, value, state_of, result, stored, assignment, partition_for)
                continue
            if topic == RESOLUTION_TOPIC:
                self._resolution(partition, key, value, state_of, resolver_of, result)
                continue
            try:
                event = self.decode_event(value)
            except DecodeError as exc:
                self._dead(result, "undecodable_event", str(exc), key, value)
                continue
            if key is None:  # a producer that did not key by business: still joinable
                key = event_key(event).encode()
            self._event(topic, partition, key, value, event, state_of(key, partition), result)
        now = self.clock()
        if result.oldest_received_at is not None:
            self.metrics.lag_seconds.set(max(0.0, now - result.oldest_received_at))
        for key, state in result.states.items():
            for lead in state.lead_updates(key.decode(), self.rules, int(now * 1000), self.lifecycle):
                result.leads.append(lead)
                self.metrics.leads_published.labels(lead["rules"][0]).inc()
                triggered = lead["triggered_by_received_at"].timestamp()
                if result.oldest_received_at is not None and triggered >= result.oldest_received_at:
                    self.metrics.event_to_lead.observe(max(0.0, now - triggered))  # new evidence, not feedback
            self._index(key, state, partition_of[key])
        for key, resolver in result.resolvers.items():
            self._summarise_unresolved(key, resolver)
        self.report_unresolved()
        return result

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

    def _resolution(self, partition: int, key: bytes | None, value: bytes,
                    state_of: Callable[[bytes, int], BusinessState], resolver_of: Callable[[bytes], ResolverState],
                    result: BatchResult) -> None:
        try:
            message = self.decode_resolution(value)
            event = self.decode_event(message["event"]) if message["event"] is not None else None
        except DecodeError as exc:
            self._dead(result, "undecodable_resolution", str(exc), key, value)
            return
        if key is None:
            self._dead(result, "unkeyed_resolution", "a resolution message needs its key", key, value)
            return
        kind = message["kind"]
        if kind in ("EVENT", "PARK") and event is None:
            self._dead(result, "incomplete_resolution", f"a {kind} message needs its event", key, value)
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
            self._dead(result, "misrouted_resolution", f"{kind} for {text!r}, which is no lookup key", key, value)
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

    def _feedback(self, partition: int, key: bytes | None, value: bytes,
                  state_of: Callable[[bytes, int], BusinessState], result: BatchResult,
                  stored: Callable[[], Iterable[tuple[bytes, bytes]]], assignment: frozenset[int],
                  partition_for: Callable[[bytes], int]) -> None:
        try:
            feedback = self.decode_feedback(value)
        except DecodeError as exc:
            self._dead(result, "undecodable_feedback", str(exc), key, value)
            return
        at_ms = int(feedback["at"].timestamp() * 1000)
        if feedback["action"] == "TICK":
            if self._indexed_for != assignment:
                self._rebuild_index(stored(), assignment, partition_for)
            for business in [k for k, due in self.deadlines.get(partition, {}).items() if due <= at_ms]:
                state = state_of(business, partition)
                for level in state.escalate_due(self.lifecycle, at_ms):
                    self.metrics.escalations.labels(level).inc()
                    result.states[business] = state
                self._index(business, state, partition)
            return
        business = feedback["business_key"].encode()
        state = state_of(business, partition)
        try:
            mark = state.apply_feedback(feedback["lead_id"], feedback["action"], feedback["team"],
                                        feedback["note"], at_ms)
        except FeedbackRejected as exc:
            self._dead(result, exc.code, f"feedback on {feedback['lead_id']}: {exc}", key, value)
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

    def _rebuild_index(self, stored: Iterable[tuple[bytes, bytes]], assignment: frozenset[int],
                       partition_for: Callable[[bytes], int]) -> None:
        """After a (re)start or rebalance: one pass over the stored states."""
        self.deadlines = {}
        for key, raw in stored:
            partition = partition_for(key)
            if partition in assignment:
                self._index(key, BusinessState.from_bytes(raw), partition)
        self._indexed_for = assignment

    def _dead(self, result: BatchResult, code: str, reason: str, key: bytes | None, value: bytes) -> None:
        result.dead_letters.append(_dead_letter(code, reason, key, value))
        self.metrics.dead_letters.labels(code).inc()


def _parked(event: Event, provisional_key: str, topic: str, value: bytes, now_ms: int) -> ParkedRecord:
    business = event["business"]
    return ParkedRecord(event["event_id"], provisional_key, topic, value, normalise_name(business["name"]),
                        business["name"], business["region_code"],
                        normalise_name(business["address"]) if business["address"] else None,
                        business["licence_number"], business["registration_number"], now_ms)


def _dead_letter(code: str, reason: str, key: bytes | None, value: bytes) -> dict[str, Any]:
    return {"stage": "worker", "source_file": None, "source_row": None, "column": None,
            "reason_code": code, "reason": reason,
            "original": {"key": (key or b"").decode("utf-8", "replace"), "value_hex": value[:512].hex()},
            "failed_at": dt.datetime.now(dt.timezone.utc)}
