"""``hub bench``: end-to-end throughput and latency on the embedded broker,
against a plain confluent-kafka consume/json/produce loop on the same broker."""
from __future__ import annotations

import json
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from hub.metrics import Metrics
from hub.pipeline import run_pipeline
from hub.samples import synthetic_penalties
from hub.settings import Settings
from hub.topics import admin, read_to_end, LEADS_TOPIC
from hub.serde import Serde


@dataclass
class BenchResult:
    events: int
    connector_rows_per_s: float
    end_to_end_events_per_s: float
    baseline_events_per_s: float
    latency_p50_s: float
    latency_p99_s: float
    lead_records: int
    peak_rss_mib: float
    broker_peak_rss_mib: float

    def lines(self) -> list[str]:
        return [
            f"events:                      {self.events}",
            f"connector (parse+publish):   {self.connector_rows_per_s:,.0f} rows/s",
            f"end to end (connector+worker): {self.end_to_end_events_per_s:,.0f} events/s",
            f"plain consume/json/produce:  {self.baseline_events_per_s:,.0f} events/s",
            f"ratio hub / plain loop:      {self.end_to_end_events_per_s / self.baseline_events_per_s:.3f}",
            f"event-to-lead latency:       p50 {self.latency_p50_s:.2f}s  p99 {self.latency_p99_s:.2f}s "
            f"over {self.lead_records} lead records",
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
            record = json.loads(msg.value())
            producer.produce("bench.plain.out", key=msg.key(), value=json.dumps(record).encode())
            seen += 1
        producer.poll(0)
    producer.flush()
    consumer.close()
    return seen / (time.perf_counter() - (started or time.perf_counter()))


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


def run_benchmark(settings: Settings, events: int, businesses: int, broker_pid: int | None) -> BenchResult:
    baseline = plain_loop_rate(settings, events)
    folder = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    path = synthetic_penalties(folder / "penalties.csv", rows=events, businesses=businesses)
    summary = run_pipeline(settings, [("samr.penalty", path)], Metrics(), timeout_s=1800)
    decode = Serde(settings).decoder("lead")
    latencies = []
    for msg in read_to_end(settings, LEADS_TOPIC):
        lead = decode(msg.value())
        latencies.append((lead["updated_at"] - lead["triggered_by_received_at"]).total_seconds())
    run = summary.runs[0]
    return BenchResult(
        events=events,
        connector_rows_per_s=run.rows_read / run.elapsed_s,
        end_to_end_events_per_s=summary.events_processed / summary.elapsed_s,
        baseline_events_per_s=baseline,
        latency_p50_s=_percentile(latencies, 0.50),
        latency_p99_s=_percentile(latencies, 0.99),
        lead_records=len(latencies),
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        broker_peak_rss_mib=_broker_hwm_mib(broker_pid),
    )
