"""Attack on the HTTP servers beside the work (metrics, the lead board):
connections that send nothing, and more of them than the server takes,
neither pile up threads in the process nor keep a server from answering
once they are gone."""
from __future__ import annotations

import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

import pytest

from hub.apps.board import LeadBoard, Sessions, serve_board
from hub.edge.metrics import Metrics
from hub.settings import HttpSettings
from hub.trust import TrustStore
from hub.trust.signatures import TrustStoreFile
from tests.test_board import TEAMS

LIMITS = HttpSettings(idle_timeout_s=0.5, max_connections=4, request_deadline_s=2.0)
SLOW = HttpSettings(idle_timeout_s=3.0, max_connections=4)  # a flood outlasts nothing sooner than this


@pytest.fixture(params=["metrics", "board"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, Callable[[], int]]]:
    """A guarded server on a free port, and a legitimate request's status."""
    limits = SLOW if "flood" in request.node.name else LIMITS
    if request.param == "metrics":
        port = Metrics().serve("127.0.0.1", 0, limits)
        path = "/metrics"
        yield port, lambda: _status(port, path)
        return
    TrustStore({}).save(tmp_path / "trust.json")
    sessions = Sessions(TrustStoreFile(tmp_path / "trust.json", interval_s=0), hours=8)
    board = serve_board(LeadBoard(TEAMS), "127.0.0.1", 0, sessions, limits=limits)
    try:
        yield board.server_port, lambda: _status(board.server_port, "/login")
    finally:
        board.shutdown()


def _status(port: int, path: str) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return int(response.status)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def test_a_connection_that_sends_nothing_is_closed(server) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as idle:
        assert _closed_within(idle, 5.0)


def test_half_a_request_is_closed_too(server) -> None:
    port, legit = server
    with socket.create_connection(("127.0.0.1", port)) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the end of the headers
        assert _closed_within(slow, 5.0)
    assert legit() == 200


def test_a_request_that_trickles_is_cut_at_its_deadline(server) -> None:
    """Issue 31: one header line every so often, each within the idle
    timeout, kept a connection (and its slot) for as long as it went on."""
    port, legit = server
    with socket.create_connection(("127.0.0.1", port)) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\n")
        started = time.monotonic()
        cut = False
        while time.monotonic() - started < 10 and not cut:
            try:
                slow.sendall(b"X-Trickle: 1\r\n")  # never idle for 0.5 s
            except OSError:
                cut = True
                break
            cut = _closed_within(slow, 0.2)
        assert cut and time.monotonic() - started < 5  # at the 2 s deadline, not at the client's pleasure
    assert legit() == 200


def test_a_flood_of_idle_connections_neither_piles_up_threads_nor_outlives_itself(server, capfd) -> None:
    port, legit = server
    before = threading.active_count()
    flood = [socket.create_connection(("127.0.0.1", port)) for _ in range(60)]
    try:
        peak = 0
        for _ in range(10):
            peak = max(peak, threading.active_count() - before)
            time.sleep(0.05)
        assert peak <= SLOW.max_connections
        # beyond the limit a connection is closed at once, unanswered
        assert sum(_closed_within(sock, 0.1) for sock in flood[SLOW.max_connections:]) >= 50
    finally:
        for sock in flood:
            sock.close()
    deadline = time.monotonic() + 10
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before  # the idle ones timed out, their threads ended
    assert legit() == 200
    assert "Traceback" not in capfd.readouterr().err  # a quiet client is routine, not an error to print
