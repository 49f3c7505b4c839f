"""Attack on the HTTP servers beside the work (the metrics' WSGI server,
the lead board's aiohttp one): connections that send nothing, and more of
them than the server takes, neither pile up threads in the process nor keep
a server from answering once they are gone; and the board's own: a form
that never comes, a port taken, a shutdown with clients still connected."""
from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hub.apps.board import LeadBoard, Sessions, serve_board
from hub.edge.httpd import AppServer
from hub.edge.metrics import Metrics
from hub.settings import HttpSettings
from hub.trust import Role, TrustStore
from hub.trust.keys import board_token, create_key
from hub.trust.signatures import TrustStoreFile
from tests.test_board import NOW, TEAMS, _lead

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
    board = _board(tmp_path, limits)
    try:
        yield board.server_port, lambda: _status(board.server_port, "/login")
    finally:
        board.shutdown()


def _board(tmp_path: Path, limits: HttpSettings, port: int = 0) -> AppServer:
    TrustStore({}).save(tmp_path / "trust.json")
    sessions = Sessions(TrustStoreFile(tmp_path / "trust.json", interval_s=0), hours=8)
    return serve_board(LeadBoard(TEAMS), "127.0.0.1", port, sessions, limits=limits)


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


# -- the board's server ----------------------------------------------------------

def _answer(sock: socket.socket, seconds: float) -> bytes:
    """What the server sends before it closes the connection (or ``seconds`` pass)."""
    sock.settimeout(seconds)
    received = b""
    with contextlib.suppress(TimeoutError, ConnectionError):
        while chunk := sock.recv(4096):
            received += chunk
    return received


def test_a_form_that_never_comes_is_refused_at_the_idle_timeout(tmp_path: Path) -> None:
    """Its head came, so it is not idle to aiohttp; its body (a login's
    token) must come within the idle timeout too, not by the deadline."""
    board = _board(tmp_path, LIMITS)
    try:
        with socket.create_connection(("127.0.0.1", board.server_port)) as slow:
            slow.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\ntoken=")
            started = time.monotonic()
            answer = _answer(slow, 5.0)
            assert answer.startswith(b"HTTP/1.1 408 ") and b"X-Frame-Options: DENY" in answer
            assert time.monotonic() - started < LIMITS.request_deadline_s  # closed before the deadline, too
        assert _status(board.server_port, "/login") == 200
    finally:
        board.shutdown()


def test_beyond_the_cap_a_connection_is_closed_unanswered_and_served_once_one_is_free(tmp_path: Path) -> None:
    board = _board(tmp_path, SLOW)
    try:
        held = [socket.create_connection(("127.0.0.1", board.server_port)) for _ in range(SLOW.max_connections)]
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", board.server_port)) as extra:
            extra.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert _answer(extra, 1.0) == b""  # closed, unanswered
        held.pop().close()
        time.sleep(0.2)
        assert _status(board.server_port, "/login") == 200
        for sock in held:
            sock.close()
    finally:
        board.shutdown()


def test_a_taken_port_is_an_oserror_at_once_and_leaves_no_thread(tmp_path: Path) -> None:
    """`hub worker` falls back to a free port on OSError (hub.cli.common)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        before = threading.active_count()
        with pytest.raises(OSError):
            _board(tmp_path, LIMITS, port=taken.getsockname()[1])
        deadline = time.monotonic() + 5
        while threading.active_count() > before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threading.active_count() == before


def test_a_shutdown_with_clients_connected_is_prompt_and_complete(tmp_path: Path) -> None:
    before = {thread.name for thread in threading.enumerate()}
    board = _board(tmp_path, SLOW)
    port = board.server_port
    assert "lead-board-http" in {thread.name for thread in threading.enumerate()} - before
    idle = socket.create_connection(("127.0.0.1", port))
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"GET /login HTTP/1.1\r\n")
    time.sleep(0.2)
    started = time.monotonic()
    board.shutdown()
    assert time.monotonic() - started < 5
    assert {thread.name for thread in threading.enumerate()} <= before  # its thread and loop are gone
    assert _closed_within(idle, 1.0) and _closed_within(half, 1.0)  # and the connections with them
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()  # and the port
    board.shutdown()  # again: nothing
    idle.close()
    half.close()


def test_a_client_that_never_reads_its_answer_is_cut_at_the_deadline(tmp_path: Path) -> None:
    """Issue 31's trickle, the other way round: a large page asked for and
    never read held its connection, and its slot, for as long as the client
    liked. One slot here: taken while the answer waits, free at the deadline."""
    limits = HttpSettings(idle_timeout_s=0.5, max_connections=1, request_deadline_s=2.0)
    store = TrustStore({})
    token = board_token(create_key(tmp_path, store, Role.OPERATOR, "operator", None, NOW).private)
    store.save(tmp_path / "trust.json")
    leads = LeadBoard(TEAMS)
    for n in range(4000):  # ten megabytes of JSON: more than the sockets' buffers hold
        leads.apply("hub.team.samr-taigu", _lead(f"L-{n:05}", "HIGH", recommended_action="移送" * 500))
    sessions = Sessions(TrustStoreFile(tmp_path / "trust.json", interval_s=0), hours=8)
    board = serve_board(leads, "127.0.0.1", 0, sessions, limits=limits)
    try:
        with socket.create_connection(("127.0.0.1", board.server_port)) as stalled:
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.sendall(b"GET /teams/samr-taigu/leads.json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            + f"Authorization: Bearer {token}\r\n\r\n".encode())
            time.sleep(0.5)
            with socket.create_connection(("127.0.0.1", board.server_port)) as second:
                assert _closed_within(second, 1.0)  # the answer not read holds the one slot...
            time.sleep(limits.request_deadline_s)  # ...until its deadline (not a byte read)
            assert _status(board.server_port, "/login") == 200
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # no drain on close
    finally:
        board.shutdown()
