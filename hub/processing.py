"""One batch of events in, state changes and leads out. No Kafka here: the
Faust agent (``hub.worker``) feeds it and publishes what it returns."""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from hub.domain.events import event_key
from hub.domain.leads import BusinessState
from hub.metrics import WorkerMetrics
from hub.serde import DecodeError
from hub.settings import Settings


@dataclass
class BatchResult:
    states: dict[bytes, BusinessState] = field(default_factory=dict)  # changed states only
    leads: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    oldest_received_at: float | None = None  # epoch seconds, of the batch's oldest event


class LeadProcessor:
    def __init__(self, settings: Settings, decode: Callable[[bytes], dict[str, Any]],
                 metrics: WorkerMetrics, clock: Callable[[], float] = time.time) -> None:
        self.rules = settings.rules
        self.decode = decode
        self.metrics = metrics
        self.clock = clock

    def process(self, batch: Iterable[tuple[bytes | None, bytes]],
                load: Callable[[bytes], BusinessState]) -> BatchResult:
        result = BatchResult()
        seen: dict[bytes, BusinessState] = {}
        for key, value in batch:
            try:
                event = self.decode(value)
            except DecodeError as exc:
                result.dead_letters.append(_dead_letter("undecodable_event", str(exc), key, value))
                self.metrics.dead_letters.labels("undecodable_event").inc()
                continue
            received = event["received_at"].timestamp()
            if result.oldest_received_at is None or received < result.oldest_received_at:
                result.oldest_received_at = received
            if key is None:  # a producer that did not key by business: still joinable
                key = event_key(event).encode()
            state = seen.get(key)
            if state is None:
                state = seen[key] = load(key)
            outcome = state.accept(event, self.rules)
            self.metrics.events_processed.labels(event["agency"]).inc()
            if outcome == "duplicate":
                self.metrics.duplicates.labels(event["agency"]).inc()
            elif outcome == "new":
                result.states[key] = state
        now = self.clock()
        if result.oldest_received_at is not None:
            self.metrics.lag_seconds.set(max(0.0, now - result.oldest_received_at))
        for key, state in result.states.items():
            for lead in state.lead_updates(key.decode(), self.rules, int(now * 1000)):
                result.leads.append(lead)
                self.metrics.leads_published.labels(lead["rules"][0]).inc()
                self.metrics.event_to_lead.observe(max(0.0, now - lead["triggered_by_received_at"].timestamp()))
        return result


def _dead_letter(code: str, reason: str, key: bytes | None, value: bytes) -> dict[str, Any]:
    return {"stage": "worker", "source_file": None, "source_row": None, "column": None,
            "reason_code": code, "reason": reason,
            "original": {"key": (key or b"").decode("utf-8", "replace"), "value_hex": value[:512].hex()},
            "failed_at": dt.datetime.now(dt.timezone.utc)}
