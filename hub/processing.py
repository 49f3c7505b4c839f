"""One batch of messages in, state changes and records to publish out. No
Kafka here: the Faust agent (``hub.worker``) feeds it and publishes what it
returns.

Three kinds of message meet a business's state, all keyed by business:
events (the rules), teams' feedback (the lead lifecycle) and clock ticks,
one per partition, at which the deadlines of that partition's leads are
checked. Time reaches the lifecycle only through ticks and feedback, so a
test (or a replay) controls it by what it publishes.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from hub.domain.events import event_key
from hub.domain.leads import BusinessState
from hub.domain.lifecycle import FeedbackRejected
from hub.metrics import WorkerMetrics
from hub.serde import DecodeError
from hub.settings import Settings
from hub.topics import FEEDBACK_TOPIC, outcomes_topic


@dataclass
class BatchResult:
    states: dict[bytes, BusinessState] = field(default_factory=dict)  # changed states only
    leads: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (topic, feedback) for agencies
    oldest_received_at: float | None = None  # epoch seconds, of the batch's oldest event


Message = tuple[str, int, "bytes | None", bytes]  # topic, partition, key, value


class LeadProcessor:
    def __init__(self, settings: Settings, decode_event: Callable[[bytes], dict[str, Any]],
                 decode_feedback: Callable[[bytes], dict[str, Any]], metrics: WorkerMetrics,
                 clock: Callable[[], float] = time.time) -> None:
        self.rules = settings.rules
        self.lifecycle = settings.lifecycle
        self.decode_event = decode_event
        self.decode_feedback = decode_feedback
        self.metrics = metrics
        self.clock = clock
        # partition -> business key -> its earliest pending deadline (epoch ms)
        self.deadlines: dict[int, dict[bytes, int]] = {}
        self._indexed_for: frozenset[int] | None = None

    def process(self, batch: Iterable[Message], load: Callable[[bytes], BusinessState],
                stored: Callable[[], Iterable[tuple[bytes, bytes]]] = lambda: (),
                assignment: frozenset[int] = frozenset(),
                partition_for: Callable[[bytes], int] = lambda key: 0) -> BatchResult:
        """``stored``, ``assignment`` and ``partition_for`` rebuild the deadline
        index after a restart or rebalance: every stored state, the
        partitions this worker owns, and the partition of a business key."""
        result = BatchResult()
        seen: dict[bytes, BusinessState] = {}
        partition_of: dict[bytes, int] = {}

        def state_of(key: bytes, partition: int) -> BusinessState:
            state = seen.get(key)
            if state is None:
                state = seen[key] = load(key)
                partition_of[key] = partition
            return state

        for topic, partition, key, value in batch:
            if topic == FEEDBACK_TOPIC:
                self._feedback(partition, key, value, state_of, result, stored, assignment, partition_for)
                continue
            try:
                event = self.decode_event(value)
            except DecodeError as exc:
                self._dead(result, "undecodable_event", str(exc), key, value)
                continue
            received = event["received_at"].timestamp()
            if result.oldest_received_at is None or received < result.oldest_received_at:
                result.oldest_received_at = received
            if key is None:  # a producer that did not key by business: still joinable
                key = event_key(event).encode()
            state = state_of(key, partition)
            outcome = state.accept(event, self.rules)
            self.metrics.events_processed.labels(event["agency"]).inc()
            if outcome == "duplicate":
                self.metrics.duplicates.labels(event["agency"]).inc()
            elif outcome == "near_duplicate":
                self.metrics.near_duplicates.labels(event["agency"]).inc()
                result.states[key] = state
            elif outcome in ("new", "reopened"):
                result.states[key] = state
                if outcome == "reopened":
                    self.metrics.leads_reopened.inc()
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
        return result

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


def _dead_letter(code: str, reason: str, key: bytes | None, value: bytes) -> dict[str, Any]:
    return {"stage": "worker", "source_file": None, "source_row": None, "column": None,
            "reason_code": code, "reason": reason,
            "original": {"key": (key or b"").decode("utf-8", "replace"), "value_hex": value[:512].hex()},
            "failed_at": dt.datetime.now(dt.timezone.utc)}
