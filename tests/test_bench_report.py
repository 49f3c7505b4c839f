"""``hub bench``'s report, from figures given (no broker, no timing): the
stages and the rest add up to the worker's time per event."""
from __future__ import annotations

import re

import pytest
from confluent_kafka import TopicPartition

from hub.devtools import bench
from hub.devtools.bench import BenchResult
from hub.flow.topics import RESOLUTION_TOPIC
from hub.kafka.clients import KafkaClients
from hub.settings import Settings
from hub.flow.effects import Stage


def _result(**changes: object) -> BenchResult:
    figures: dict[str, object] = {
        "events": 20000,
        "businesses": 5000,
        "plain_per_s": 50000.0,
        "connector_per_s": 3000.0,
        "worker_per_s": 800.0,
        "worker_wall_per_s": 700.0,
        "worker_batches": 30,
        "worker_records": 24920,
        "stages": {Stage.VERIFY: 1.0, Stage.DECODE: 2.0, Stage.RULES: 3.0},
        "faust_floor_per_s": 4000.0,
        "two_workers_per_s": 1600.0,
        "pipeline_per_s": 600.0,
        "lead_records": 15000,
        "paced_rate": 1000.0,
        "paced_leads": 200,
        "paced_events": 10000,
        "latency_p50_s": 2.0,
        "latency_p99_s": 3.5,
        "two_paced_leads": 190,
        "two_latency_p50_s": 0.2,
        "two_latency_p99_s": 0.4,
        "peak_rss_mib": 1200.0,
        "worker_rss_growth_mib": 220.0,
        "broker_peak_rss_mib": 500.0,
        "state_bytes_mean": 2004.0,
        "state_bytes_max": 6033,
        "states": 4916,
        "events_on_broker": 60000,
        "disk_bytes_before": 300 * 2**20,
        "disk_bytes_after": 120 * 2**20,
        "changelog_bytes_after": 40 * 2**20,
    }
    figures.update(changes)
    return BenchResult(**figures)  # type: ignore[arg-type]


def _per_event(lines: list[str], label: str) -> float:
    [line] = [line for line in lines if line.strip().rsplit(None, 1)[0] == label]
    return float(line.split()[-1])


def test_the_stages_and_the_rest_add_up_to_the_worker_time_an_event() -> None:
    lines = _result().lines()
    assert _per_event(lines, "total") == 1250.0  # 1e6 / 800 events a second
    stages = {stage: _per_event(lines, stage.value) for stage in Stage}
    assert (stages[Stage.VERIFY], stages[Stage.DECODE], stages[Stage.RULES]) == (50.0, 100.0, 150.0)  # s/20 000, µs
    assert sum(stages.values()) + _per_event(lines, "Faust, Kafka and the rest") == 1250.0


def test_the_report_says_how_many_records_the_worker_read_beside_the_events() -> None:
    [line] = [line for line in _result().lines() if "records it read" in line]
    assert re.search(r"24,920 \(4,920 besides the events.*1\.25 records an event", line), line
    assert "ratio to plain loop 0.016" in _result().lines()[3]


def test_the_report_states_the_rate_faust_and_verifying_alone_leave() -> None:
    [line] = [line for line in _result().lines() if line.startswith("before the hub's own work")]
    # Faust 1e6/4000 = 250 µs; verifying 1 s over 20 000 events = 50 µs; 1e6/300 ≈ 3,333 events/s
    assert "Faust 250 µs" in line and "signature 50 µs = 300 µs" in line and "at most 3,333 events/s" in line, line
    failed = _result(faust_floor_per_s=0.0).lines()  # the bare agent failed: no figure made of it
    assert not [line for line in failed if line.startswith("before the hub's own work")]
    assert "bare Faust agent (the ceiling):   failed (its error is logged above)" in failed


def test_rates_over_records_count_events_only(monkeypatch: pytest.MonkeyPatch) -> None:
    ends = {
        TopicPartition("events.samr", 0): 12000,
        TopicPartition("events.samr", 1): 8000,
        TopicPartition(RESOLUTION_TOPIC, 0): 5000,
    }
    monkeypatch.setattr(bench, "event_ends", lambda clients: ends)
    got, share = bench._event_share(KafkaClients(Settings()))  # nothing connects: event_ends is replaced
    assert got == ends and share == 0.8  # 20 000 events of 25 000 records


def test_the_report_gives_the_paced_latency_of_one_and_of_two_workers() -> None:
    lines = _result().lines()
    [one] = [n for n, line in enumerate(lines) if line.startswith("event-to-lead latency at 1,000/s")]
    assert "p50 2000 ms, p99 3500 ms" in lines[one]
    assert lines[one + 1] == "  the same on two worker processes: p50 200 ms, p99 400 ms (190 lead records)"


def test_the_report_gives_the_brokers_disk_per_100_000_events() -> None:
    lines = _result().lines()
    assert (
        "broker disk: 300 MiB after 60,000 events, 120 MiB once compacted (changelogs 40 MiB): "
        "200 MiB per 100 000 events" in lines
    )
