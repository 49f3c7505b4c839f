"""Issue 33: only the `schemas` job writes to the schema registry. The hub's
services reach it through ops/registry-proxy.conf (compose's
schema-registry-read), run here by Debian's nginx in front of a registry
(tests/registry.py): the writers' look-ups and the readers' fetches pass,
registering, deleting and configuring are refused."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from collections.abc import Iterator

import pytest

from hub.kafka.broker import free_port
from hub.kafka.schemas import register
from hub.kafka.serde import Serde
from hub.settings import REPO_ROOT, load_settings
from tests.registry import SUBJECTS, serve

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(the registry's URL, the proxy's URL), the proxy running the compose file's configuration."""
    assert Path(NGINX).exists(), "nginx not found: apt-get install nginx (setup.sh does)"
    with serve() as (_, registry):
        port = free_port()
        server = (REPO_ROOT / "ops" / "registry-proxy.conf").read_text()
        server = server.replace("listen 8081;", f"listen 127.0.0.1:{port};") \
            .replace("http://schema-registry:8081", registry)
        (tmp_path / "server.conf").write_text(server)
        (tmp_path / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
            "events {}\nhttp {\n  access_log off;\n"
            f"  client_body_temp_path {tmp_path}/body;\n  proxy_temp_path {tmp_path}/proxy;\n"
            f"  include {tmp_path}/server.conf;\n}}\n")
        proxy = subprocess.Popen([NGINX, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/schemas/ids/1", timeout=2)
                except urllib.error.HTTPError:
                    break  # it answers (the registry has no schema 1 yet)
                except OSError:
                    assert proxy.poll() is None, proxy.communicate()[1]
                    assert time.monotonic() < deadline, "nginx did not answer"
                    time.sleep(0.1)
            yield registry, f"http://127.0.0.1:{port}"
        finally:
            proxy.terminate()
            proxy.wait(timeout=30)


def _status(url: str, method: str, body: dict | None = None) -> int:
    request = urllib.request.Request(url, method=method, data=json.dumps(body or {}).encode(),
                                     headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    try:
        return int(urllib.request.urlopen(request, timeout=10).status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_hub_reads_through_the_proxy_and_only_the_schemas_job_writes(proxied: tuple[str, str]) -> None:
    registry, proxy = proxied
    with pytest.raises(Exception, match="403"):  # a hub service registering through its own way in
        register(REPO_ROOT / "schemas", proxy, SUBJECTS)
    register(REPO_ROOT / "schemas", registry, SUBJECTS)  # the `schemas` job, on the registry's network

    through = Serde(load_settings(environ={}).with_overrides(schema_registry_url=proxy))
    direct = Serde(load_settings(environ={}).with_overrides(schema_registry_url=registry))
    record = {"stage": "connector", "source_file": "f.csv", "source_row": 2, "column": "x",
              "reason_code": "missing_value", "reason": "required value is empty", "original": {},
              "failed_at": dt.datetime(2026, 12, 6, tzinfo=dt.UTC)}
    written = through.encoder("hub.deadletter", "deadletter")(record)  # the writers' look-up (POST)
    assert written == direct.encoder("hub.deadletter", "deadletter")(record)  # the registry's own ID
    assert through.decoder("deadletter")(written)["reason_code"] == "missing_value"  # the readers' fetch (GET)

    subject = f"{proxy}/subjects/hub.deadletter-value"
    assert _status(f"{subject}/versions", "POST", {"schema": "{}"}) == 403
    assert _status(subject, "DELETE") == 403
    assert _status(f"{proxy}/config", "PUT", {"compatibility": "NONE"}) == 403
    assert _status(f"{proxy}/mode", "PUT", {"mode": "READWRITE"}) == 403
