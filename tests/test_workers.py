"""Workers on the embedded broker: killed and restarted, and two sharing the load."""
from __future__ import annotations

import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from connectors.runner import ConnectorRunner
from connectors.samr_penalty import SamrPenaltyConnector
from hub.edge.audit_log import read_trail
from hub.audit.verify import verify
from hub.domain.pii import PersonalDataHasher
from hub.kafka.readers import final_leads
from hub.edge.metrics import Metrics
from hub.apps.pipeline import wait_until_processed
from hub.devtools.samples import synthetic_penalties
from hub.kafka.clients import KafkaClients
from hub.settings import Settings, load_settings
from hub.kafka.topics import changelog_topic, create_topics, read_to_end
from hub.trust import TrustStore
from tests.conftest import TEST_PII_KEY
from tests.helpers import committed_total, expected_leads, start_worker

pytestmark = pytest.mark.broker

ROWS = 6000


def _published(broker, tmp_path: Path, app_id: str, seed: int, make_clients) -> KafkaClients:
    """A fresh consumer group, and ROWS more penalty events on the broker;
    the test's clients for it."""
    clients = make_clients(load_settings(environ={}).on_embedded(broker.bootstrap, app_id=app_id,
                                                                 pii_key=TEST_PII_KEY))
    create_topics(clients)
    path = synthetic_penalties(tmp_path / f"{app_id}.csv", rows=ROWS, businesses=1500, seed=seed,
                               first_row=seed * ROWS)
    runner = ConnectorRunner(clients, SamrPenaltyConnector(PersonalDataHasher(TEST_PII_KEY)), Metrics())
    assert runner.run_file(path).events_published == ROWS
    runner.close()
    return clients


def _worker(settings: Settings, cwd: Path, batch_size: int = 20) -> subprocess.Popen[str]:
    return start_worker(settings, cwd, HUB_WORKER_BATCH_SIZE=str(batch_size))


def _metrics_port(worker: subprocess.Popen[str]) -> int:
    assert worker.stderr is not None
    line = worker.stderr.readline()
    found = re.search(r"metrics: http://127\.0\.0\.1:(\d+)/metrics", line)
    assert found, line
    return int(found.group(1))


def _processed(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(m) for m in re.findall(r'^hub_worker_events_processed_total\{[^}]*\} (\S+)$', text, re.M))


def _wait_for_progress(clients: KafkaClients, at_least: int) -> None:
    deadline = time.monotonic() + 120
    while committed_total(clients) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)


def _open_leads(clients: KafkaClients) -> dict[str, frozenset[str]]:
    leads = final_leads(clients)
    assert all(len(lead["evidence"]) == len({e["event_id"] for e in lead["evidence"]}) for lead in leads.values())
    return {lid: frozenset(e["event_id"] for e in lead["evidence"])
            for lid, lead in leads.items() if lead["status"] == "OPEN"}


def test_a_killed_worker_restarted_loses_and_duplicates_nothing(broker, tmp_path: Path, make_clients) -> None:
    clients = _published(broker, tmp_path, "hub-kill-test", seed=1, make_clients=make_clients)
    settings = clients.settings
    expected = expected_leads(clients)
    assert len(expected) > 300

    first = _worker(settings, tmp_path)
    _wait_for_progress(clients, ROWS // 4)
    first.kill()  # SIGKILL: no graceful anything
    first.wait()
    assert 0 < committed_total(clients) < ROWS, "the kill should land mid-stream"

    second = _worker(settings, tmp_path)
    try:
        wait_until_processed(clients, timeout_s=240)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert _open_leads(clients) == expected
    assert len(read_to_end(clients, changelog_topic(settings))) > 0
    # The killed worker's chain and its successor's: the trail still verifies.
    report = verify(read_trail(clients), TrustStore.load(settings.trust_path))
    assert report.ok, report.lines()
    assert report.chains >= 2 and report.heads >= 1


def test_two_workers_share_the_load_and_hand_over_without_loss(broker, tmp_path: Path, make_clients) -> None:
    clients = _published(broker, tmp_path, "hub-two-workers", seed=2, make_clients=make_clients)
    settings = clients.settings
    expected = expected_leads(clients)

    one, two = _worker(settings, tmp_path), _worker(settings, tmp_path)
    ports = [_metrics_port(one), _metrics_port(two)]
    try:
        _wait_for_progress(clients, ROWS // 3)
        shares = [_processed(port) for port in ports]
        one.send_signal(signal.SIGTERM)  # a graceful stop: its partitions go to the other
        one.wait(30)
        wait_until_processed(clients, timeout_s=240)
    finally:
        for worker in (one, two):
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(30)
    assert all(share > 0 for share in shares), shares
    assert _open_leads(clients) == expected
