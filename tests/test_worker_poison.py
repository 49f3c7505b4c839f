"""A real worker under poison and a failing registry, on the embedded broker.

Each test has a broker of its own: a consumer group reads its topics from
the beginning, and one test's records must not be another's poison."""
from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from hub.kafka.clients import KafkaClients
from hub.trust import Role, ensure_keys, signer
from hub.kafka.broker import EmbeddedBroker
from hub.domain.events import event_key
from hub.kafka.readers import final_leads
from hub.apps.pipeline import wait_until_processed
from hub.kafka.serde import Serde
from hub.settings import Settings, load_settings
from hub.kafka.topics import create_topics, read_to_end
from hub.edge.worker import EXIT_INFRASTRUCTURE
from hub.testing.bus import RECEIVED
from tests.conftest import TEST_PII_KEY
from tests.helpers import committed_total, dead_letters, metric, start_worker
from tests.poison import critical_event, encoded, spoiled
from tests.registry import Registry, register_all

pytestmark = pytest.mark.broker

TOPIC = "hub.events.samr"


@pytest.fixture
def own_settings(tmp_path: Path) -> Iterator[Settings]:
    with EmbeddedBroker(tmp_path / "kafka").start() as running:
        settings = load_settings(environ={}).on_embedded(running.bootstrap, pii_key=TEST_PII_KEY, metrics_port=0,
                                                         state_dir=tmp_path / "state")
        with KafkaClients(settings) as clients:
            create_topics(clients)
        ensure_keys(settings)
        yield settings


def _produce(settings: Settings, messages: list[tuple[bytes, bytes | None]]) -> None:
    """In one go, so the worker takes them in one batch."""
    producer = Producer({"bootstrap.servers": settings.broker_url, "partitioner": "murmur2_random",
                         "linger.ms": 200})
    connector = signer(settings, Role.CONNECTOR, "samr.penalty")  # a bad record from a genuine connector
    for key, value in messages:
        producer.produce(TOPIC, key=key, value=value,
                         headers=connector.headers(TOPIC, key, value) if value is not None else None)
    assert producer.flush(30) == 0


def _stop(worker: subprocess.Popen[str]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)


def _port(worker: subprocess.Popen[str]) -> int:
    assert worker.stderr is not None
    found = re.search(r"metrics: http://127\.0\.0\.1:(\d+)/metrics", worker.stderr.readline())
    assert found
    return int(found.group(1))


def test_a_bad_record_and_a_critical_event_in_one_batch(own_settings: Settings, tmp_path: Path, make_clients) -> None:
    settings = own_settings
    good = critical_event(tmp_path, RECEIVED.now(RECEIVED.tzinfo))
    key = event_key(good).encode()
    typo = spoiled(good, "typo", occurred_on=good["occurred_on"].replace(year=2062))
    _produce(settings, [(key, None), (key, encoded(settings, good)), (key, b"\x00\x00\x00\x00\x01garbage"),
                        (key, encoded(settings, typo))])
    worker = start_worker(settings, tmp_path, HUB_LIFECYCLE_TICK_S="0")
    try:
        clients = make_clients(settings)
        wait_until_processed(clients, timeout_s=120)
    finally:
        _stop(worker)
    assert committed_total(clients) == 4
    [lead] = final_leads(clients).values()
    assert lead["severity"] == "CRITICAL" and [e["event_id"] for e in lead["evidence"]] == [good["event_id"]]
    letters = sorted((d["original"]["offset"], d["reason_code"]) for d in dead_letters(clients))
    assert letters == [("0", "tombstone"), ("2", "undecodable_event"), ("3", "date_out_of_range")]


def _registry_down(registry: tuple[Registry, str], settings: Settings, tmp_path: Path,
                   **env: str) -> tuple[Settings, subprocess.Popen[str]]:
    """Schemas registered, then the registry down, and a worker started against it."""
    state, url = registry
    register_all(settings, url)
    state.down = True
    settings = settings.with_overrides(schema_registry_url=url)
    return settings, start_worker(settings, tmp_path, HUB_SCHEMA_REGISTRY_URL=url, HUB_LIFECYCLE_TICK_S="0",
                                  HUB_RETRY_BACKOFF_S="0.1", **env)


def test_nothing_is_acknowledged_while_the_registry_is_down(registry, own_settings: Settings,
                                                            tmp_path: Path, make_clients) -> None:
    good = critical_event(tmp_path, RECEIVED.now(RECEIVED.tzinfo))
    second = critical_event(tmp_path, RECEIVED.now(RECEIVED.tzinfo), "晋太市监罚〔2026〕77号")
    settings, worker = _registry_down(registry, own_settings, tmp_path, HUB_RETRY_ATTEMPTS="1000",
                                      HUB_RETRY_BACKOFF_MAX_S="0.5")
    port = _port(worker)
    try:
        encode = Serde(settings).encoder(TOPIC, "event")  # the registry's IDs: the worker must ask for them
        _produce(settings, [(event_key(e).encode(), encode(e)) for e in (good, second)])
        deadline = time.monotonic() + 60
        while (metric(port, "hub_worker_infrastructure_failures_total") or 0) < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # several commit intervals
        assert metric(port, "hub_worker_infrastructure_failing") == 1
        clients = make_clients(settings)
        assert committed_total(clients) == 0 and not read_to_end(clients, "hub.leads")
        registry[0].down = False
        wait_until_processed(clients, timeout_s=120)
        assert metric(port, "hub_worker_infrastructure_failing") == 0
    except Exception:
        _stop(worker)
        raise AssertionError(worker.stderr.read() if worker.stderr else "") from None
    finally:
        _stop(worker)
    leads = final_leads(clients)
    assert {e["event_id"] for lead in leads.values() for e in lead["evidence"]} == \
        {good["event_id"], second["event_id"]}
    assert not dead_letters(clients)


def test_a_worker_that_gives_up_exits_without_acknowledging(registry, own_settings: Settings, tmp_path: Path,
                                                           make_clients) -> None:
    good = critical_event(tmp_path, RECEIVED.now(RECEIVED.tzinfo))
    settings, worker = _registry_down(registry, own_settings, tmp_path, HUB_RETRY_ATTEMPTS="3")
    try:
        _produce(settings, [(event_key(good).encode(), Serde(settings).encoder(TOPIC, "event")(good))])
        assert worker.wait(120) == EXIT_INFRASTRUCTURE
    finally:
        _stop(worker)
    clients = make_clients(settings)
    assert committed_total(clients) == 0
    registry[0].down = False
    again = start_worker(
        settings, tmp_path, HUB_SCHEMA_REGISTRY_URL=settings.schema_registry_url, HUB_LIFECYCLE_TICK_S="0"
    )
    try:
        wait_until_processed(clients, timeout_s=120)
    finally:
        _stop(again)
    [lead] = final_leads(clients).values()
    assert [e["event_id"] for e in lead["evidence"]] == [good["event_id"]]
