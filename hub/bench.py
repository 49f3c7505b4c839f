"""``hub bench``: throughput and latency on the embedded broker, beside a plain
confluent-kafka consume/json/produce loop on the same broker.

Phases, each on its own synthetic penalty rows:
1. the plain loop;
2. the connector alone (parse, validate, hash, Avro, publish);
3. the worker alone, over events already on the broker;
4. the pipeline as deployed: connector in its own process, worker in this one;
5. paced load, well below capacity, for event-to-lead latency without a backlog.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from connectors.discovery import load
from connectors.runner import ConnectorRunner, RunSummary
from hub.domain.pii import PersonalDataHasher
from hub.metrics import Metrics
from hub.pipeline import run_connectors, run_pipeline
from hub.samples import synthetic_penalties
from hub.serde import Serde
from hub.settings import Settings
from hub.topics import LEADS_TOPIC, admin, read_to_end


@dataclass
class BenchResult:
    events: int
    plain_per_s: float
    connector_per_s: float
    worker_per_s: float
    pipeline_per_s: float
    lead_records: int
    paced_rate: float
    latency_p50_s: float
    latency_p99_s: float
    peak_rss_mib: float
    broker_peak_rss_mib: float

    def lines(self) -> list[str]:
        return [
            f"events per phase:                 {self.events}",
            f"plain consume/json/produce loop:  {self.plain_per_s:10,.0f} events/s",
            f"connector alone:                  {self.connector_per_s:10,.0f} rows/s",
            f"worker alone:                     {self.worker_per_s:10,.0f} events/s "
            f"({self.lead_records} lead records)",
            f"pipeline end to end:              {self.pipeline_per_s:10,.0f} events/s "
            f"(ratio to plain loop {self.pipeline_per_s / self.plain_per_s:.3f})",
            f"event-to-lead latency at {self.paced_rate:,.0f}/s: p50 {self.latency_p50_s * 1000:.0f} ms, "
            f"p99 {self.latency_p99_s * 1000:.0f} ms",
            f"peak RSS: hub process {self.peak_rss_mib:.0f} MiB, broker {self.broker_peak_rss_mib:.0f} MiB",
        ]


def plain_loop_rate(settings: Settings, n: int) -> float:
    """Consume JSON, decode, re-encode, produce: the floor any Python pipeline pays."""
    client = admin(settings)
    for future in client.create_topics([NewTopic(name, settings.topic_partitions, 1)
                                        for name in ("bench.plain.in", "bench.plain.out")]).values():
        future.result()
    producer = Producer({"bootstrap.servers": settings.broker_url, "linger.ms": 20})
    body = json.dumps({"event_id": "x" * 30, "business_id": "91410502MA3XK1Q2YB", "summary": "行政处罚" * 10})
    for i in range(n):
        producer.produce("bench.plain.in", key=str(i % 5000).encode(), value=body.encode())
        if i % 10000 == 0:
            producer.poll(0)
    producer.flush()
    consumer = Consumer({"bootstrap.servers": settings.broker_url, "group.id": "bench-plain",
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "log_level": 3})
    consumer.subscribe(["bench.plain.in"])
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
    producer.flush()
    consumer.close()
    return seen / (time.perf_counter() - (started or time.perf_counter()))


def _in_subprocess(settings: Settings, sources: list[tuple[str, Path]], _: Metrics) -> list[RunSummary]:
    """Connectors as deployed: a process of their own, not sharing the worker's GIL."""
    runs = []
    for name, path in sources:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hub.cli", "--broker", settings.broker_url, "connector", "run",
                        name, "--path", str(path)], check=True, capture_output=True,
                       env={**os.environ, "HUB_METRICS_PORT": "0", "HUB_PII_KEY": "hub-bench-only-key"})
        runs.append(RunSummary(name, str(path), elapsed_s=time.perf_counter() - started))
    return runs


def _paced(rate: float, chunk: int) -> object:
    """One long-lived connector (as with --follow) fed a file of ``chunk`` rows at a time."""
    def feed(settings: Settings, sources: list[tuple[str, Path]], metrics: Metrics) -> list[RunSummary]:
        connector = load(sources[0][0])(PersonalDataHasher(settings.pii_key), settings.validation)
        runner = ConnectorRunner(settings, connector, metrics)
        runs = []
        try:
            for _, path in sources:
                started = time.perf_counter()
                runs.append(runner.run_file(path))
                time.sleep(max(0.0, chunk / rate - (time.perf_counter() - started)))
        finally:
            runner.close()
        return runs
    return feed


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


def run_benchmark(settings: Settings, events: int, businesses: int, broker_pid: int | None,
                  paced_rate: float = 500.0, paced_events: int = 5000) -> BenchResult:
    folder = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    plain = plain_loop_rate(settings, events)

    alone = synthetic_penalties(folder / "alone.csv", rows=events, businesses=businesses)
    [connector_run] = run_connectors(settings, [("samr.penalty", alone)], Metrics())
    # the file is already delivered, so the pipeline's connector skips it: the worker alone
    worker_only = run_pipeline(settings, [("samr.penalty", alone)], Metrics())

    both = synthetic_penalties(folder / "both.csv", rows=events, businesses=businesses, seed=8, first_row=events)
    pipeline = run_pipeline(settings, [("samr.penalty", both)], Metrics(), feeder=_in_subprocess)

    chunk = 250
    paced_files = [("samr.penalty", synthetic_penalties(folder / f"paced-{i}.csv", rows=chunk,
                                                        businesses=businesses, seed=100 + i,
                                                        first_row=2 * events + i * chunk))
                   for i in range(paced_events // chunk)]
    paced_started = time.time()
    run_pipeline(settings, paced_files, Metrics(), feeder=_paced(paced_rate, chunk))  # type: ignore[arg-type]
    decode = Serde(settings).decoder("lead")
    latencies = []
    for msg in read_to_end(settings, LEADS_TOPIC):
        lead = decode(msg.value())
        if lead["triggered_by_received_at"].timestamp() >= paced_started:
            latencies.append((lead["updated_at"] - lead["triggered_by_received_at"]).total_seconds())
    return BenchResult(
        events=events,
        plain_per_s=plain,
        connector_per_s=connector_run.rows_read / connector_run.elapsed_s,
        worker_per_s=worker_only.events_processed / worker_only.elapsed_s,
        pipeline_per_s=events / pipeline.elapsed_s,
        lead_records=len(worker_only.leads),
        paced_rate=paced_rate,
        latency_p50_s=_percentile(latencies, 0.50),
        latency_p99_s=_percentile(latencies, 0.99),
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        broker_peak_rss_mib=_broker_hwm_mib(broker_pid),
    )
