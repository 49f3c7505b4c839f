"""The HTTP servers a worker or connector runs beside its work (Prometheus
metrics, the lead board), made so that no client can exhaust the process.

The standard library's threading servers start a thread per connection and
wait on it for ever: a few thousand connections that send nothing would
give the process a few thousand threads, until it can start none, and
Kafka's own threads are among those it then cannot start. Here a connection
that sends nothing for ``idle_timeout_s`` is closed, any connection
``request_deadline_s`` after it opened, and beyond
``max_connections`` at once a new one is closed at once: the server is
unavailable while it is flooded, the process beside it is not.
"""
from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

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


def http_server(host: str, port: int, handler: type[BaseHTTPRequestHandler], limits: HttpSettings) -> HTTPServer:
    """A guarded ``HTTPServer`` for ``handler``; not yet serving."""
    server_class = type("GuardedHTTPServer", (_Guarded, HTTPServer),
                        {"limits": limits, "address_family": _family(host)})
    handler_class = type(handler.__name__, (handler,), {"timeout": limits.idle_timeout_s})
    return server_class((host, port), handler_class)


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
