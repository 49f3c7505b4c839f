"""A worker whose broker goes away, then comes back empty: it says the broker
is unreachable while it is, and stops rather than write its state into a
broker that lost the data that state came from."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub.broker import EmbeddedBroker
from hub.settings import load_settings
from hub.topics import create_topics
from hub.worker import EXIT_BROKER_LOST
from tests.conftest import TEST_PII_KEY
from tests.helpers import metric, start_worker, wait_for

pytestmark = pytest.mark.broker


def test_a_worker_stops_when_its_broker_comes_back_empty(tmp_path: Path) -> None:
    first = EmbeddedBroker().start()
    settings = load_settings(environ={}).with_overrides(broker_url=first.bootstrap, pii_key=TEST_PII_KEY)
    create_topics(settings)
    log = tmp_path / "worker.log"
    worker = start_worker(settings, tmp_path, log=log, HUB_BROKER_CHECK_S="1", HUB_LIFECYCLE_TICK_S="0")
    second = None
    try:
        wait_for("the metrics line", lambda: "metrics: http" in log.read_text())
        port = int(re.search(r"metrics: http://127\.0\.0\.1:(\d+)", log.read_text()).group(1))
        wait_for("the broker seen", lambda: metric(port, "hub_worker_broker_reachable") == 1)
        first.stop()
        wait_for("the broker missed", lambda: metric(port, "hub_worker_broker_reachable") == 0)
        assert worker.poll() is None  # down is not lost: it waits
        second = EmbeddedBroker(port=first.port).start()  # same address, a new (empty) cluster
        assert worker.wait(90) == EXIT_BROKER_LOST
        assert "the broker is another cluster now" in log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        first.stop()
        if second is not None:
            second.stop()
