"""An in-memory message bus around the real ``Flow``: the worker's logic with
Kafka's ordering guarantees only (per partition, in order; across
partitions, any interleaving), so tests can try many interleavings fast.
It carries every message kind: events, teams' feedback, clock ticks, entity
resolution's traffic, and the lead copies routed to the teams' topics.

```python
bus = Bus(clock=lambda: now.timestamp())
bus.publish_file("samr.penalty", Path("行政处罚.csv"))
bus.run(pick=lambda ready: random.randrange(ready))  # any interleaving of the partitions
assert not bus.dead_letters and bus.open_leads()
```"""
from __future__ import annotations

import datetime as dt
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable

from connectors.discovery import available, load
from connectors.sdk import RowRejected
from hub.audit.entries import Note
from hub.domain.events import Agency, Event, event_key
from hub.domain.leads import BusinessState
from hub.domain.lifecycle import ACTIVE
from hub.domain.pii import PersonalDataHasher
from hub.domain.teams import load_teams
from hub.edge.feedback import TICK_KEY, feedback, tick
from hub.flow import Effects, Flow, MemoryStore, Record, Send
from hub.flow.topics import (BUSINESS_TABLE, FEEDBACK_TOPIC, LEADS_TOPIC, RESOLUTION_TOPIC, RESOLVER_TABLE,
                             events_topic, feedback_topic)
from hub.edge.metrics import Metrics
from hub.kafka.serde import Serde
from hub.settings import Settings
from hub.trust import Role, Signer, signer, verifier

PARTITIONS = 4
RECEIVED = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@dataclass
class Delivered:
    """A batch's effects, as the tests look at them."""

    effects: Effects

    @property
    def leads(self) -> list[dict[str, Any]]:
        """The operators' copies: every lead record of the batch in full."""
        return [dict(s.value) for s in self.effects.leads if s.topic == LEADS_TOPIC]

    def sent(self, contract: str) -> list[Send]:
        """What the batch sends first (before its states), of one contract."""
        return [s for s in self.effects.first if s.contract == contract]

    @property
    def dead_letters(self) -> list[dict[str, Any]]:
        """The batch's dead letters."""
        return [dict(s.value) for s in self.sent("deadletter")]

    @property
    def states(self) -> set[bytes]:
        """The keys of the businesses whose states the batch writes."""
        return {w.key for w in self.effects.states if w.table == BUSINESS_TABLE}

    @property
    def resolvers(self) -> set[bytes]:
        """The keys of the entity resolver's entries the batch writes."""
        return {w.key for w in self.effects.states if w.table == RESOLVER_TABLE}

    @property
    def resolution(self) -> list[Send]:
        """Entity resolution's traffic the batch sends."""
        return self.sent("resolution")


class Bus:
    """The workers' flow on records kept in memory, over ``PARTITIONS``
    partitions a topic, with the clock ``clock`` (default: ``RECEIVED``).

    Publish with ``publish_file``, ``publish_event``, ``publish_feedback``,
    ``publish_ticks`` or ``send`` (each record signed by its rightful sender,
    with demo keys in a directory of the bus's own unless ``settings`` name
    one); deliver with ``run``, ``step`` or ``process``. What the flow did
    stays on the bus: ``leads`` and ``topics`` (each lead's latest record),
    ``dead_letters``, ``outcomes``, ``audit``, ``delivered``, the stored states
    (``businesses``, ``resolver``) and ``metrics``."""

    def __init__(self, settings: Settings | None = None, clock: Callable[[], float] | None = None) -> None:
        settings = settings or Settings()
        if not settings.keys_dir:  # every identity's demo key, in a directory of the bus's own
            settings = settings.with_overrides(keys_dir=tempfile.mkdtemp(prefix="bus-keys-"), provision_keys=True,
                                               allow_drills=True)
        self.settings = settings
        self.serde = Serde(self.settings)
        self.signers: dict[tuple[Role, str], Signer] = {}
        self.metrics = Metrics()
        self.store = MemoryStore(PARTITIONS)
        self.clock = clock or (lambda: RECEIVED.timestamp())
        self.teams = load_teams(self.settings.teams_file)
        self.flow = self.restart()
        self.queues: dict[tuple[str, int], deque[Record]] = {}
        self.offsets: dict[tuple[str, int], int] = {}  # the last offset given on each topic partition
        self.topics: dict[str, dict[str, dict[str, Any]]] = {}  # topic -> lead ID -> its latest record
        self.dead_letters: list[dict[str, Any]] = []
        self.delivered: list[Record] = []  # every record the bus delivered, as the broker held it
        self.audit: list[Note] = []  # what the flow told the audit trail
        self.outcomes: list[tuple[str, dict[str, Any]]] = []

    @property
    def businesses(self) -> dict[bytes, bytes]:
        """Every business's stored state, by key."""
        return self.store.businesses

    @property
    def resolver(self) -> dict[bytes, bytes]:
        """The entity resolver's stored entries."""
        return self.store.resolver

    @property
    def leads(self) -> dict[str, dict[str, Any]]:
        """The latest record of every lead on the operators' topic."""
        return self.topics.setdefault(LEADS_TOPIC, {})

    def restart(self) -> Flow:
        """Another incarnation of the worker on the same stored states."""
        self.flow = Flow(self.settings.flow, self.serde, self.store, self.teams, verifier(self.settings),
                         clock=self.clock)
        self.flow.assign(frozenset(range(PARTITIONS)))
        return self.flow

    def state(self, key: str) -> BusinessState:
        """The stored state of the business ``key``."""
        return BusinessState.from_bytes(self.store.businesses[key.encode()])

    # -- publishing -------------------------------------------------------
    def signer(self, role: Role, name: str) -> Signer:
        """The signer of ``role:name``, with its demo key (made on first use)."""
        if (role, name) not in self.signers:
            self.signers[role, name] = signer(self.settings, role, name)
        return self.signers[role, name]

    def connector_of(self, agency: str) -> str:
        """The first installed connector of ``agency`` (``"SAMR"``)."""
        return next(c.name for c in available().values() if c.agency.value == agency)

    def sender(self, topic: str) -> Signer:
        """Who rightly publishes on a topic: the agency's connector, the
        team, a worker, an operator (ticks on the clock topic: drills)."""
        if topic == FEEDBACK_TOPIC:
            return self.signer(Role.OPERATOR, "operator")
        if topic.startswith(FEEDBACK_TOPIC + "."):
            return self.signer(Role.TEAM, topic.removeprefix(FEEDBACK_TOPIC + "."))
        if topic == RESOLUTION_TOPIC:
            return self.signer(Role.WORKER, self.settings.worker_name)
        return self.signer(Role.CONNECTOR, self.connector_of(topic.rsplit(".", 1)[-1].upper()))

    def _rightful(self, topic: str, value: bytes) -> Signer:
        """An event's rightful sender is the connector it names, when it
        decodes and names one (a connector's key speaks for it alone)."""
        if topic.startswith("hub.events."):
            try:
                connector = self.serde.decoder("event")(value)["source"]["connector"]
            except Exception:  # a poison record: whoever rightly publishes on the topic sends it
                connector = None
            if connector in available():
                return self.signer(Role.CONNECTOR, connector)
        return self.sender(topic)

    def record(self, topic: str, key: bytes | None, value: bytes | None, offset: int = -1, partition: int = 0,
               by: Signer | None = None, at: float | None = None, signed: bool = True) -> Record:
        """A record as the broker holds it, signed by ``by`` (default: its
        rightful sender) at ``at`` (default: the bus's clock), when the
        broker took it too."""
        at = self.clock() if at is None else at
        headers: tuple[tuple[str, bytes | None], ...] = ()
        if signed and value is not None:
            signer = by or self._rightful(topic, value)
            signer.clock = lambda: at
            headers = tuple(signer.headers(topic, key, value))  # type: ignore[arg-type]
        return Record(topic, partition, key, value, offset, headers, int(at * 1000))

    def send(self, topic: str, key: bytes, value: bytes, partition: int | None = None,
             by: Signer | None = None, at: float | None = None) -> None:
        """Append a record to its partition (default: the one its key goes to)."""
        where = self.store.partition_of(key) if partition is None else partition
        offset = self.offsets[topic, where] = self.offsets.get((topic, where), -1) + 1
        self.queues.setdefault((topic, where), deque()).append(self.record(topic, key, value, offset, where, by, at))

    def publish_file(self, connector: str, path: Path) -> None:
        """What ``hub connector run`` publishes for a file (rejected rows left out)."""
        instance = load(connector)(PersonalDataHasher("bus-test-key-" + "k" * 32))
        encode = self.serde.encoder(events_topic(Agency(instance.agency)), "event")
        received = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        by = self.signer(Role.CONNECTOR, instance.name)
        for row in instance.read(path):
            try:
                events = instance.events(row, received)
            except RowRejected:
                continue
            for event in events:
                self.send(events_topic(Agency(event["agency"])), event_key(event).encode(), encode(event), by=by)

    def publish_event(self, event: Event) -> None:
        """One event, on its agency's topic, signed by that agency's connector."""
        topic = events_topic(Agency(event["agency"]))
        self.send(topic, event_key(event).encode(), self.serde.encoder(topic, "event")(event),
                  by=self.signer(Role.CONNECTOR, self.connector_of(event["agency"])))

    def publish_feedback(self, lead: dict[str, Any], action: str, team: str, note: str | None = None,
                         at: dt.datetime | None = None, by: str | None = "desk 3",
                         signed_by: str | None = None) -> None:
        """As the team's ``hub leads`` would send it; ``signed_by``: another
        team signs it (a forgery)."""
        when = (at or RECEIVED).timestamp()
        record = feedback(lead, action, team, note, by, when)
        sender = signed_by or team
        topic = feedback_topic(sender)
        self.send(topic, lead["business_key"].encode(), self.serde.encoder(topic, "feedback")(record),
                  by=self.signer(Role.TEAM, sender), at=when)

    def publish_ticks(self, at: dt.datetime, role: Role = Role.OPERATOR) -> None:
        """An operator's drill, by default: the tests' ticks run ahead of the bus's clock."""
        value = self.serde.encoder(FEEDBACK_TOPIC, "feedback")(tick(at.timestamp()))
        by = self.signer(role, "operator" if role is Role.OPERATOR else self.settings.worker_name)
        for partition in range(PARTITIONS):
            self.send(FEEDBACK_TOPIC, TICK_KEY, value, partition, by=by)

    # -- delivering -------------------------------------------------------
    def process(self, records: Iterable[Record | tuple[Any, ...]], write: bool = True) -> Delivered:
        """One batch through the flow; ``write``: carry out its effects, as a
        worker that does not die does."""
        effects = self.flow.process(records)
        if write:
            self.carry_out(effects)
        return Delivered(effects)

    def carry_out(self, effects: Effects) -> None:
        """What a worker does with a batch's effects: resolution's traffic
        back onto its topic, dead letters and outcomes kept, states stored,
        lead copies onto their topics, notes for the audit trail."""
        for send in effects.first:
            if send.topic == RESOLUTION_TOPIC:
                self.send(RESOLUTION_TOPIC, send.key, self.serde.encoder(RESOLUTION_TOPIC, "resolution")(send.value),
                          by=self.signer(Role.WORKER, self.settings.worker_name))
            elif send.contract == "deadletter":
                self.dead_letters.append(dict(send.value))
            else:
                self.outcomes.append((send.topic, dict(send.value)))
        for write in effects.states:
            table = self.store.businesses if write.table == BUSINESS_TABLE else self.store.resolver
            table[write.key] = write.value
        for send in effects.leads:
            self.topics.setdefault(send.topic, {})[send.value["lead_id"]] = dict(send.value)
        self.audit += effects.audit
        self.metrics.worker.observe(effects, self.clock())

    def step(self, pick: Callable[[int], int]) -> bool:
        """Deliver the head of one non-empty partition (``pick`` chooses which); False when all are empty."""
        ready = sorted(tp for tp, queue in self.queues.items() if queue)
        if not ready:
            return False
        topic, partition = ready[pick(len(ready))]
        record = self.queues[(topic, partition)].popleft()
        self.delivered.append(record)
        self.process([record])
        return True

    def run(self, pick: Callable[[int], int] = lambda n: 0, limit: int = 100_000) -> None:
        """Deliver until every partition is empty (``AssertionError`` after
        ``limit`` records); ``pick`` chooses which partition goes next."""
        for _ in range(limit):
            if not self.step(pick):
                return
        raise AssertionError("the bus did not settle")

    def open_leads(self) -> dict[tuple[str, str], frozenset[str]]:
        """The active leads: (business key, rule) -> their evidence's event IDs."""
        return {(lead["business_key"], lead["rules"][0]): frozenset(e["event_id"] for e in lead["evidence"])
                for lead in self.leads.values() if lead["status"] in ACTIVE}

