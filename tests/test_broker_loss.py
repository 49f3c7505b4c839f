"""A worker whose broker goes away, then comes back empty: it says the broker
is unreachable while it is, and stops rather than write its state into a
broker that lost the data that state came from."""
from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from collections.abc import Iterator

import pytest

from hub.kafka.broker import EmbeddedBroker, free_port
from hub.devtools.chaos import process_env
from hub.devtools.samples import synthetic_penalties
from hub.settings import Settings, load_settings
from hub.kafka.clients import KafkaClients
from hub.kafka.topics import create_topics
from hub.flow.topics import FEEDBACK_TOPIC
from hub.edge.worker import EXIT_BROKER_LOST
from tests.conftest import TEST_PII_KEY
from tests.helpers import Valve, metric, start_worker, wait_for

pytestmark = pytest.mark.broker


def _worker_seeing(settings: Settings, tmp_path: Path) -> tuple[subprocess.Popen[str], Path, int]:
    log = tmp_path / "worker.log"
    worker = start_worker(settings, tmp_path, log=log, HUB_BROKER_CHECK_S="1", HUB_LIFECYCLE_TICK_S="0")
    wait_for("the metrics line", lambda: "metrics: http" in log.read_text())
    port = int(re.search(r"metrics: http://127\.0\.0\.1:(\d+)", log.read_text()).group(1))
    wait_for("the broker seen", lambda: metric(port, "hub_worker_broker_reachable") == 1)
    return worker, log, port


def test_a_worker_stops_when_its_broker_comes_back_empty(tmp_path: Path) -> None:
    first = EmbeddedBroker(tmp_path / "first").start()
    settings = load_settings(environ={}).on_embedded(first.bootstrap, pii_key=TEST_PII_KEY)
    with KafkaClients(settings) as clients:
        create_topics(clients)
    worker, log, port = _worker_seeing(settings, tmp_path)
    second = None
    try:
        first.stop()
        wait_for("the broker missed", lambda: metric(port, "hub_worker_broker_reachable") == 0)
        assert worker.poll() is None  # down is not lost: it waits
        # the same address, a new cluster: its log directory was lost
        second = EmbeddedBroker(tmp_path / "second", port=first.port).start()
        assert worker.wait(90) == EXIT_BROKER_LOST
        assert "the broker lost the data this worker started from (the cluster" in log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        first.stop()
        if second is not None:
            second.stop()


def test_a_worker_stops_when_a_topic_it_reads_is_created_anew(broker, tmp_path: Path, make_clients) -> None:
    clients = make_clients(load_settings(environ={}).on_embedded(broker.bootstrap, pii_key=TEST_PII_KEY,
                                                                 app_id="hub-topic-loss"))
    settings = clients.settings
    create_topics(clients)
    worker, log, _ = _worker_seeing(settings, tmp_path)
    try:
        client = clients.admin()
        client.delete_topics([FEEDBACK_TOPIC])[FEEDBACK_TOPIC].result(10)
        create_topics(clients)  # the same name, an empty log: the worker's offsets and state describe the old one
        assert worker.wait(60) == EXIT_BROKER_LOST
        assert f"the broker lost the data this worker started from ({FEEDBACK_TOPIC}" in log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_sigterm_stops_a_worker_promptly_while_its_broker_is_down(tmp_path: Path) -> None:
    with EmbeddedBroker(tmp_path / "kafka") as gone:
        settings = load_settings(environ={}).on_embedded(gone.bootstrap, pii_key=TEST_PII_KEY)
        with KafkaClients(settings) as clients:
            create_topics(clients)
        worker, _log, port = _worker_seeing(settings, tmp_path)
    try:
        wait_for("the broker missed", lambda: metric(port, "hub_worker_broker_reachable") == 0)
        stopping = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        print(f"stopped {time.monotonic() - stopping:.1f}s after SIGTERM")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


@contextlib.contextmanager
def _held_connector(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, EmbeddedBroker]]:
    """A connector publishing 20 000 rows through a valve that lets its first
    200 KB through and then holds it mid-file, whatever the machine's speed
    (issue 30: this test used to race an idle machine, which published every
    row before the test could stop the broker)."""
    port = free_port()
    valve = Valve(port, budget=200_000)
    broker = EmbeddedBroker(tmp_path / "kafka", port=port, advertised=f"127.0.0.1:{valve.port}")
    try:
        broker.start()
        settings = load_settings(environ={}).on_embedded(broker.bootstrap, pii_key=TEST_PII_KEY)
        with KafkaClients(settings) as clients:
            create_topics(clients)
        path = synthetic_penalties(tmp_path / "penalties.csv", rows=20_000, businesses=2000)
        env = process_env(settings, HUB_PUBLISH_TIMEOUT_S="3")
        run = subprocess.Popen([sys.executable, "-m", "hub.cli", "connector", "run", "samr.penalty", "--path",
                                str(path)], cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
        assert valve.held.wait(120), "the connector never sent 200 KB"
        assert run.poll() is None
        yield run, path, broker
    finally:
        valve.close()
        broker.stop()


def test_a_connector_whose_broker_dies_fails_with_its_summary(tmp_path: Path) -> None:
    with _held_connector(tmp_path) as (run, path, broker):
        broker.kill()
        out, err = run.communicate(timeout=60)
    assert run.returncode == 1, err
    assert re.search(rf"samr.penalty {re.escape(path.name)}: \d+ rows read", out), out
    assert "records not acknowledged" in err and "cursor kept at the last checkpoint" in err


def test_a_connector_stopped_mid_file_says_how_far_it_got(tmp_path: Path) -> None:
    with _held_connector(tmp_path) as (run, path, _):
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert re.search(rf"samr.penalty {re.escape(path.name)}: \d+ rows read", out), out
    assert "stopped before the end; a rerun resumes from the last checkpoint" in out
    assert "Traceback" not in err
