"""The Faust edge of the flow: it wires the topics and tables to
``hub.flow.Flow`` and carries out the effects the flow returns (``Edge``).
Built from settings; nothing connects at import time. Whatever
touches Faust's private attributes is in ``hub.edge.faust_patches``.

Per-event cost in Faust decides throughput, so the agent takes records in
batches, decodes Avro itself (``hub.kafka.serde``; raw serializers in Faust), and
the flow loads each business's state once per batch and writes it once.

At-least-once, made idempotent: for each batch, what a replay would derive
again (resolution's messages, outcomes, dead letters) is published first,
then the changed states, which record every lead about to be published, are
written to the tables' changelogs and flushed, then the leads are published,
and only then does ``take()`` ack the records. A crash before the state
write replays records the state does not hold (the same records again); a
crash after it replays duplicates, and the next worker to load such a state
publishes the leads its last write owed (``BusinessState.resume``). So no
lead reaches the topics that its business's state does not know, and none
is lost.

A bad record is the flow's to dead-letter; a failure of the infrastructure
(registry, broker, changelog) is retried here with backoff and never
acknowledged, and after ``retry_attempts`` the process exits
(``EXIT_INFRASTRUCTURE``) without letting Faust acknowledge the batch, so
that its supervisor's restart replays it. Before each of the three writes
the worker checks it still owns the batch's partitions (``fence``).
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import partial, wraps
from time import perf_counter
from typing import Any
from collections.abc import Awaitable, Callable, Iterable

import faust
from confluent_kafka import KafkaError, KafkaException, Producer, TopicCollection

from hub.audit.entries import Entry, key_changes
from hub.edge.audit_log import AuditLog, recent_report
from hub.kafka.connection import faust_credentials
from hub.domain.teams import COPY_FIELDS, load_teams, without_oversight
from hub.edge.faust_patches import (Processed, QuietMonitor, StallHealer, StoppableWorker, has_unacked,
                               mark_unacknowledged, read_offset, set_without_changelog, still_member, strict_commits)
from hub.edge.feedback import TICK_KEY, tick
from hub.flow.topics import feedback_topic
from hub.flow import Effects, Flow, Record, Seen, Send
from hub.flow.codec import Encode
from hub.flow.effects import Stage
from hub.edge.metrics import Metrics
from hub.edge.retry import Backoff, GaveUp, retried, shown
from hub.kafka.serde import Serde, SharedRuns
from hub.settings import Settings
from hub.trust import Role, Signer, signer, verifier
from hub.trust.signatures import broker_timestamp_ms, headers_of
from hub.kafka.clients import KafkaClients
from hub.kafka.topics import changelog_topic, key_partition, source_topics
from hub.flow.topics import BUSINESS_TABLE, FEEDBACK_TOPIC, RESOLVER_TABLE

log = logging.getLogger(__name__)

# EX_TEMPFAIL: the infrastructure failed a batch ``retry_attempts`` times; a
# restart replays it.
EXIT_INFRASTRUCTURE = 75
# The broker answers as another cluster: the data this worker's state and
# offsets came from is gone, and nothing it holds may be written there.
EXIT_BROKER_LOST = 76


class Fenced(Exception):
    """This worker no longer owns the partitions of the batch in hand."""


class TableView:
    """A Faust table as the flow's ``Table``."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: bytes) -> bytes | None:
        value = self.table.get(key)
        return None if value is None else bytes(value)

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        items: Iterable[tuple[bytes, bytes]] = self.table.items()  # a Faust table: untyped
        return items


class FaustStore:
    def __init__(self, businesses: Any, resolver: Any, partitions: int) -> None:
        self.businesses, self.resolver = TableView(businesses), TableView(resolver)
        self._partitions = partitions

    def partition_of(self, key: bytes) -> int:
        """The changelog partition of a key: murmur2, as every producer of the
        hub chooses it. Not asked of Faust's producer, whose metadata knows
        only the topics it has sent to (a restarted worker's knows none)."""
        return key_partition(key, self._partitions)


@dataclass
class Tally:
    """What the flow saw in this process, for ``hub backfill``'s summary, and
    where the time went, for ``hub bench``."""

    seen: Counter[Seen] = field(default_factory=Counter)
    seconds: Counter[Stage] = field(default_factory=Counter)
    batches: int = 0
    records: int = 0  # taken from the topics: events, and the messages entity resolution and the clock send
    busy_from: float | None = None  # perf_counter at the start of the first batch
    busy_until: float | None = None  # and at the end of the last

    def add(self, effects: Effects, started: float, records: int) -> None:
        self.seen.update(o.seen for o in effects.observations)
        self.seconds.update(effects.seconds)
        self.batches += 1
        self.records += records
        self.busy_from = started if self.busy_from is None else self.busy_from
        self.busy_until = perf_counter()


class Undelivered(Exception):
    """The broker did not take every record of a step: the step is retried."""


class Publisher:
    """Sends records and returns once the broker has acknowledged them all:
    the flow's ``Send``s, each encoded with its topic's contract, and the
    tables' changelog records.

    confluent-kafka's producer, not Faust's: librdkafka batches in C for
    about 2 µs a record where aiokafka's Python path (and Faust's producer
    buffer, for table writes) costs tens of µs. The partitioner is the same
    murmur2 (``producer_config``), so a business's records and its state
    land in the partition its events do."""

    def __init__(self, settings: Settings, serde: Serde, signer: Signer, producer: Producer) -> None:
        """``producer``: the worker's one producer (the audit trail's too, so
        the leads' wait covers its entries)."""
        self.serde = serde
        self.signer = signer
        self.timeout_s = settings.publish_timeout_s
        self.producer = producer
        self.encoders: dict[tuple[str, str], Encode] = {}
        # A lead goes to the operators and to each team that receives it:
        # what the copies share is written once (most copies read everything).
        self.lead_runs = SharedRuns(serde.local.latest("lead").raw, COPY_FIELDS)
        self.lead_headers: dict[str, bytes] = {}
        self.failures: list[KafkaError] = []

    def _delivered(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            self.failures.append(error)

    def produce(self, topic: str, key: bytes, value: bytes, partition: int = -1,
                headers: list[tuple[str, str | bytes | None]] | None = None) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key, partition, on_delivery=self._delivered, headers=headers)
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self.producer.poll(0.1)

    async def flush(self, seconds: dict[Stage, float], stage: Stage = Stage.SEND) -> None:
        """Wait for every record produced so far."""
        started = perf_counter()
        # librdkafka waits without the GIL; the event loop goes on meanwhile.
        left = await asyncio.get_running_loop().run_in_executor(None, self.producer.flush, self.timeout_s)
        seconds[stage] += perf_counter() - started
        failures, self.failures = self.failures, []
        if left or failures:
            raise Undelivered(f"{left} records unacknowledged, {len(failures)} refused"
                              + (f" ({failures[0].str()})" if failures else ""))

    async def send_all(self, sends: list[Send], seconds: dict[Stage, float]) -> None:
        """Every record, signed by the worker as one batch (a hash tree: one
        signature for all). ``seconds``: where the time is added up."""
        started = perf_counter()
        values = [self.encode(send) for send in sends]
        encoded = perf_counter()
        seconds[Stage.ENCODE] += encoded - started
        headers = self.signer.batch([(send.topic, send.key, value) for send, value in zip(sends, values, strict=False)])
        seconds[Stage.SIGN] += perf_counter() - encoded
        for send, value, signed in zip(sends, values, headers, strict=False):
            self.produce(send.topic, send.key, value, headers=signed)
        if sends:
            await self.flush(seconds)

    def encode(self, send: Send) -> bytes:
        if send.contract == "lead":
            header = self.lead_headers.get(send.topic)
            if header is None:
                header = self.lead_headers[send.topic] = self.serde.header(send.topic, "lead")
            return header + self.lead_runs.body(send.value)
        encode = self.encoders.get((send.topic, send.contract))
        if encode is None:
            encode = self.encoders[(send.topic, send.contract)] = self.serde.encoder(send.topic, send.contract)
        return encode(send.value)


def _faust_app(settings: Settings) -> faust.App:
    return faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.broker_url.split(",")],
        broker_credentials=faust_credentials(settings),
        store=settings.table_store,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=False,  # `hub topics create` owns topic creation
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_commit_interval=settings.commit_interval_s,
        consumer_auto_offset_reset="earliest",
        processing_guarantee=settings.processing_guarantee.value,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        Monitor=QuietMonitor,
        producer_linger_ms=5,
        # Standby copies of other workers' tables: with the memory store a
        # worker restores a partition from its changelog when it gets it
        # anyway, and Faust's standby recovery seeks to negative offsets on
        # partitions it has not read yet (ValueError; the worker crashed in
        # rebalances).
        table_standby_replicas=0,
    )


class Edge:
    """One worker: a Faust app wired to a ``Flow``. The agent hands each
    batch to the flow and carries out its effects (``carry_out``); the
    timers heal stalled commits, report lag, tick the lifecycle's clock and
    watch the broker. Built from settings; nothing connects until Faust runs it."""

    def __init__(self, clients: KafkaClients, metrics: Metrics, started: threading.Event | None = None,
                 audit: AuditLog | None = None) -> None:
        settings = clients.settings
        self.clients, self.settings, self.metrics = clients, settings, metrics
        self.app = app = _faust_app(settings)
        self.serde = Serde(settings)
        # Resolution's traffic is keyed like the events (by business, or by
        # lookup key) and replayed like them: strict commits and stall healing apply.
        self.source_names = set(source_topics())
        # use_partitioner: the changelog partition comes from the key's murmur2
        # hash, the same hash the connectors' producers use for the events, so
        # a business's state lives in the partition its events do even though
        # a batch mixes partitions.
        self.tables = {name: app.Table(name, key_type=bytes, value_type=bytes, use_partitioner=True,
                                       partitions=settings.topic_partitions)
                       for name in (BUSINESS_TABLE, RESOLVER_TABLE)}
        self.changelogs = {name: changelog_topic(settings, name) for name in self.tables}
        store = FaustStore(self.tables[BUSINESS_TABLE], self.tables[RESOLVER_TABLE], settings.topic_partitions)
        teams = load_teams(settings.teams_file)
        uncovered = without_oversight(teams)
        if uncovered:
            log.warning("no oversight team covers %s: leads flagged there (a transfer overdue, a referral closed "
                        "untransferred) reach no procuratorate", ", ".join(uncovered))
        # one key for the worker's records and its audit chain
        self.signer = audit.signer if audit else signer(settings, Role.WORKER, settings.worker_name)
        self.flow = Flow(settings.flow, self.serde, store, teams, verifier(settings))
        self.audit = audit or AuditLog(clients, self.signer, metrics)
        self.publisher = Publisher(settings, self.serde, self.signer, self.audit.producer)
        self.keys_seen = key_changes({}, self.flow.reader.verifier.trust.refresh())[1]
        self.feedback_topics = [feedback_topic(name) for name, team in teams.items() if not team.oversees]
        self.tally = Tally()
        self.backoff = Backoff(settings.retry_attempts, settings.retry_backoff_s, settings.retry_backoff_max_s)
        self.assigned_in: int | None = None  # the generation the flow was last assigned in
        # Where each partition's log starts: the first commit of a partition
        # must start there (see strict_commits).
        log_start: dict[Any, int] = {}
        self.processed = Processed()
        strict_commits(app.consumer, log_start, self.processed)
        self.healer = StallHealer(app.consumer, self.source_names, settings.commit_stall_heal_s, log_start,
                                  self.processed)
        self._wire(started)

    def _wire(self, started: threading.Event | None) -> None:
        """Faust's agent, timers and signal, each handing over to a method."""
        app, settings = self.app, self.settings
        # Feedback and clock ticks are keyed by business like the events: one
        # agent, one state per business, no cross-partition coordination.
        consumed = sorted({*self.source_names, FEEDBACK_TOPIC, *self.feedback_topics})
        sources = app.topic(*consumed, key_type=bytes, value_type=bytes)

        @app.agent(sources, name="leads")
        async def leads(stream: Any) -> None:  # a faust Stream: take_events is not on StreamT
            await self.consume(stream)

        @app.on_partitions_revoked.connect
        async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            self.revoked(args[0])  # the signal's argument: the partitions taken away

        periodic = partial(_periodic, app, self.metrics)

        @periodic(min(1.0, settings.commit_stall_heal_s / 2))
        async def heal_stalled_commits() -> None:
            healed = await self.healer.check(asyncio.get_running_loop().time())
            if healed:
                self.metrics.worker.commit_stalls_healed.inc(healed)

        @periodic(2.0)
        async def report_lag() -> None:
            self.report_lag()

        if settings.lifecycle_tick_s > 0:
            @periodic(settings.lifecycle_tick_s)
            async def clock_tick() -> None:
                await self.clock_tick()

        @periodic(settings.audit_head_s)
        async def audit_head() -> None:
            await asyncio.get_running_loop().run_in_executor(None, self.seal)

        @periodic(settings.audit_verify_s)
        async def audit_check() -> None:
            await asyncio.get_running_loop().run_in_executor(None, self.check_trail)

        if started is not None:
            @app.task
            async def announce_start() -> None:
                started.set()

        _watch_broker(app, self.clients, self.metrics, sorted({*consumed, *self.changelogs.values()}))

    # -- partitions ------------------------------------------------------
    def owned_partitions(self) -> frozenset[int]:
        return frozenset(tp.partition for tp in self.app.consumer.assignment() if tp.topic == FEEDBACK_TOPIC)

    def revoked(self, partitions: Any) -> None:
        self.processed.forget(partitions)  # as Faust forgets their acknowledgements
        self.flow.revoke(frozenset(tp.partition for tp in partitions if tp.topic == FEEDBACK_TOPIC))
        self.assigned_in = None  # the next batch assigns the flow again

    # -- batches ---------------------------------------------------------
    async def consume(self, stream: Any) -> None:
        settings, metrics = self.settings, self.metrics
        async for batch in stream.take_events(settings.worker_batch_size, within=settings.worker_batch_within_s):
            records = [Record(e.message.topic, e.message.partition, e.key, e.value, e.message.offset,
                              headers_of(e.message.headers), broker_timestamp_ms(e.message)) for e in batch]
            generation = self.app.consumer_generation_id
            try:
                if any(e.message.generation_id != generation for e in batch):
                    raise Fenced("the batch spans a rebalance")
                await self.carry_out(records, generation)
                self.processed.add(batch)  # done: committable (take_events' own ack is not read)
            except Fenced as exc:
                # Whoever owns the partitions now replays these records from
                # the committed offset; acknowledging them here would commit
                # work this worker did not write. A batch fenced after its
                # state write leaves its leads to the owner's ``resume``.
                log.warning("dropping a batch of %d records unwritten: %s", len(records), exc)
                metrics.worker.fenced_batches.inc()
                self.flow.renew()
                self.assigned_in = None
                mark_unacknowledged(batch)
                continue
            except GaveUp as exc:
                # Returning or raising would run take_events' ``finally``,
                # which acknowledges the batch: leave without it, and let the
                # supervisor restart the worker, which replays the batch.
                log.critical("giving up on a batch of %d records, unacknowledged: %s", len(records), exc)
                logging.shutdown()
                os._exit(EXIT_INFRASTRUCTURE)
            except asyncio.CancelledError:
                mark_unacknowledged(batch)  # stopped mid-batch: not done, so not committed
                raise
            metrics.worker.infrastructure_failing.set(0)

    async def carry_out(self, records: list[Record], generation: int) -> None:
        """The flow's effects for a batch, in three steps, each finished and
        fenced before the next; a failed step is retried with backoff."""
        started = perf_counter()
        if self.assigned_in != generation:
            self.flow.assign(self.owned_partitions())
            self.assigned_in = generation
        fence_time: dict[Stage, float] = defaultdict(float)  # before the effects exist
        await self.fence(generation, "publish", fence_time)
        effects = await retried(lambda: self.first(records), self.backoff, self.failed("publish"))
        effects.seconds[Stage.FENCE] += fence_time[Stage.FENCE]
        await self.fence(generation, "state", effects.seconds)
        await retried(lambda: self.write_states(effects), self.backoff, self.failed("state"))
        await self.fence(generation, "leads", effects.seconds)
        # The audit entries go with the leads (one producer, one wait), before
        # the offsets are committed: a batch whose entries did not all reach
        # the trail is replayed (its entries then come again, from the same
        # records: recognised).
        started_audit = perf_counter()
        entries = self.audit.record(effects.audit)
        effects.seconds[Stage.AUDIT] += perf_counter() - started_audit
        await retried(lambda: self.leads_and_audit(effects, entries), self.backoff, self.failed("leads"))
        self.metrics.worker.observe(effects, time.time())
        self.tally.add(effects, started, len(records))

    async def first(self, records: list[Record]) -> Effects:
        """Run again whole on a retry: the tables are not written yet, so the
        batch meets the same states."""
        effects = self.flow.process(records)
        await self.publisher.send_all(effects.first, effects.seconds)
        return effects

    async def write_states(self, effects: Effects) -> None:
        """Into the tables, and onto their changelogs by our producer (the
        records Faust's own would write: raw key and value, the murmur2
        partition). Idempotent: a retry writes the same states again."""
        for write in effects.states:
            set_without_changelog(self.tables[write.table], write.key, write.value)
            self.publisher.produce(self.changelogs[write.table], write.key, write.value)
        await self.publisher.flush(effects.seconds, Stage.STATE_WRITE)
        for name, table in self.tables.items():
            self.metrics.worker.table_entries.labels(name).set(len(table))

    async def leads_and_audit(self, effects: Effects, entries: list[Entry]) -> None:
        await self.publisher.send_all(effects.leads, effects.seconds)
        if not effects.leads:
            await self.publisher.flush(effects.seconds)
        if self.audit.refused():
            self.audit.resend(entries)
            raise Undelivered("audit entries refused by the broker; sent again")

    def failed(self, stage: str) -> Callable[[int, Exception], None]:
        def report(failures: int, exc: Exception) -> None:
            self.metrics.worker.infrastructure_failures.labels(stage).inc()
            self.metrics.worker.infrastructure_failing.set(1)
            log.warning("%s failed (%d of %d in a row), batch not acknowledged: %s", stage, failures,
                        self.backoff.attempts, shown(exc))
        return report

    async def fence(self, generation: int, stage: str, seconds: dict[Stage, float]) -> None:
        """Raise ``Fenced`` unless this worker still owns the batch's
        partitions: a worker paused beyond the session timeout would write
        stale state over their new owner's."""
        started = perf_counter()
        member = await still_member(self.app, generation)
        seconds[Stage.FENCE] += perf_counter() - started
        if not member:
            raise Fenced(f"generation {generation} ended before the {stage} step")

    # -- timers ----------------------------------------------------------
    def seal(self) -> None:
        """Keys the trust store gained or lost since the last look, then a
        signed head over the chain so far."""
        notes, self.keys_seen = key_changes(self.keys_seen, self.flow.reader.verifier.trust.refresh())
        if notes:
            self.audit.record(notes)
        # Sent with the producer's next batch: a refusal shows at the next
        # batch's check, and the next head covers this one.
        self.audit.head()

    def check_trail(self) -> None:
        """The recent audit trail, checked: a break counts in a metric and is logged."""
        report = recent_report(self.clients, self.flow.reader.verifier.trust.refresh())
        if not report.ok:
            self.metrics.audit.verify_failures.inc()
            log.critical("the audit trail is broken: %s", "; ".join(report.problems))

    def report_lag(self) -> None:
        """Consumer lag in records per owned partition."""
        consumer: Any = self.app.consumer
        total = 0
        for tp in consumer.assignment():
            if tp.topic not in self.source_names:
                continue
            highwater = consumer.highwater(tp)
            read = read_offset(consumer, tp)
            lag = max(0, (highwater or 0) - ((read + 1) if read is not None else 0)) if highwater else 0
            self.metrics.worker.lag_messages.labels(tp.topic, str(tp.partition)).set(lag)
            total += lag
        if total == 0 and not has_unacked(consumer):
            self.metrics.worker.lag_seconds.set(0)
        # the oldest parked record ages between batches too
        self.metrics.worker.report_unresolved(self.flow.unresolved_now(), time.time())

    async def clock_tick(self) -> None:
        """The lifecycle's clock: a tick on each owned partition of the
        feedback topic, behind which that partition's deadlines are checked."""
        value = self.publisher.encode(Send(FEEDBACK_TOPIC, TICK_KEY, "feedback", tick(time.time())))
        headers = [self.signer.header(FEEDBACK_TOPIC, TICK_KEY, value)]
        for partition in sorted(self.owned_partitions()):
            await self.app.producer.send(FEEDBACK_TOPIC, TICK_KEY, value, partition=partition, timestamp=None,
                                         headers=headers)


Periodic = Callable[[], Awaitable[None]]


def surviving(fun: Periodic, metrics: Metrics, interval_s: float) -> Periodic:
    """``fun`` as a timer's body that a failure does not end. In a bare Faust
    timer an exception crashes the app (mode's ``Service.crash``): a tick
    that the broker did not take for a moment, or an audit check that timed
    out, would take the worker down, and stop every deadline check with it.
    Here it is logged and counted, and the timer runs again at its next
    interval."""
    name = fun.__name__

    @wraps(fun)
    async def body() -> None:
        try:
            await fun()
        except Exception as exc:  # cancellation (a BaseException) still stops it
            metrics.worker.timer_failures.labels(name).inc()
            log.warning("%s failed (%s); again in %.0f s", name, shown(exc), interval_s)
    return body


def _periodic(app: faust.App, metrics: Metrics, interval_s: float) -> Callable[[Periodic], Periodic]:
    def register(fun: Periodic) -> Periodic:
        app.timer(interval_s)(surviving(fun, metrics, interval_s))
        return fun
    return register


def _watch_broker(app: faust.App, clients: KafkaClients, metrics: Metrics, watched: list[str]) -> None:
    settings = clients.settings
    started_on: dict[str, str] = {}  # the cluster's ID and its topics' IDs as the worker first saw them

    def identities() -> dict[str, str]:
        """The cluster's ID and each watched topic's; a topic that is gone has none."""
        # asked for at each look, not kept by the timer: Faust's app outlives the worker, and a kept admin
        # client would outlive the process's clients and the broker of an in-process run
        broker_admin: Any = clients.admin()  # confluent-kafka's stubs lack list_topics' result
        found = {"": broker_admin.list_topics(timeout=settings.broker_check_s).cluster_id}
        described = broker_admin.describe_topics(TopicCollection(watched), request_timeout=settings.broker_check_s)
        for name, future in described.items():
            try:
                found[name] = str(future.result().topic_id)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise
                found[name] = "gone"
        return found

    @app.timer(settings.broker_check_s)
    async def watch_broker() -> None:
        """Whether the broker answers, and whether it still holds the data this
        worker started on: a cluster rebuilt from nothing (its log
        directory deleted) or a topic deleted and created again has lost
        what the worker's tables and offsets describe. Writing them into it
        would pass off stale state as current."""
        try:
            found = await asyncio.get_running_loop().run_in_executor(None, identities)
        except Exception as exc:
            metrics.worker.broker_reachable.set(0)
            log.warning("the broker does not answer: %s", type(exc).__name__)
            return
        metrics.worker.broker_reachable.set(1)
        if not started_on:
            started_on.update(found)
        changed = ["the cluster"] if found[""] != started_on[""] else \
            [name for name, identity in found.items() if started_on[name] != identity]
        if changed:
            log.critical("the broker lost the data this worker started from (%s: another ID now); stopping "
                         "without writing this worker's state into it", ", ".join(changed))
            logging.shutdown()
            os._exit(EXIT_BROKER_LOST)


class WorkerHandle:
    """Lets another thread of the process stop a worker running in-process
    (``hub backfill``), without a signal and without the signal stop's
    watchdog, which would end the whole process."""

    def __init__(self) -> None:
        self._worker: StoppableWorker | None = None
        self._stop_requested = False
        self.tally: Tally | None = None  # what the running worker has seen so far
        self._lock = threading.Lock()

    def attach(self, worker: StoppableWorker) -> None:
        with self._lock:
            self._worker = worker
            if self._stop_requested:
                self._stop_now()

    def stop(self) -> None:
        with self._lock:
            self._stop_requested = True
            if self._worker is not None:
                self._stop_now()

    def _stop_now(self) -> None:
        assert self._worker is not None
        self._worker.request_stop()

    def detach(self) -> None:
        """The worker has ended: let go of it (and of its clients)."""
        with self._lock:
            self._worker = None


def run_worker(clients: KafkaClients, metrics: Metrics, started: threading.Event | None = None,
               loglevel: str = "WARN", handle: WorkerHandle | None = None, audit: AuditLog | None = None) -> Tally:
    """Run one worker in this thread until SIGINT/SIGTERM (or ``handle.stop()``);
    the consumer group shares the partitions among however many workers run.
    ``clients``: the process's Kafka clients, made once at its top (the
    worker's admin client and reader are theirs; Faust keeps its own)."""
    settings = clients.settings
    # Faust closes its loop on shutdown: a fresh one lets a process run a worker again.
    asyncio.set_event_loop(asyncio.new_event_loop())
    edge = Edge(clients, metrics, started, audit)
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()  # what start-up built lives as long as the worker: no pass scans it again
    gc.set_threshold(settings.gc_young_threshold, *thresholds[1:])
    edge.audit.start()
    worker = StoppableWorker(edge.app, loglevel=loglevel, quiet=True, override_logging=False)
    worker.broker_down = lambda: metrics.worker.broker_reachable._value.get() == 0
    worker.grace_s = settings.shutdown_grace_s
    worker.spinner = None  # its escape codes mangle the leads printed beside it
    if handle is not None:
        handle.tally = edge.tally
        handle.attach(worker)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:  # mode always ends with SystemExit; only failures matter
        if exc.code not in (0, None):
            raise
    finally:  # a process that runs a worker in-process (backfill, tests) gets its collector back
        gc.set_threshold(*thresholds)
        gc.unfreeze()
    edge.audit.head()  # a graceful stop seals the chain
    if audit is None:  # the worker's own log; a log handed in is its giver's to close (the board records on it)
        edge.audit.close(settings.publish_timeout_s)
    else:
        edge.audit.flush(settings.publish_timeout_s)
    tally = edge.tally
    # The edge's other clients sit in reference cycles (Faust's app): freed
    # now, not at some later collection, they close while the broker is
    # still there, instead of logging refused reconnections after a command
    # that ran the worker in-process has stopped its broker.
    if handle is not None:
        handle.detach()
    del edge, worker
    gc.collect()
    return tally
