"""The Faust app: events in, leads out. Built by ``create_app`` from
settings; nothing connects at import time.

Per-event cost in Faust decides throughput, so the agent takes events in
batches, decodes Avro with fastavro itself (raw serializers in Faust), loads
each business's state once per batch and writes it back once.

At-least-once, made idempotent: for each batch, what a replay would derive
again (resolution's messages, outcomes, dead letters) is published first,
then the changed states, which record every lead about to be published, are
written to the table's changelog and flushed, then the leads are published,
and only then does ``take()`` ack the events. A crash before the state write
replays events the state does not hold (the same records again); a crash
after it replays duplicates, and the next worker to load such a state
publishes the leads its last write owed (``BusinessState.resume``). So no
lead reaches the topics that its business's state does not know, and none
is lost.

A bad message is the processor's to dead-letter (``hub.processing``); a
failure of the infrastructure (registry, broker, changelog) is retried here
with backoff and never acknowledged, and after ``retry_attempts`` the
process exits (``EXIT_INFRASTRUCTURE``) without letting Faust acknowledge the
batch, so that its supervisor's restart replays it.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
import uuid
from typing import Any, Callable, Collection

import faust
from confluent_kafka import KafkaError, KafkaException, TopicCollection
from faust.sensors.monitor import Monitor

from hub.domain.events import Agency
from hub.domain.leads import BusinessState
from hub.domain.teams import load_teams, route
from hub.feedback import TICK_KEY, tick
from hub.metrics import Metrics
from hub.processing import BatchResult, LeadProcessor, Message
from hub.retry import Backoff, GaveUp, retried
from hub.serde import Serde
from hub.settings import Settings
from hub.domain.resolution import ResolverState
from hub.topics import BUSINESS_TABLE, DEADLETTER_TOPIC, FEEDBACK_TOPIC, LEADS_TOPIC, RESOLUTION_TOPIC, RESOLVER_TABLE, \
    admin, changelog_topic, outcomes_topic, source_topics

log = logging.getLogger(__name__)

# Written alone after each batch's state changes, so the last record batch of
# every changelog partition holds one record: Tansu 0.6 reports a partition's
# high watermark as its last batch's base offset + 1, and Faust stops
# restoring a table at the high watermark. No business key starts with NUL.
SENTINEL_KEY = b"\x00hub:changelog-sentinel"
# EX_TEMPFAIL: the infrastructure failed a batch ``retry_attempts`` times; a
# restart replays it.
EXIT_INFRASTRUCTURE = 75
# The broker answers as another cluster: the data this worker's state and
# offsets came from is gone, and nothing it holds may be written there.
EXIT_BROKER_LOST = 76
# A stop on SIGTERM/SIGINT that did not finish within ``shutdown_grace_s``.
EXIT_STOP_CUT_SHORT = 77


class Fenced(Exception):
    """This worker no longer owns the partitions of the batch in hand."""


def _ignore(self: Monitor, *args: Any, **kwargs: Any) -> None:
    return None


class QuietMonitor(Monitor):
    """Faust's Monitor keeps per-event statistics for its web views, which the
    hub turns off; the hub's Prometheus metrics take their place. Skipping the
    per-event hooks saves about 15 µs an event (a bare take() loop went from
    8.1k to 9.2k events/s on the embedded broker)."""

    on_message_in = on_message_out = on_stream_event_in = on_stream_event_out = _ignore
    on_send_initiated = on_send_completed = on_table_get = on_table_set = _ignore


def create_app(settings: Settings, metrics: Metrics, started: threading.Event | None = None) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.broker_url}",
        store=settings.table_store,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=False,  # `hub topics create` owns topic creation
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_commit_interval=settings.commit_interval_s,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        Monitor=QuietMonitor,
        producer_linger_ms=5,
        # Faust stops recovery when a table's persisted offset passes the
        # changelog's high watermark, taking it for a topic emptied under
        # the store. Tansu 0.6 reports the watermark short of its last batch,
        # so the check fired on healthy rebalances and crashed the worker
        # (issue 12). Lost data is detected by ``watch_broker`` instead: the
        # cluster ID and the topics' IDs it started on.
        recovery_consistency_check=False,
        # Standby copies of other workers' tables: with the memory store a
        # worker restores a partition from its changelog when it gets it
        # anyway, and Faust's standby recovery seeks to negative offsets on
        # partitions it has not read yet (ValueError; the worker crashed in
        # rebalances, issue 12).
        table_standby_replicas=0,
    )
    serde = Serde(settings)
    processor = LeadProcessor(settings, serde.decoder, functools.cache(serde.encoder), metrics.worker)
    teams = load_teams(settings.teams_file)
    encoders = {topic: serde.encoder(topic, "lead") for topic in [LEADS_TOPIC, *(t.topic for t in teams.values())]}
    encode_dead = serde.encoder(DEADLETTER_TOPIC, "deadletter")
    encode_outcome = {outcomes_topic(a.value): serde.encoder(outcomes_topic(a.value), "feedback") for a in Agency}
    encode_resolution = serde.encoder(RESOLUTION_TOPIC, "resolution")
    # Resolution's traffic is keyed like the events (by business, or by lookup
    # key) and replayed like them: strict commits and stall healing apply.
    source_names = set(source_topics())
    consumed = {*source_names, FEEDBACK_TOPIC}
    # Feedback and clock ticks are keyed by business like the events: one
    # agent, one state per business, no cross-partition coordination.
    sources = app.topic(*sorted(consumed), key_type=bytes, value_type=bytes)
    # use_partitioner: the changelog partition comes from the key's murmur2
    # hash, the same hash the connectors' producers use for the events, so a
    # business's state lives in the partition its events do even though a
    # batch mixes partitions.
    businesses = app.Table(BUSINESS_TABLE, key_type=bytes, value_type=bytes, use_partitioner=True,
                           partitions=settings.topic_partitions)
    resolver = app.Table(RESOLVER_TABLE, key_type=bytes, value_type=bytes, use_partitioner=True,
                         partitions=settings.topic_partitions)
    changelogs = {BUSINESS_TABLE: changelog_topic(settings), RESOLVER_TABLE: changelog_topic(settings, RESOLVER_TABLE)}
    changelog = changelogs[BUSINESS_TABLE]

    def load(key: bytes) -> BusinessState:
        raw = businesses.get(key)
        return BusinessState.from_bytes(raw) if raw is not None else BusinessState()

    def load_resolver(key: bytes) -> ResolverState:
        raw = resolver.get(key)
        return ResolverState.from_bytes(raw) if raw is not None else ResolverState()

    def stored() -> Any:
        return ((k, v) for k, v in businesses.items() if k != SENTINEL_KEY)

    def stored_resolvers() -> Any:
        return ((k, v) for k, v in resolver.items() if k != SENTINEL_KEY)

    def owned_partitions() -> frozenset[int]:
        return frozenset(tp.partition for tp in app.consumer.assignment() if tp.topic == FEEDBACK_TOPIC)

    def partition_for(key: bytes) -> int:
        return int(app.producer.key_partition(changelog, key).partition)

    def lead_copies(lead: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """The operators' full copy, and each receiving team's redacted one."""
        return [(LEADS_TOPIC, lead), *((team.topic, copy) for team, copy in route(lead, teams))]

    backoff = Backoff(settings.retry_attempts, settings.retry_backoff_s, settings.retry_backoff_max_s)

    async def process_and_publish(messages: list[Message]) -> BatchResult:
        """Run again whole on a retry: the tables are not written yet, so the
        batch meets the same states. Publishes what a replay would derive
        again (resolution's messages, outcomes, dead letters); the leads wait
        until the states that record them are written."""
        result = processor.process(messages, load, stored, owned_partitions(), partition_for, load_resolver,
                                   stored_resolvers)
        # The producer directly: Faust's Topic.send measured ~30 µs a message more.
        send = app.producer.send
        pending = []
        for topic, feedback in result.outcomes:
            pending.append(await send(topic, feedback["lead_id"].encode(), encode_outcome[topic](feedback),
                                      partition=None, timestamp=None, headers=None))
        pending += [await send(DEADLETTER_TOPIC, b"worker", encode_dead(d), partition=None,
                               timestamp=None, headers=None) for d in result.dead_letters]
        pending += [await send(RESOLUTION_TOPIC, key.encode(), encode_resolution(message), partition=None,
                               timestamp=None, headers=None) for key, message in result.resolution]
        if pending:
            await asyncio.gather(*pending)
        return result

    async def publish_leads(result: BatchResult) -> None:
        """After the states are written: every lead on the topics is one its
        business's state knows, so a replay that draws another window
        supersedes it; a worker that dies before this point leaves the leads
        to the next one's ``BusinessState.resume``. Idempotent: a retry sends
        the same records."""
        send = app.producer.send
        pending = [await send(topic, lead["lead_id"].encode(), encoders[topic](copy), partition=None,
                              timestamp=None, headers=None)
                   for lead in result.leads for topic, copy in lead_copies(lead)]
        if pending:
            await asyncio.gather(*pending)

    async def write_states(result: BatchResult) -> None:
        """Idempotent: a retry writes the same states again."""
        for key, state in result.states.items():
            businesses[key] = state.to_bytes()
        for key, resolver_state in result.resolvers.items():
            resolver[key] = resolver_state.to_bytes()
        await app.producer.flush()
        written: list[tuple[str, Any, Collection[bytes]]] = [
            (BUSINESS_TABLE, businesses, result.states.keys()), (RESOLVER_TABLE, resolver, result.resolvers.keys())]
        for table_name, table, keys in written:
            topic = changelogs[table_name]
            if settings.changelog_sentinels and keys:
                partitions = {app.producer.key_partition(topic, k).partition for k in keys}
                sentinels = [await app.producer.send(topic, SENTINEL_KEY, b"", partition=p, timestamp=None,
                                                     headers=None) for p in partitions]
                await asyncio.gather(*sentinels)
            metrics.worker.table_entries.labels(table_name).set(len(table) - (SENTINEL_KEY in table))

    def failed(stage: str) -> Callable[[int, Exception], None]:
        def report(failures: int, exc: Exception) -> None:
            metrics.worker.infrastructure_failures.labels(stage).inc()
            metrics.worker.infrastructure_failing.set(1)
            log.warning("%s failed (%d of %d in a row), batch not acknowledged: %s: %s", stage, failures,
                        backoff.attempts, type(exc).__name__, exc)
        return report

    async def fence(generation: int, stage: str) -> None:
        """Raise ``Fenced`` unless this worker is still a member of the group
        generation that gave it the batch's partitions. Asked of the group
        coordinator (a heartbeat) right before each write, because a worker
        that was paused beyond the session timeout has not heard yet that its
        partitions went to another, and would write stale state over theirs."""
        thread: Any = app.consumer._thread  # type: ignore[attr-defined]  # Faust's consumer thread
        coordinator = thread._ensure_consumer()._coordinator
        if app.consumer_generation_id == generation and await thread.call_thread(coordinator._do_heartbeat) \
                and coordinator.generation == generation == app.consumer_generation_id:
            return
        raise Fenced(f"generation {generation} ended before the {stage} step")

    @app.agent(sources, name="leads")
    async def process(stream: Any) -> None:  # a faust Stream: take_events is not on StreamT
        async for batch in stream.take_events(settings.worker_batch_size, within=settings.worker_batch_within_s):
            messages = [Message(e.message.topic, e.message.partition, e.key, e.value, e.message.offset)
                        for e in batch]
            generation = app.consumer_generation_id
            try:
                if any(e.message.generation_id != generation for e in batch):
                    raise Fenced("the batch spans a rebalance")
                await fence(generation, "publish")
                result = await retried(lambda: process_and_publish(messages), backoff, failed("publish"))
                await fence(generation, "state")
                await retried(lambda: write_states(result), backoff, failed("state"))
                await fence(generation, "leads")
                await retried(lambda: publish_leads(result), backoff, failed("leads"))
            except Fenced as exc:
                # Whoever owns the partitions now replays these messages from
                # the committed offset; acknowledging them here would commit
                # work this worker did not write. A batch fenced after its
                # state write leaves its leads to the owner's ``resume``.
                log.warning("dropping a batch of %d messages unwritten: %s", len(messages), exc)
                metrics.worker.fenced_batches.inc()
                # States this worker wrote may owe leads it did not publish: as
                # another incarnation, it republishes them when it meets them.
                processor.incarnation = uuid.uuid4().hex
                for event in batch:
                    event.message.acked = True
                continue
            except GaveUp as exc:
                # Returning or raising would run take_events' ``finally``,
                # which acknowledges the batch: leave without it, and let the
                # supervisor restart the worker, which replays the batch.
                log.critical("giving up on a batch of %d messages, unacknowledged: %s", len(messages), exc)
                logging.shutdown()
                os._exit(EXIT_INFRASTRUCTURE)
            except asyncio.CancelledError:
                # Stopped mid-batch: take_events' ``finally`` would acknowledge
                # work not done. Marking the messages acked keeps Faust from
                # recording them, so the strict commits stop before them.
                for event in batch:
                    event.message.acked = True
                raise
            metrics.worker.infrastructure_failing.set(0)

    # Where each partition's log starts: the first commit of a partition must
    # start there (see _strict_commits).
    log_start: dict[Any, int] = {}
    _strict_commits(app.consumer, log_start)
    stalled_since: dict[Any, tuple[int, float]] = {}

    @app.timer(min(1.0, settings.commit_stall_heal_s / 2))
    async def heal_stalled_commits() -> None:
        """faust-streaming issue #596: a recovery race can drop fetched events
        from the stream queues unacked; with strict commits the partition then
        waits at the gap. One that waits ``commit_stall_heal_s`` is sought back
        to its committed offset; the replayed events that were processed are
        duplicates the table suppresses, the dropped ones get processed."""
        consumer: Any = app.consumer  # Faust's private bookkeeping, see _strict_commits
        now = asyncio.get_running_loop().time()
        unknown = [tp for tp in consumer.assignment() if tp.topic in consumed and tp not in log_start]
        if unknown:
            log_start.update(await consumer.earliest_offsets(*unknown))
        for tp in consumer.assignment():
            acked, start = consumer._acked.get(tp), commit_start(consumer, tp, log_start)
            if tp.topic not in source_names or not acked or start is None or min(acked) <= start:
                stalled_since.pop(tp, None)
                continue
            first = stalled_since.setdefault(tp, (start, now))
            if first[0] != start:
                stalled_since[tp] = (start, now)
            elif now - first[1] >= settings.commit_stall_heal_s:
                if consumer._committed_offset.get(tp) is None:  # retention may have moved the start since
                    log_start.update(await consumer.earliest_offsets(tp))
                    start = log_start[tp]
                log.warning("commits on %s wait at %s behind a gap; replaying from there", tp, start)
                acked.clear()
                consumer._acked_index[tp].clear()
                await consumer.seek(tp, start)
                stalled_since.pop(tp, None)
                metrics.worker.commit_stalls_healed.inc()

    broker_admin: Any = admin(settings)  # confluent-kafka's stubs lack list_topics' result
    watched = sorted({*consumed, *changelogs.values()})
    started_on: dict[str, str] = {}  # the cluster's ID and its topics' IDs as the worker first saw them

    def identities() -> dict[str, str]:
        """The cluster's ID and each watched topic's; a topic that is gone has none."""
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
        worker started on: an in-memory Tansu that restarted, a cluster
        rebuilt from nothing or a topic deleted and created again has lost
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

    @app.timer(2.0)
    async def report_lag() -> None:
        """Consumer lag in messages per owned partition. On Tansu the high
        watermark can trail the last batch (see hub.topics.end_offsets), so
        the figure there is a lower bound."""
        consumer: Any = app.consumer
        total = 0
        for tp in consumer.assignment():
            if tp.topic not in source_names:
                continue
            highwater = consumer.highwater(tp)
            read = consumer._read_offset.get(tp)
            lag = max(0, (highwater or 0) - ((read + 1) if read is not None else 0)) if highwater else 0
            metrics.worker.lag_messages.labels(tp.topic, str(tp.partition)).set(lag)
            total += lag
        if total == 0 and not consumer._unacked_messages:
            metrics.worker.lag_seconds.set(0)
        processor.report_unresolved()  # the oldest parked record ages between batches too

    if settings.lifecycle_tick_s > 0:
        encode_tick = serde.encoder(FEEDBACK_TOPIC, "feedback")

        @app.timer(settings.lifecycle_tick_s)
        async def clock_tick() -> None:
            """The lifecycle's clock: a tick on each owned partition of the
            feedback topic, behind which that partition's deadlines are checked."""
            value = encode_tick(tick(time.time()))
            for partition in sorted(owned_partitions()):
                await app.producer.send(FEEDBACK_TOPIC, TICK_KEY, value, partition=partition, timestamp=None,
                                        headers=None)

    if started is not None:
        @app.task
        async def announce_start() -> None:
            started.set()

    return app


def commit_start(consumer: Any, tp: Any, log_start: dict[Any, int]) -> int | None:
    """The offset a partition's next commit must start from: its committed
    offset, or where its log starts when it has none (Faust keeps "never
    committed" and "committed at 0" alike as None); None while unknown."""
    committed = consumer._committed_offset.get(tp)
    return committed if committed is not None else log_start.get(tp)


def _strict_commits(consumer: Any, log_start: dict[Any, int]) -> None:
    """Commit only what was processed: the run of acked offsets that starts
    exactly at the committed offset, or for a partition never committed, at
    the start of its log.

    Replaces Faust's ``Consumer._new_offset`` on this consumer: it commits over
    a one-offset gap at the head (faust-streaming issue #606, open), which loses
    an event that the recovery race (#596) dropped; and offsets its gap
    tracker filled in can be acked twice, so duplicates in the acked list make
    commits crawl one offset per interval. The event topics are not compacted
    and carry no transaction markers, so a gap in them is always an event not
    yet processed. Without a committed offset, any run would do for Faust: a
    partition whose first events the race dropped was committed past them."""
    def new_offset(tp: Any) -> int | None:
        acked = consumer._acked[tp]
        if not acked:
            return None
        start = commit_start(consumer, tp, log_start)
        if start is None:  # not known yet: commit nothing rather than guess
            return None
        clean = sorted({o for o in acked if o >= start})
        acked[:] = clean
        consumer._acked_index[tp] = set(clean)
        if not clean or clean[0] != start:
            return None
        end = 0
        while end + 1 < len(clean) and clean[end + 1] == clean[end] + 1:
            end += 1
        done = clean[:end + 1]
        del acked[:end + 1]
        consumer._acked_index[tp].difference_update(done)
        return done[-1] + 1

    consumer._new_offset = new_offset


class _Worker(faust.Worker):
    """A Faust worker whose stop on a signal cannot hang.

    Faust's graceful stop commits offsets, flushes the producer and leaves
    the group: with the broker down each of those waits out its own timeout,
    a minute and more. Nothing is lost by leaving without them: what was not
    committed is replayed by the next worker, and a state written without its
    leads owes them to the next one (``BusinessState.resume``). So a stop with
    the broker unreachable is immediate, and any stop is cut short after
    ``grace_s``."""

    broker_down: Callable[[], bool] = staticmethod(lambda: False)
    grace_s: float = 30.0

    def _schedule_shutdown(self, signal_: Any) -> None:
        if self.broker_down():
            log.warning("stopping at once: the broker does not answer, so there is nothing to commit or flush; "
                        "what this worker did not commit is replayed")
            logging.shutdown()
            os._exit(0)
        if not self._signal_stop_time:
            watchdog = threading.Timer(self.grace_s, self._cut_short)
            watchdog.daemon = True
            watchdog.start()
        super()._schedule_shutdown(signal_)

    def _cut_short(self) -> None:
        log.error("a graceful stop took longer than %.0fs; leaving without it (nothing uncommitted is lost)",
                  self.grace_s)
        logging.shutdown()
        os._exit(EXIT_STOP_CUT_SHORT)


def run_worker(settings: Settings, metrics: Metrics, started: threading.Event | None = None,
               loglevel: str = "WARN") -> None:
    """Run one worker in this thread until SIGINT/SIGTERM; the consumer group
    shares the partitions among however many workers run."""
    # Faust closes its loop on shutdown: a fresh one lets a process run a worker again.
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = create_app(settings, metrics, started)
    worker = _Worker(app, loglevel=loglevel, quiet=True, override_logging=False)
    worker.broker_down = lambda: metrics.worker.broker_reachable._value.get() == 0
    worker.grace_s = settings.shutdown_grace_s
    worker.spinner = None  # its escape codes mangle the leads printed beside it
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:  # mode always ends with SystemExit; only failures matter
        if exc.code not in (0, None):
            raise
