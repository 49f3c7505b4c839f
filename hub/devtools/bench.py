"""``hub bench``: throughput and latency on the embedded broker, beside a plain
confluent-kafka consume/json/produce loop on the same broker.

Phases, each on its own synthetic penalty rows:
1. the plain loop;
2. the connector alone (parse, validate, hash, Avro, publish);
3. the worker alone, over events already on the broker;
4. two worker processes sharing the topics, over the same events;
   before it, Faust's floor: a bare agent of the worker's own Faust
   configuration over the same events, taking batches and doing nothing
   with them (what Faust's per-event machinery costs, whatever the hub does);
5. the pipeline as deployed: connector in its own process, worker in this one;
6. paced load, for event-to-lead latency, from when the worker has
   processed a warm-up file (start-up and table recovery left out).

The worker's time per event is split by stage (``hub.flow.effects.Stage``):
the flow's own stages are timed inside the flow, the edge's around its sends
and table writes; what is left is Faust's fetching and dispatch, Kafka and
the event loop.
"""
from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any
from collections.abc import Iterator

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from connectors.runner import RunSummary
from hub.kafka.broker import EmbeddedBroker, disk_bytes
from hub.kafka.clients import KafkaClients
from hub.edge.metrics import Metrics
from hub.apps.pipeline import Feeder, run_connectors, run_pipeline, wait_until_processed
from hub.devtools.samples import synthetic_penalties
from hub.kafka.serde import Serde
from hub.settings import Settings
from hub.devtools.chaos import process_env
from hub.flow import Seen
from hub.flow.effects import Stage
from hub.kafka.topics import changelog_topic, create_topics, event_ends, lag_consumer, read_to_end, worker_lag
from hub.flow.topics import LEADS_TOPIC, RESOLUTION_TOPIC

log = logging.getLogger(__name__)


# Connector processes on the bench's broker need a key other than the
# development one (which they refuse off the embedded broker they start).
BENCH_PII_KEY = "hub-bench-only-key"
PACED_CHUNK = 250  # rows a file in the paced phases


@dataclass
class BenchResult:
    events: int
    businesses: int
    plain_per_s: float
    connector_per_s: float
    worker_per_s: float  # one worker in this process, over its busy time
    worker_wall_per_s: float  # the same, over the phase's wall time (start-up and group join included)
    worker_batches: int
    worker_records: int  # what that worker took from the topics: the events and entity resolution's messages
    stages: dict[Stage, float]  # that worker's seconds per stage
    faust_floor_per_s: float  # a bare Faust agent over the same events: the ceiling Faust sets (0: it failed)
    two_workers_per_s: float  # two worker processes sharing the topics
    pipeline_per_s: float
    lead_records: int
    paced_rate: float
    paced_leads: int  # lead records the paced load triggered: the latencies' sample
    paced_events: int  # events the worker processed in the paced phase
    latency_p50_s: float
    latency_p99_s: float
    two_paced_leads: int  # the same load on two worker processes
    two_latency_p50_s: float
    two_latency_p99_s: float
    peak_rss_mib: float
    worker_rss_growth_mib: float  # the worker phase's growth of this process's peak
    broker_peak_rss_mib: float
    state_bytes_mean: float  # a business's stored state, as written last
    state_bytes_max: int
    states: int
    events_on_broker: int  # every event the bench's phases put on the broker
    disk_bytes_before: int  # the broker's log directory when the last phase ended
    disk_bytes_after: int  # and once the log cleaner had compacted what it could
    changelog_bytes_after: int

    def lines(self) -> list[str]:
        per_event = {stage: s / self.events * 1e6 for stage, s in self.stages.items()}
        busy = self.events / self.worker_per_s * 1e6 / self.events if self.worker_per_s else 0.0
        faust = 1e6 / self.faust_floor_per_s if self.faust_floor_per_s else 0.0
        return [*self._rate_lines(faust), *self._footprint_lines(), *self._stage_lines(per_event, busy, faust)]

    def _rate_lines(self, faust: float) -> list[str]:
        """Throughput per phase, and the paced phases' latencies; ``faust``: a bare agent's µs an event."""
        return [
            f"events per phase:                 {self.events} ({self.businesses} businesses)",
            f"plain consume/json/produce loop:  {self.plain_per_s:10,.0f} events/s",
            f"connector alone:                  {self.connector_per_s:10,.0f} rows/s",
            f"worker alone:                     {self.worker_per_s:10,.0f} events/s "
            f"(ratio to plain loop {self.worker_per_s / self.plain_per_s:.3f}; {self.lead_records} lead records, "
            f"{self.worker_batches} batches; {self.worker_wall_per_s:,.0f} events/s over the phase's wall time)",
            f"  records it read:                {self.worker_records:10,} ({self.worker_records - self.events:,} "
            f"besides the events: entity resolution's own messages and clock ticks, "
            f"{self.worker_records / self.events if self.events else 0.0:.2f} records an event)",
            (f"bare Faust agent (the ceiling):   {self.faust_floor_per_s:10,.0f} events/s "
             f"({faust:.0f} µs an event before any work; "
             f"ratio to plain loop {self.faust_floor_per_s / self.plain_per_s:.3f})") if faust else
            "bare Faust agent (the ceiling):   failed (its error is logged above)",
            f"two worker processes:             {self.two_workers_per_s:10,.0f} events/s",
            f"pipeline end to end:              {self.pipeline_per_s:10,.0f} events/s "
            f"(ratio to plain loop {self.pipeline_per_s / self.plain_per_s:.3f})",
            f"event-to-lead latency at {self.paced_rate:,.0f}/s: p50 {self.latency_p50_s * 1000:.0f} ms, "
            f"p99 {self.latency_p99_s * 1000:.0f} ms ({self.paced_events} events, {self.paced_leads} lead records)",
            f"  the same on two worker processes: p50 {self.two_latency_p50_s * 1000:.0f} ms, "
            f"p99 {self.two_latency_p99_s * 1000:.0f} ms ({self.two_paced_leads} lead records)",
        ]

    def _footprint_lines(self) -> list[str]:
        """Memory, stored state and the broker's disk."""
        return [
            f"peak RSS: hub process {self.peak_rss_mib:.0f} MiB (worker phase +{self.worker_rss_growth_mib:.0f} MiB, "
            f"{self.worker_rss_growth_mib * 1024 / self.businesses:.1f} KiB a business), "
            f"broker {self.broker_peak_rss_mib:.0f} MiB",
            f"stored state: {self.states} businesses, {self.state_bytes_mean:,.0f} bytes each on average, "
            f"{self.state_bytes_max:,} at most (bounded by history_days and history_max_events)",
            f"broker disk: {self.disk_bytes_before / 2**20:.0f} MiB after {self.events_on_broker:,} events, "
            f"{self.disk_bytes_after / 2**20:.0f} MiB once compacted "
            f"(changelogs {self.changelog_bytes_after / 2**20:.0f} MiB): "
            f"{self.disk_bytes_after / 2**20 / self.events_on_broker * 100_000 if self.events_on_broker else 0:.0f}"
            " MiB per 100 000 events",
        ]

    def _stage_lines(self, per_event: dict[Stage, float], busy: float, faust: float) -> list[str]:
        """The worker's µs an event by stage (``busy``: in all), and what signatures cost."""
        return [
            "worker alone, time per event by stage (µs):",
            *(f"  {stage.value:<28} {per_event.get(stage, 0.0):8.1f}" for stage in Stage),
            f"  {'Faust, Kafka and the rest':<28} {busy - sum(per_event.values()):8.1f}",
            f"  {'total':<28} {busy:8.1f}",
            *([f"before the hub's own work: Faust {faust:.0f} µs an event + verifying its signature "
               f"{per_event.get(Stage.VERIFY, 0.0):.0f} µs = {faust + per_event.get(Stage.VERIFY, 0.0):.0f} µs "
               f"(at most {1e6 / (faust + per_event.get(Stage.VERIFY, 0.0)):,.0f} events/s "
               "for one worker, whatever else it does)"] if faust else []),
            f"signatures: verifying {per_event.get(Stage.VERIFY, 0.0):.1f} µs an event "
            f"({per_event.get(Stage.VERIFY, 0.0) / busy if busy else 0.0:.1%} of the worker's time), signing what "
            f"it sends {per_event.get(Stage.SIGN, 0.0):.1f} µs an event "
            f"({per_event.get(Stage.SIGN, 0.0) / busy if busy else 0.0:.1%})",
        ]


def plain_loop_rate(clients: KafkaClients, n: int) -> float:
    """Consume JSON, decode, re-encode, produce: the floor any Python pipeline pays."""
    for future in clients.admin().create_topics([NewTopic(name, clients.settings.topic_partitions, 1)
                                                 for name in ("bench.plain.in", "bench.plain.out")]).values():
        future.result()
    producer = clients.producer({"linger.ms": 20}, plain=True)
    _produce_plain(producer, n)
    consumer = clients.consumer("bench-plain", {"auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                                                "log_level": 3})
    consumer.subscribe(["bench.plain.in"])
    seen, started = _relay_plain(consumer, producer, n)
    producer.flush()
    consumer.close()
    return seen / (time.perf_counter() - (started or time.perf_counter()))


def _produce_plain(producer: Producer, n: int) -> None:
    """``n`` JSON records onto the plain loop's input."""
    body = json.dumps({"event_id": "x" * 30, "business_id": "91410502MA3XK1Q2YB", "summary": "行政处罚" * 10})
    for i in range(n):
        producer.produce("bench.plain.in", key=str(i % 5000).encode(), value=body.encode())
        if i % 10000 == 0:
            producer.poll(0)
    producer.flush()


def _relay_plain(consumer: Consumer, producer: Producer, n: int) -> tuple[int, float | None]:
    """Each record read, decoded, encoded and produced again, until ``n`` or
    five minutes: how many, and when the first arrived."""
    seen, started = 0, None
    deadline = time.monotonic() + 300
    while seen < n and time.monotonic() < deadline:
        for msg in consumer.consume(1000, 0.1):
            if msg.error():
                continue
            started = started or time.perf_counter()
            record = json.loads(msg.value() or b"{}")
            producer.produce("bench.plain.out", key=msg.key(), value=json.dumps(record).encode())
            seen += 1
        producer.poll(0)
    return seen, started


def _in_subprocess(clients: KafkaClients, sources: list[tuple[str, Path]], _: Metrics) -> list[RunSummary]:
    """Connectors as deployed: a process of their own, not sharing the worker's GIL."""
    settings = clients.settings
    runs = []
    for name, path in sources:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hub.cli", "connector", "run", name, "--path", str(path)],
                       check=True, capture_output=True, env=process_env(settings, HUB_PII_KEY=BENCH_PII_KEY))
        runs.append(RunSummary(name, str(path), elapsed_s=time.perf_counter() - started))
    return runs


def _paced(rate: float, clock: dict[str, float]) -> Feeder:
    """One long-lived connector process (`hub connector run --follow`, as
    deployed) fed one file at a time, at ``rate`` rows a second. The first
    file warms up: once the worker has processed it (its tables restored
    from the changelogs, its partitions assigned), ``clock["from"]`` is set
    and the paced files follow. Latency is measured from then: a worker's
    start-up is not the latency of its steady state."""
    def feed(clients: KafkaClients, sources: list[tuple[str, Path]], metrics: Metrics) -> list[RunSummary]:
        settings = clients.settings
        inbox = Path(tempfile.mkdtemp(prefix="hub-bench-inbox-"))
        connector = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "connector", "run", sources[0][0], "--path", str(inbox),
             "--follow", "--interval", "0.05"], env=process_env(settings,
                                                                HUB_PII_KEY=BENCH_PII_KEY), stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        try:
            _line_from(connector)  # "metrics: …": it is up
            (_name, warm_up), *paced = sources
            os.replace(warm_up, inbox / warm_up.name)
            _line_from(connector)  # its summary line: published
            wait_until_processed(clients, 600)
            clock["from"] = time.time()
            for _name, path in paced:
                started = time.perf_counter()
                os.replace(path, inbox / path.name)
                rows = _rows(inbox / path.name)
                time.sleep(max(0.0, rows / rate - (time.perf_counter() - started)))
            for _source in paced:  # a summary line per file: all published
                _line_from(connector)
        finally:
            connector.terminate()
            connector.wait(30)
        return []
    return feed


def _line_from(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"the paced connector stopped (exit status {process.wait(30)})")
    return line


def _rows(path: Path) -> int:
    with open(path, "rb") as fh:
        return max(0, sum(1 for _ in fh) - 1)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _broker_hwm_mib(pid: int | None) -> float:
    if pid is None:
        return 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _event_share(clients: KafkaClients) -> tuple[dict[TopicPartition, int], float]:
    """The source topics' ends, and the events' share of the records up to
    them: the rest is entity resolution's traffic, which a worker reads too.
    Rates over records are turned into events a second with it, so that
    every phase counts as the worker-alone phase does."""
    ends = event_ends(clients)
    events = sum(end for tp, end in ends.items() if tp.topic != RESOLUTION_TOPIC)
    return ends, events / sum(ends.values()) if ends else 0.0


def _two_workers(clients: KafkaClients, timeout_s: float = 600.0) -> float:
    """Two `hub worker` processes, in a consumer group of their own, over the
    events already on the topics: events per second from the group's first
    commit to its last (start-up and the group join left out)."""
    settings = clients.settings
    two = clients.with_settings(settings.with_overrides(app_id=f"{settings.app_id}-two", commit_interval_s=0.2))
    create_topics(two)  # the new group's changelogs
    ends, share = _event_share(two)
    with _worker_processes(two.settings, 2):
        return _group_rate(two, ends, share, timeout_s)


def _group_rate(clients: KafkaClients, ends: dict[TopicPartition, int], share: float, timeout_s: float) -> float:
    """Events a second the workers' group processes up to ``ends``, from its
    first commit to its last; ``share``: the events' share of the records.
    One consumer of the group asks at every look (``worker_lag`` asks again
    while the group's coordinator moves as the two workers join)."""
    total = sum(ends.values())
    first: tuple[float, int] | None = None
    deadline = time.monotonic() + timeout_s
    with lag_consumer(clients) as consumer:
        while time.monotonic() < deadline:
            left = sum(max(0, n) for n in worker_lag(clients, ends, consumer).values())
            now = time.perf_counter()
            if first is None and left < total:
                first = (now, left)
            if left == 0 and first is not None:
                return _rate_since(first, now, share)
            time.sleep(0.1)
    raise TimeoutError("the two workers did not process the events in time")


def _rate_since(first: tuple[float, int], now: float, share: float) -> float:
    """``first``: when the group had first committed, and what was left then."""
    return first[1] * share / (now - first[0]) if now > first[0] else 0.0


@contextmanager
def _worker_processes(settings: Settings, n: int) -> Iterator[None]:
    """``n`` `hub worker` processes on the settings' consumer group, without
    periodic ticks, stopped on the way out."""
    env = process_env(settings, HUB_LIFECYCLE_TICK_S="0")
    workers = [subprocess.Popen([sys.executable, "-m", "hub.cli", "worker"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for _ in range(n)]
    try:
        yield
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(60)


def _faust_floor(clients: KafkaClients, timeout_s: float = 600.0) -> float:
    """Events per second of a bare Faust agent, in a process and a consumer
    group of its own, over the records already on the topics."""
    floor = clients.with_settings(clients.settings.with_overrides(app_id=f"{clients.settings.app_id}-floor"))
    create_topics(floor, [])  # its group's own (Faust's leader topic: exactly_once cannot start without it)
    ends, share = _event_share(floor)
    count = f"from hub.devtools.bench import faust_floor; faust_floor({sum(ends.values())})"
    done = subprocess.run([sys.executable, "-c", count], env=process_env(floor.settings), capture_output=True,
                          text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"the bare Faust agent exited {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}")
    return float(done.stdout.rsplit("floor ", 1)[-1].split()[0]) * share


def faust_floor(total: int) -> None:
    """The worker's Faust app (``hub.edge.worker._faust_app``: its settings, its
    monitor) and its batching, with an agent that only counts: prints the
    records per second from its first batch to the one that makes ``total``."""
    import asyncio

    from hub.edge.faust_patches import StoppableWorker
    from hub.settings import load_settings
    from hub.kafka.topics import source_topics
    from hub.edge.worker import _faust_app

    settings = load_settings()
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = _faust_app(settings)

    @app.agent(app.topic(*source_topics(), key_type=bytes, value_type=bytes), name="floor")
    async def floor(stream: Any) -> None:
        seen, first = 0, None
        async for batch in stream.take_events(settings.worker_batch_size, within=settings.worker_batch_within_s):
            if first is None:
                first = (perf_counter(), len(batch))
            seen += len(batch)
            if seen >= total:
                elapsed = perf_counter() - first[0]
                print(f"floor {(seen - first[1]) / elapsed if elapsed > 0 else 0.0}", flush=True)
                os._exit(0)

    worker = StoppableWorker(app, loglevel="WARN", quiet=True, override_logging=False)
    worker.spinner = None
    worker.execute_from_commandline()


def _paced_files(folder: Path, name: str, businesses: int, events: int, first_row: int,
                 seed: int) -> list[tuple[str, Path]]:
    """Files of ``PACED_CHUNK`` rows for a paced phase, and one before them to warm up."""
    return [("samr.penalty", synthetic_penalties(folder / f"{name}-{i}.csv", rows=PACED_CHUNK,
                                                 businesses=businesses, seed=seed + i,
                                                 first_row=first_row + i * PACED_CHUNK))
            for i in range(events // PACED_CHUNK + 1)]


def _latencies(clients: KafkaClients, since: float) -> list[float]:
    """Seconds from each event's receipt to the lead record it triggered,
    for the events received since ``since``."""
    decode = Serde(clients.settings).decoder("lead")
    latencies = []
    for msg in read_to_end(clients, LEADS_TOPIC):
        lead = decode(msg.value())
        if lead["triggered_by_received_at"].timestamp() >= since:
            latencies.append((lead["updated_at"] - lead["triggered_by_received_at"]).total_seconds())
    return latencies


def _two_workers_paced(clients: KafkaClients, files: list[tuple[str, Path]], rate: float) -> list[float]:
    """The paced load again, on two `hub worker` processes of the workers'
    own consumer group (they restore its tables during the warm-up file):
    a deployment's latency at that rate, once one worker is not enough."""
    clock: dict[str, float] = {}
    with _worker_processes(clients.settings, 2):
        _paced(rate, clock)(clients, files, Metrics())
        wait_until_processed(clients, 600)
    return _latencies(clients, clock["from"])


def _vm_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stored_states(clients: KafkaClients) -> list[int]:
    """The size of every business's state as last written to the changelog."""
    latest: dict[bytes, int] = {}
    for message in read_to_end(clients, changelog_topic(clients.settings)):
        key, value = message.key(), message.value()
        if key is not None:
            latest[key] = len(value or b"")
    return [n for n in latest.values() if n]


def _compacted(broker: EmbeddedBroker, settle_s: float = 5.0, timeout_s: float = 120.0) -> tuple[int, int]:
    """The broker's disk use once the log cleaner has done what it can: the
    whole log directory's bytes and the changelogs', when they stayed put
    ``settle_s``."""
    def sizes() -> tuple[int, int]:
        return broker.disk_bytes(), disk_bytes(broker.log_dir, "*-changelog-*/*")

    last, since, deadline = sizes(), time.monotonic(), time.monotonic() + timeout_s
    while time.monotonic() < deadline and time.monotonic() - since < settle_s:
        time.sleep(0.5)
        now = sizes()
        if now != last:
            last, since = now, time.monotonic()
    return last


def _faust_floor_or_failed(clients: KafkaClients) -> float:
    """A bare Faust agent's rate; 0 when it failed."""
    try:
        return _faust_floor(clients)
    except RuntimeError as exc:  # one phase's failure loses not the others' figures
        log.error("%s", exc)
        return 0.0


def run_benchmark(clients: KafkaClients, events: int, businesses: int, broker: EmbeddedBroker,
                  paced_rate: float = 1000.0, paced_events: int = 10000) -> BenchResult:
    """Every phase on ``broker``, a fresh one whose topics were made with
    ``clients.settings`` (a short compacted segment, so that the cleaner
    reaches the changelogs within the run). ``clients``: the run's, handed
    to every phase."""
    folder = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    plain = plain_loop_rate(clients, events)

    alone = synthetic_penalties(folder / "alone.csv", rows=events, businesses=businesses)
    [connector_run] = run_connectors(clients, [("samr.penalty", alone)], Metrics())
    # the file is already delivered, so the pipeline's connector skips it: the worker alone
    before = _vm_peak_mib()
    worker_only = run_pipeline(clients, [("samr.penalty", alone)], Metrics())
    growth = _vm_peak_mib() - before
    tally = worker_only.tally
    busy = (tally.busy_until or 0.0) - (tally.busy_from or 0.0)
    sizes = _stored_states(clients)
    floor = _faust_floor_or_failed(clients)
    two = _two_workers(clients)

    both = synthetic_penalties(folder / "both.csv", rows=events, businesses=businesses, seed=8, first_row=events)
    pipeline = run_pipeline(clients, [("samr.penalty", both)], Metrics(), feeder=_in_subprocess)

    paced_files = _paced_files(folder, "paced", businesses, paced_events, first_row=2 * events, seed=100)
    clock: dict[str, float] = {}
    paced = run_pipeline(clients, paced_files, Metrics(), feeder=_paced(paced_rate, clock))
    latencies = _latencies(clients, clock["from"])
    two_paced = _paced_files(folder, "paced-two", businesses, paced_events,
                             first_row=2 * events + paced_events + PACED_CHUNK, seed=100_000)
    latencies_two = _two_workers_paced(clients, two_paced, paced_rate)
    on_broker = sum(end for tp, end in event_ends(clients).items() if tp.topic != RESOLUTION_TOPIC)
    disk_before = broker.disk_bytes()
    disk_after, changelogs_after = _compacted(broker)
    return BenchResult(
        events=events,
        businesses=businesses,
        plain_per_s=plain,
        connector_per_s=connector_run.rows_read / connector_run.elapsed_s,
        worker_per_s=worker_only.events_processed / busy if busy > 0 else 0.0,
        worker_wall_per_s=worker_only.events_processed / worker_only.elapsed_s,
        worker_batches=tally.batches,
        worker_records=tally.records,
        stages=dict(tally.seconds),
        faust_floor_per_s=floor,
        two_workers_per_s=two,
        pipeline_per_s=events / pipeline.elapsed_s,
        lead_records=tally.seen[Seen.LEAD_PUBLISHED],
        paced_rate=paced_rate,
        paced_leads=len(latencies),
        paced_events=paced.events_processed - PACED_CHUNK,
        latency_p50_s=_percentile(latencies, 0.50),
        latency_p99_s=_percentile(latencies, 0.99),
        two_paced_leads=len(latencies_two),
        two_latency_p50_s=_percentile(latencies_two, 0.50),
        two_latency_p99_s=_percentile(latencies_two, 0.99),
        peak_rss_mib=_vm_peak_mib(),
        worker_rss_growth_mib=growth,
        broker_peak_rss_mib=_broker_hwm_mib(broker.pid),
        state_bytes_mean=sum(sizes) / len(sizes) if sizes else 0.0,
        state_bytes_max=max(sizes, default=0),
        states=len(sizes),
        events_on_broker=on_broker,
        disk_bytes_before=disk_before,
        disk_bytes_after=disk_after,
        changelog_bytes_after=changelogs_after,
    )
