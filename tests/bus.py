"""An in-memory message bus around the real ``LeadProcessor``: the worker's
logic with Kafka's ordering guarantees only (per partition, in order; across
partitions, any interleaving), so tests can try many interleavings fast."""
from __future__ import annotations

import datetime as dt
import functools
import zlib
from collections import deque
from pathlib import Path
from typing import Any, Callable

from connectors.discovery import load
from connectors.sdk import RowRejected
from hub.domain.events import Agency, event_key
from hub.domain.leads import BusinessState
from hub.domain.pii import PersonalDataHasher
from hub.domain.resolution import ResolverState
from hub.metrics import Metrics
from hub.processing import LeadProcessor
from hub.serde import Serde
from hub.settings import Settings
from hub.topics import RESOLUTION_TOPIC, events_topic

PARTITIONS = 4
RECEIVED = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


class Bus:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.serde = Serde(self.settings)
        self.metrics = Metrics()
        self.processor = LeadProcessor(self.settings, self.serde.decoder, functools.cache(self.serde.encoder),
                                       self.metrics.worker, clock=lambda: RECEIVED.timestamp())
        self.encode_resolution = self.serde.encoder(RESOLUTION_TOPIC, "resolution")
        self.queues: dict[tuple[str, int], deque[tuple[bytes, bytes]]] = {}
        self.businesses: dict[bytes, bytes] = {}
        self.resolver: dict[bytes, bytes] = {}
        self.leads: dict[str, dict[str, Any]] = {}  # latest record per lead
        self.dead_letters: list[dict[str, Any]] = []

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        partition = zlib.crc32(key) % PARTITIONS
        self.queues.setdefault((topic, partition), deque()).append((key, value))

    def publish_file(self, connector: str, path: Path) -> None:
        """What ``hub connector run`` publishes for a file (rejected rows left out)."""
        instance = load(connector)(PersonalDataHasher("bus-test-key-" + "k" * 32))
        encode = self.serde.encoder(events_topic(Agency(instance.agency)), "event")
        for row in instance.read(path):
            try:
                events = instance.events(row, RECEIVED)
            except RowRejected:
                continue
            for event in events:
                self.send(events_topic(Agency(event["agency"])), event_key(event).encode(), encode(event))

    def step(self, pick: Callable[[int], int]) -> bool:
        """Deliver the head of one non-empty partition (``pick`` chooses which); False when all are empty."""
        ready = sorted(tp for tp, queue in self.queues.items() if queue)
        if not ready:
            return False
        topic, partition = ready[pick(len(ready))]
        key, value = self.queues[(topic, partition)].popleft()
        result = self.processor.process(
            [(topic, partition, key, value)],
            lambda k: BusinessState.from_bytes(self.businesses[k]) if k in self.businesses else BusinessState(),
            load_resolver=lambda k: ResolverState.from_bytes(self.resolver[k]) if k in self.resolver
            else ResolverState())
        for k, state in result.states.items():
            self.businesses[k] = state.to_bytes()
        for k, resolver in result.resolvers.items():
            self.resolver[k] = resolver.to_bytes()
        for lead in result.leads:
            self.leads[lead["lead_id"]] = lead
        self.dead_letters += result.dead_letters
        for k, message in result.resolution:
            self.send(RESOLUTION_TOPIC, k.encode(), self.encode_resolution(message))
        return True

    def run(self, pick: Callable[[int], int] = lambda n: 0, limit: int = 100_000) -> None:
        for _ in range(limit):
            if not self.step(pick):
                return
        raise AssertionError("the bus did not settle")

    def open_leads(self) -> dict[tuple[str, str], frozenset[str]]:
        return {(l["business_key"], l["rules"][0]): frozenset(e["event_id"] for e in l["evidence"])
                for l in self.leads.values() if l["status"] not in ("SUPERSEDED", "CLOSED", "REJECTED")}
