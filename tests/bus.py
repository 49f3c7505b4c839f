"""An in-memory message bus around the real ``Flow``: the worker's logic with
Kafka's ordering guarantees only (per partition, in order; across
partitions, any interleaving), so tests can try many interleavings fast.
It carries every message kind: events, teams' feedback, clock ticks, entity
resolution's traffic, and the lead copies routed to the teams' topics."""
from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from connectors.discovery import load
from connectors.sdk import RowRejected
from hub.domain.events import Agency, event_key
from hub.domain.leads import BusinessState
from hub.domain.lifecycle import ACTIVE
from hub.domain.pii import PersonalDataHasher
from hub.domain.teams import load_teams
from hub.feedback import TICK_KEY, feedback, tick
from hub.flow import Effects, Flow, MemoryStore, Record, Send
from hub.flow.topics import BUSINESS_TABLE, FEEDBACK_TOPIC, LEADS_TOPIC, RESOLUTION_TOPIC, RESOLVER_TABLE, events_topic
from hub.metrics import Metrics
from hub.serde import Serde
from hub.settings import Settings

PARTITIONS = 4
RECEIVED = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


@dataclass
class Delivered:
    """A batch's effects, as the tests look at them."""

    effects: Effects

    @property
    def leads(self) -> list[dict[str, Any]]:
        """The operators' copies: every lead record of the batch in full."""
        return [s.value for s in self.effects.leads if s.topic == LEADS_TOPIC]

    def sent(self, contract: str) -> list[Send]:
        return [s for s in self.effects.first if s.contract == contract]

    @property
    def dead_letters(self) -> list[dict[str, Any]]:
        return [s.value for s in self.sent("deadletter")]

    @property
    def states(self) -> set[bytes]:
        return {w.key for w in self.effects.states if w.table == BUSINESS_TABLE}

    @property
    def resolvers(self) -> set[bytes]:
        return {w.key for w in self.effects.states if w.table == RESOLVER_TABLE}

    @property
    def resolution(self) -> list[Send]:
        return self.sent("resolution")


class Bus:
    def __init__(self, settings: Settings | None = None, clock: Callable[[], float] | None = None) -> None:
        self.settings = settings or Settings()
        self.serde = Serde(self.settings)
        self.metrics = Metrics()
        self.store = MemoryStore(PARTITIONS)
        self.clock = clock or (lambda: RECEIVED.timestamp())
        self.teams = load_teams(self.settings.teams_file)
        self.flow = self.restart()
        self.queues: dict[tuple[str, int], deque[tuple[bytes, bytes]]] = {}
        self.topics: dict[str, dict[str, dict[str, Any]]] = {}  # topic -> lead ID -> its latest record
        self.dead_letters: list[dict[str, Any]] = []
        self.outcomes: list[tuple[str, dict[str, Any]]] = []

    @property
    def businesses(self) -> dict[bytes, bytes]:
        return self.store.businesses

    @property
    def resolver(self) -> dict[bytes, bytes]:
        return self.store.resolver

    @property
    def leads(self) -> dict[str, dict[str, Any]]:
        """The latest record of every lead on the operators' topic."""
        return self.topics.setdefault(LEADS_TOPIC, {})

    def restart(self) -> Flow:
        """Another incarnation of the worker on the same stored states."""
        self.flow = Flow(self.settings, self.serde, self.store, self.teams, clock=self.clock)
        self.flow.assign(frozenset(range(PARTITIONS)))
        return self.flow

    def state(self, key: str) -> BusinessState:
        return BusinessState.from_bytes(self.store.businesses[key.encode()])

    # -- publishing -------------------------------------------------------
    def send(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> None:
        where = self.store.partition_of(key) if partition is None else partition
        self.queues.setdefault((topic, where), deque()).append((key, value))

    def publish_file(self, connector: str, path: Path) -> None:
        """What ``hub connector run`` publishes for a file (rejected rows left out)."""
        instance = load(connector)(PersonalDataHasher("bus-test-key-" + "k" * 32))
        encode = self.serde.encoder(events_topic(Agency(instance.agency)), "event")
        received = dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc)
        for row in instance.read(path):
            try:
                events = instance.events(row, received)
            except RowRejected:
                continue
            for event in events:
                self.send(events_topic(Agency(event["agency"])), event_key(event).encode(), encode(event))

    def publish_event(self, event: dict[str, Any]) -> None:
        self.send(events_topic(Agency(event["agency"])), event_key(event).encode(),
                  self.serde.encoder(events_topic(Agency(event["agency"])), "event")(event))

    def publish_feedback(self, lead: dict[str, Any], action: str, team: str, note: str | None = None,
                         at: dt.datetime | None = None, by: str | None = "desk 3") -> None:
        record = feedback(lead, action, team, note, by, (at or RECEIVED).timestamp())
        self.send(FEEDBACK_TOPIC, lead["business_key"].encode(),
                  self.serde.encoder(FEEDBACK_TOPIC, "feedback")(record))

    def publish_ticks(self, at: dt.datetime) -> None:
        value = self.serde.encoder(FEEDBACK_TOPIC, "feedback")(tick(at.timestamp()))
        for partition in range(PARTITIONS):
            self.send(FEEDBACK_TOPIC, TICK_KEY, value, partition)

    # -- delivering -------------------------------------------------------
    def process(self, records: Iterable[Record | tuple[Any, ...]], write: bool = True) -> Delivered:
        """One batch through the flow; ``write``: carry out its effects, as a
        worker that does not die does."""
        effects = self.flow.process(records)
        if write:
            self.carry_out(effects)
        return Delivered(effects)

    def carry_out(self, effects: Effects) -> None:
        for send in effects.first:
            if send.topic == RESOLUTION_TOPIC:
                self.send(RESOLUTION_TOPIC, send.key, self.serde.encoder(RESOLUTION_TOPIC, "resolution")(send.value))
            elif send.contract == "deadletter":
                self.dead_letters.append(send.value)
            else:
                self.outcomes.append((send.topic, send.value))
        for write in effects.states:
            table = self.store.businesses if write.table == BUSINESS_TABLE else self.store.resolver
            table[write.key] = write.value
        for send in effects.leads:
            self.topics.setdefault(send.topic, {})[send.value["lead_id"]] = send.value
        self.metrics.worker.observe(effects, self.clock())

    def step(self, pick: Callable[[int], int]) -> bool:
        """Deliver the head of one non-empty partition (``pick`` chooses which); False when all are empty."""
        ready = sorted(tp for tp, queue in self.queues.items() if queue)
        if not ready:
            return False
        topic, partition = ready[pick(len(ready))]
        key, value = self.queues[(topic, partition)].popleft()
        self.process([Record(topic, partition, key, value)])
        return True

    def run(self, pick: Callable[[int], int] = lambda n: 0, limit: int = 100_000) -> None:
        for _ in range(limit):
            if not self.step(pick):
                return
        raise AssertionError("the bus did not settle")

    def open_leads(self) -> dict[tuple[str, str], frozenset[str]]:
        return {(l["business_key"], l["rules"][0]): frozenset(e["event_id"] for e in l["evidence"])
                for l in self.leads.values() if l["status"] in ACTIVE}
