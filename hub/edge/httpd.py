"""The HTTP servers a worker or connector runs beside its work (Prometheus
metrics, the lead board), made so that no client can exhaust the process.

Both keep ``HttpSettings``: a connection that sends nothing for
``idle_timeout_s`` is closed, any connection ``request_deadline_s`` after it
opened, and beyond ``max_connections`` at once a new one is closed at once:
the server is unavailable while it is flooded, the process beside it is not.

- ``serve_metrics``: the standard library's threading WSGI server, which
  starts a thread per connection and would wait on it for ever: a few
  thousand connections that send nothing would give the process a few
  thousand threads, until it can start none, and Kafka's own threads are
  among those it then cannot start. ``_Guarded`` bounds it.
- ``serve_app``: an aiohttp application (the lead board) on one thread and
  event loop of its own, however many connections; aiohttp's own settings
  where it has one, ``_BoundedConnection`` and ``_BoundedSite`` where not
  (the table above ``_protocol_options``).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Mapping
from http import HTTPStatus
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from prometheus_client import CollectorRegistry, make_wsgi_app

from hub.settings import HttpSettings

log = logging.getLogger(__name__)


class _Guarded(ThreadingMixIn):
    """A thread per connection, at most ``limits.max_connections`` of them."""

    daemon_threads = True  # never joined: a stuck client cannot hold up a shutdown
    # socketserver's backlog of 5 leaves a burst of connections to SYN
    # retries, seconds each; with room, the excess reaches us and is refused.
    request_queue_size = 128
    limits = HttpSettings()
    _slots: threading.BoundedSemaphore

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        self._deadlines: dict[socket.socket, float] = {}  # open connections, when each is cut
        self._deadlines_lock = threading.Lock()
        super().__init__(*args, **kwargs)
        # One thread per server, not per connection: a connection's thread
        # blocks in a read, so something else must cut it at its deadline.
        threading.Thread(target=self._cut_late, name=f"{type(self).__name__}-deadlines", daemon=True).start()

    def _cut_late(self) -> None:
        """Close every connection past its deadline: a client that sends a
        byte now and then is never idle, yet its slot is freed (64 trickling
        connections kept the board unavailable for as long as they trickled)."""
        while self.socket.fileno() >= 0:  # type: ignore[attr-defined]
            time.sleep(min(0.5, self.limits.request_deadline_s / 4))
            now = time.monotonic()
            with self._deadlines_lock:
                late = [connection for connection, at in self._deadlines.items() if at <= now]
            for connection in late:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # type: ignore[attr-defined]
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: nothing else frees the slot
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._deadlines_lock:
            self._deadlines[request] = time.monotonic() + self.limits.request_deadline_s
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._deadlines_lock:
                self._deadlines.pop(request, None)
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr; a client that went
        # quiet or away is routine, and what a request held stays unlogged.
        failure = sys.exc_info()[1]
        if isinstance(failure, (TimeoutError, ConnectionError)):
            log.debug("a client of %s went quiet or away", type(self).__name__)
        else:
            log.warning("a request to %s failed: %s", type(self).__name__, type(failure).__name__)


def _family(host: str) -> socket.AddressFamily:
    return socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes every few seconds: not worth a line
        pass


def serve_metrics(registry: CollectorRegistry, host: str, port: int, limits: HttpSettings) -> WSGIServer:
    """Prometheus's exposition of ``registry`` on a daemon thread, guarded."""
    server_class = type("GuardedWSGIServer", (_Guarded, WSGIServer),
                        {"limits": limits, "address_family": _family(host)})
    handler_class = type("MetricsHandler", (_QuietHandler,), {"timeout": limits.idle_timeout_s})
    server: WSGIServer = server_class((host, port), handler_class)
    server.set_app(make_wsgi_app(registry))
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server


# -- aiohttp applications ------------------------------------------------------
#
# Where each of HttpSettings' bounds goes:
# - idle_timeout_s: aiohttp's keepalive_timeout. aiohttp starts that timer
#   when a connection opens and closes the connection when it fires unless a
#   whole request head has come (so: a connection that sends nothing, half a
#   request, a head that trickles in); after an answer there is no keep-alive
#   to time (below). A request's body is the application's to bound: the
#   board reads its forms within idle_timeout_s. lingering_time: how long
#   aiohttp goes on reading a body the application left unread.
# - request_deadline_s: no aiohttp setting; _BoundedConnection aborts each
#   connection this long after it opened, however it trickles or reads.
#   One request per connection (_EveryAnswer, as http.server's HTTP/1.0
#   had it), so this is each request's deadline, and a browser's polling
#   is never cut in the middle of a kept-alive connection.
# - max_connections: no aiohttp setting; beyond it _BoundedConnection closes
#   a new connection at once, unanswered (_BoundedSite counts them).
#   backlog: the kernel's queue of connections not yet accepted, as
#   socketserver's request_queue_size above.
# - A request's size: the application's client_max_size (the board's: 4 KiB).
#   Header lines and their number keep aiohttp's own bounds (max_line_size,
#   max_field_size: 8190 bytes each; max_headers: 128).

_BACKLOG = 128
_SHUTDOWN_S = 2.0  # how long shutdown() lets an answer in progress finish


class _AccessLog(AbstractAccessLogger):
    """At debug level (a page polled every second is not worth more), the
    path without its query."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.debug('"%s %s" %s', request.method, request.path, response.status)


def _protocol_options(limits: HttpSettings, name: str) -> dict[str, Any]:
    return {"keepalive_timeout": limits.idle_timeout_s, "lingering_time": limits.idle_timeout_s,
            "access_log_class": _AccessLog, "access_log": log.getChild(name)}


class _EveryAnswer:
    """What the server adds to every answer of the application, just before
    it goes out (``on_response_prepare``), middlewares or not (aiohttp's answer
    to a bad ``Expect`` passes none): ``headers`` the answer lacks, and
    ``Connection: close``."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers

    async def __call__(self, request: web.Request, response: web.StreamResponse) -> None:
        for name, value in self.headers.items():
            response.headers.setdefault(name, value)
        response.force_close()


class _Slots:
    """The connections a site holds, at most ``cap`` (one event loop: no lock)."""

    def __init__(self, cap: int) -> None:
        self.cap, self.taken = cap, 0


class _BoundedConnection(web.RequestHandler):
    """aiohttp's protocol for one connection, bounded: closed at once beyond
    the site's cap, aborted at its deadline. The answers aiohttp writes itself,
    outside the application (a malformed request, a handler's failure), are
    plain, say nothing of the request, and carry ``headers``."""

    def __init__(self, manager: web.Server, slots: _Slots, deadline_s: float, name: str, headers: Mapping[str, str],
                 *, loop: asyncio.AbstractEventLoop, **options: Any) -> None:
        super().__init__(manager, loop=loop, **options)
        self._slots, self._deadline_s, self._event_loop = slots, deadline_s, loop
        self._name, self._headers = name, headers
        self._admitted = False
        self._cut: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._slots.taken >= self._slots.cap:
            transport.close()  # flooded: this server is unavailable, the process beside it is not
            return
        self._slots.taken += 1
        self._admitted = True
        assert isinstance(transport, asyncio.Transport)
        self._cut = self._event_loop.call_later(self._deadline_s, transport.abort)
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:  # refused: aiohttp never saw it
            return
        self._admitted = False
        self._slots.taken -= 1
        if self._cut is not None:
            self._cut.cancel()
        super().connection_lost(exc)

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR:  # what the request held stays unlogged
            log.warning("a request to %s failed: %s", self._name, type(exc).__name__)
        else:
            log.debug("%s refused a malformed request (%s)", self._name, status)
        if request.writer.output_size > 0:  # as aiohttp's own: half an answer is out, the connection is done
            raise ConnectionError("an answer was being sent")
        response = web.Response(status=status, text=f"{status} {HTTPStatus(status).phrase}\n",
                                content_type="text/plain", headers=dict(self._headers))
        response.force_close()
        return response


class _BoundedSite(web.BaseSite):
    """A TCP site like aiohttp's ``TCPSite``, whose connections are ``_BoundedConnection``."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, limits: HttpSettings, name: str,
                 headers: Mapping[str, str]) -> None:
        super().__init__(runner, backlog=_BACKLOG)
        self._host, self._limits, self._headers, self._label = host, limits, headers, name
        self.port = port

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self.port}/"

    async def start(self) -> None:
        await super().start()
        loop, manager = asyncio.get_running_loop(), self._runner.server
        assert manager is not None, "the runner is set up"
        slots, options = _Slots(self._limits.max_connections), _protocol_options(self._limits, self._label)

        def connection() -> _BoundedConnection:
            return _BoundedConnection(manager, slots, self._limits.request_deadline_s, self._label, self._headers,
                                      loop=loop, **options)

        self._server = server = await loop.create_server(connection, self._host or None, self.port,
                                                         backlog=self._backlog, reuse_address=True)
        self.port = int(server.sockets[0].getsockname()[1])


_Started = concurrent.futures.Future[tuple[asyncio.AbstractEventLoop, asyncio.Event, int]]


class AppServer:
    """An aiohttp application served on a thread and event loop of its own
    (the worker's loop is Faust's), from construction until ``shutdown()``;
    like the ``HTTPServer`` it replaces: ``server_port``, ``shutdown()``."""

    def __init__(self, app: web.Application, host: str, port: int, limits: HttpSettings, name: str,
                 headers: Mapping[str, str]) -> None:
        app.on_response_prepare.append(_EveryAnswer(headers))
        started: _Started = concurrent.futures.Future()
        serving = self._serve(app, (host, port, limits, name, headers), started)
        self._thread = threading.Thread(target=asyncio.run, args=(serving,), name=f"{name}-http", daemon=True)
        self._thread.start()
        # the port taken (OSError) or any other failure to start: raised here, to the caller
        self._loop, self._stop, self.server_port = started.result()

    @staticmethod
    async def _serve(app: web.Application, site_args: tuple[str, int, HttpSettings, str, Mapping[str, str]],
                     started: _Started) -> None:
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=_SHUTDOWN_S)
        try:
            await runner.setup()
            site = _BoundedSite(runner, *site_args)
            await site.start()
        except Exception as exc:
            await runner.cleanup()
            started.set_exception(exc)
            return
        stop = asyncio.Event()
        started.set_result((asyncio.get_running_loop(), stop, site.port))
        try:
            await stop.wait()
        finally:
            await runner.cleanup()  # the listening socket first, then the connections

    def shutdown(self) -> None:
        """Stop serving, let an answer in progress finish (``_SHUTDOWN_S``),
        close every connection and end the thread. Again: nothing."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: it had ended
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(_SHUTDOWN_S + 5)


def serve_app(app: web.Application, host: str, port: int, limits: HttpSettings, name: str,
              headers: Mapping[str, str] | None = None) -> AppServer:
    """Serve ``app`` on ``host:port`` (0: a free port) within ``limits``, on a
    daemon thread named after ``name``. ``headers`` go on every answer that
    lacks them: the application's (its middlewares may set them first) and
    those aiohttp gives outside it (a malformed request, a handler's
    failure). An ``OSError`` (the port taken) is raised here."""
    return AppServer(app, host, port, limits, name, headers or {})
