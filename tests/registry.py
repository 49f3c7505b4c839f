"""A small in-process server speaking the handful of REST calls
confluent-kafka's SchemaRegistryClient makes (no Confluent-compatible registry
can be installed on these machines), which a test can take down."""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from contextlib import contextmanager
from typing import Any
from collections.abc import Iterator

from hub.kafka.schemas import register
from hub.settings import Settings
from hub.kafka.topics import CATALOGUE, all_topics

SUBJECTS = {f"{t.name}-value": t.contract for t in CATALOGUE}


def register_all(settings: Settings, url: str) -> None:
    """What `hub schemas register` registers: every topic's subject, the teams' too."""
    register(settings.schema_dir, url, {f"{t.name}-value": t.contract for t in all_topics(settings)})


class Registry:
    def __init__(self) -> None:
        self.schemas: list[str] = []  # id - 1 -> schema text
        self.subjects: dict[str, list[int]] = {}
        self.compatible = True
        self.calls: list[str] = []
        self.down = False  # answers 503 to every schema look-up while set

    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        self.calls.append(f"{method} {path}")
        path = path.split("?")[0]
        if method == "GET" and path == "/subjects":
            return 200, list(self.subjects)
        if method == "GET" and (m := re.fullmatch(r"/schemas/ids/(\d+)", path)):
            if self.down:
                return 503, {"error_code": 50003, "message": "unavailable"}
            if not 0 < int(m.group(1)) <= len(self.schemas):
                return 404, {"error_code": 40403, "message": "Schema not found"}
            return 200, {"schema": self.schemas[int(m.group(1)) - 1]}
        if method == "POST" and (m := re.fullmatch(r"/compatibility/subjects/([^/]+)/versions/latest", path)):
            return 200, {"is_compatible": self.compatible}
        if method == "POST" and (m := re.fullmatch(r"/subjects/([^/]+)/versions", path)):
            text = body["schema"]
            if text not in self.schemas:
                self.schemas.append(text)
            schema_id = self.schemas.index(text) + 1
            self.subjects.setdefault(m.group(1), []).append(schema_id)
            return 200, {"id": schema_id}
        if method == "POST" and (m := re.fullmatch(r"/subjects/([^/]+)", path)):
            subject, text = m.group(1), body["schema"]
            ids = self.subjects.get(subject, [])
            if text in self.schemas and self.schemas.index(text) + 1 in ids:
                schema_id = self.schemas.index(text) + 1
                return 200, {"subject": subject, "id": schema_id, "version": ids.index(schema_id) + 1,
                             "schema": text}
            return 404, {"error_code": 40403, "message": "Schema not found"}
        return 404, {"error_code": 404, "message": f"no route {method} {path}"}


@contextmanager
def serve() -> Iterator[tuple[Registry, str]]:
    state = Registry()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else {}
            status, payload = state.handle(self.command, self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
