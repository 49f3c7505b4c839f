"""Shared helpers for broker tests."""
from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any
from collections.abc import Callable

from hub.devtools.chaos import process_env
from hub.domain.events import Agency
from hub.domain.leads import BusinessState
from hub.kafka.clients import KafkaClients
from hub.kafka.serde import Serde
from hub.settings import Settings
from hub.kafka.topics import CATALOGUE, event_ends, read_to_end, worker_lag
from hub.flow.topics import DEADLETTER_TOPIC, RESOLUTION_TOPIC, events_topic


def events_on_broker(clients: KafkaClients) -> list[dict]:
    decode = Serde(clients.settings).decoder("event")
    return [decode(m.value()) for a in Agency for m in read_to_end(clients, events_topic(a))]


def dead_letters(clients: KafkaClients) -> list[dict]:
    decode = Serde(clients.settings).decoder("deadletter")
    return [decode(m.value()) for m in read_to_end(clients, DEADLETTER_TOPIC)]


def raw_bytes_by_topic(clients: KafkaClients, extra_topics: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every key and value on the hub's topics, concatenated per topic."""
    out: dict[str, bytes] = defaultdict(bytes)
    for name in [t.name for t in CATALOGUE] + list(extra_topics):
        for m in read_to_end(clients, name):
            out[name] += (m.key() or b"") + b"\n" + (m.value() or b"") + b"\n"
    return out


def expected_leads(clients: KafkaClients) -> dict[str, frozenset[str]]:
    """What the rules imply for every event on the broker, computed without Faust."""
    settings = clients.settings
    decode = Serde(settings).decoder("event")
    states: dict[bytes, BusinessState] = {}
    for agency in Agency:
        for message in read_to_end(clients, events_topic(agency)):
            states.setdefault(message.key(), BusinessState()).accept(decode(message.value()), settings.rules)
    expected = {}
    for key, state in states.items():
        for lead in state.lead_updates(key.decode(), settings.rules, 0):
            expected[lead["lead_id"]] = frozenset(e["event_id"] for e in lead["evidence"])
    return expected


def committed_total(clients: KafkaClients) -> int:
    """Events the workers' consumer group has committed, over all event partitions
    (not entity resolution's own messages)."""
    ends = {tp: end for tp, end in event_ends(clients).items() if tp.topic != RESOLUTION_TOPIC}
    return sum(ends.values()) - sum(worker_lag(clients, ends).values())


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    """``check()``'s first truthy answer, asked every 0.2 s until ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def metric(port: int, name: str) -> float | None:
    """A metric of a process's /metrics, summed over its label sets; None
    when the process does not answer or does not export it."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    values = re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    return sum(float(v) for v in values) if values else None


def start_worker(settings: Settings, cwd: Path, *options: str, log: Path | None = None,
                 **env: str) -> subprocess.Popen[str]:
    """`hub [OPTIONS] worker` on the settings' broker and consumer group; ``env``:
    more HUB_* settings; ``log``: a file for its stderr instead of a pipe."""
    return subprocess.Popen([sys.executable, "-m", "hub.cli", *options, "worker"], cwd=cwd,
                            env=process_env(settings, **env), text=True,
                            stdout=subprocess.DEVNULL, stderr=open(log, "w") if log else subprocess.PIPE)


def hub(*args: str, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The hub command as a user runs it, metrics on a free port."""
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "HUB_METRICS_PORT": "0", **(env or {})})


def start_hub_broker(cwd: Path, *args: str) -> tuple[subprocess.Popen[str], dict[str, int | str]]:
    """`hub broker` in ``cwd``, once it answers: the process and its record."""
    record = cwd / ".hub-state" / "kafka" / "broker.json"
    assert not record.exists(), "a record left by an earlier broker"
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "broker", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not record.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert record.exists(), proc.communicate()[1] if proc.poll() is not None else "no record"
    assert proc.stdout is not None
    banner = proc.stdout.readline()  # printed once its topics exist
    assert "embedded Apache Kafka" in banner and "data in" in banner, banner
    return proc, json.loads(record.read_text())


def scenario_on_broker(bootstrap: str, tmp: Path, app_id: str) -> Settings:
    """Settings on the embedded broker (clock ticks only from the test) with
    the sample scenario's exports published by the connectors."""
    from hub.edge.metrics import Metrics
    from hub.apps.pipeline import run_connectors
    from hub.devtools.samples import write_scenario
    from hub.settings import load_settings
    from hub.kafka.topics import create_topics
    from hub.trust import ensure_keys
    from tests.conftest import TEST_PII_KEY

    settings = load_settings(environ={}).on_embedded(bootstrap, app_id=app_id, pii_key=TEST_PII_KEY,
                                                     lifecycle_tick_s=0, state_dir=tmp / "state")
    with KafkaClients(settings) as clients:  # this step's; the caller makes its own for what follows
        create_topics(clients)
        ensure_keys(settings)
        run_connectors(clients, list(write_scenario(tmp / "data").items()), Metrics())
    return settings


def worker_process(settings: Settings, cwd: Path, **env: str) -> tuple[subprocess.Popen[str], dict[str, int]]:
    """A `hub worker` for ``settings`` (ticks only from the test) and the ports
    it serves, by what they serve ("metrics", and "lead board" unless
    HUB_WEB_PORT is -1)."""
    from hub.trust import trust_env
    from tests.conftest import TEST_PII_KEY

    full = {**os.environ, **trust_env(settings), "HUB_BROKER_URL": settings.broker_url, "HUB_APP_ID": settings.app_id,
            "HUB_PII_KEY": TEST_PII_KEY, "HUB_METRICS_PORT": "0", "HUB_WEB_PORT": "0", "HUB_LIFECYCLE_TICK_S": "0",
            "HUB_COMMIT_INTERVAL_S": "0.2", **env}
    worker = subprocess.Popen([sys.executable, "-m", "hub.cli", "worker"], cwd=cwd, env=full, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert worker.stderr is not None
    wanted = {"metrics"} | ({"lead board"} if full["HUB_WEB_PORT"] != "-1" else set())
    ports: dict[str, int] = {}
    while set(ports) != wanted:
        line = worker.stderr.readline()
        assert line, f"the worker stopped before serving {wanted - set(ports)}"
        if found := re.search(r"(metrics|lead board): http://127\.0\.0\.1:(\d+)", line):
            ports[found.group(1)] = int(found.group(2))
    return worker, ports


class Valve:
    """A TCP relay in front of a broker that lets the first ``budget`` bytes
    its clients send through, then holds whatever they send next (their
    requests wait, as on a stalled link), until ``open()``. A broker that
    advertises the valve's address is reached through it by every client, so
    a test can catch a process mid-way at a point that does not depend on
    the machine's speed."""

    def __init__(self, target_port: int, budget: int) -> None:
        import socket
        import threading

        self.target_port, self.budget = target_port, budget
        self.sent = 0
        self.held = threading.Event()  # the budget is spent: clients are held
        self._open = threading.Event()
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._sockets: list[Any] = [self._server]
        threading.Thread(target=self._accept, daemon=True).start()

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # the broker is not up (yet, or any more): as if the link failed
                client.close()
                continue
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: Any, sink: Any, metered: bool) -> None:
        try:
            while data := source.recv(65536):
                if metered and not self._open.is_set():
                    with self._lock:
                        allowed = max(0, self.budget - self.sent)
                        self.sent += len(data)
                    if allowed < len(data):
                        sink.sendall(data[:allowed])
                        self.held.set()
                        self._open.wait()
                        data = data[allowed:]
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(2)
