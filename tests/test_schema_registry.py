"""`hub schemas register` and the serde against a schema registry over HTTP.

No Confluent-compatible registry can be installed on these machines, so this
speaks to a small in-process server implementing the handful of REST calls
confluent-kafka's SchemaRegistryClient makes. It checks our side of the
protocol (which subjects, which order, refusing what the registry refuses,
IDs from the registry in the wire format); the registry's own compatibility
verdict is whatever the test tells the server to answer.
"""
from __future__ import annotations

import json
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from hub.schemas import LocalRegistry, IncompatibleSchema, register
from hub.serde import Serde
from hub.settings import REPO_ROOT, load_settings
from hub.topics import CATALOGUE

SUBJECTS = {f"{t.name}-value": t.contract for t in CATALOGUE}


class Registry:
    def __init__(self) -> None:
        self.schemas: list[str] = []  # id - 1 -> schema text
        self.subjects: dict[str, list[int]] = {}
        self.compatible = True
        self.calls: list[str] = []

    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        self.calls.append(f"{method} {path}")
        path = path.split("?")[0]
        if method == "GET" and path == "/subjects":
            return 200, list(self.subjects)
        if method == "GET" and (m := re.fullmatch(r"/schemas/ids/(\d+)", path)):
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


@pytest.fixture
def registry() -> Iterator[tuple[Registry, str]]:
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


def test_register_every_topic_then_nothing_twice(registry) -> None:
    state, url = registry
    first = register(REPO_ROOT / "schemas", url, SUBJECTS)
    assert set(state.subjects) == set(SUBJECTS)
    assert all("registered" in line and "already" not in line for line in first)
    again = register(REPO_ROOT / "schemas", url, SUBJECTS)
    assert all("already registered" in line for line in again)
    versions = LocalRegistry(REPO_ROOT / "schemas").versions
    assert {subject: len(ids) for subject, ids in state.subjects.items()} == \
        {subject: len(versions[contract]) for subject, contract in SUBJECTS.items()}


def test_a_version_the_registry_refuses_is_not_registered(registry, tmp_path: Path) -> None:
    state, url = registry
    register(REPO_ROOT / "schemas", url, SUBJECTS)
    folder = tmp_path / "schemas"
    shutil.copytree(REPO_ROOT / "schemas", folder)
    raw = json.loads((folder / "deadletter.v1.avsc").read_text())
    raw["fields"].append({"name": "extra_note", "type": ["null", "string"], "default": None})
    (folder / "deadletter.v2.avsc").write_text(json.dumps(raw))
    manifest = json.loads((folder / "registry.json").read_text())
    manifest["contracts"]["deadletter"].append({"version": 2, "id": 50, "file": "deadletter.v2.avsc"})
    (folder / "registry.json").write_text(json.dumps(manifest))
    state.compatible = False
    with pytest.raises(IncompatibleSchema, match="deadletter v2"):
        register(folder, url, {"hub.deadletter-value": "deadletter"})
    assert len(state.subjects["hub.deadletter-value"]) == 1
    state.compatible = True
    [line] = register(folder, url, {"hub.deadletter-value": "deadletter"})
    assert "registered deadletter v2" in line and len(state.subjects["hub.deadletter-value"]) == 2


def test_serde_uses_the_registry_ids(registry) -> None:
    state, url = registry
    settings = load_settings(environ={"HUB_SCHEMA_REGISTRY_URL": url})
    with pytest.raises(RuntimeError, match="hub schemas register"):
        Serde(settings).encoder("hub.deadletter", "deadletter")
    # registered alone, the dead-letter schema gets id 1, which schemas/registry.json gives the event schema
    register(REPO_ROOT / "schemas", url, {"hub.deadletter-value": "deadletter"})
    serde = Serde(settings)
    import datetime as dt

    record = {"stage": "worker", "source_file": None, "source_row": None, "column": None,
              "reason_code": "x", "reason": "y", "original": {},
              "failed_at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)}
    data = serde.encoder("hub.deadletter", "deadletter")(record)
    assert state.subjects["hub.deadletter-value"] == [1]
    assert int.from_bytes(data[1:5], "big") == 1
    # a reader that only knows the registry resolves the writer schema by id
    assert Serde(settings).decoder("deadletter")(data) == record
