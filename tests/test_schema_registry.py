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
import shutil
from pathlib import Path

import pytest

from hub.kafka.schemas import LocalRegistry, IncompatibleSchema, register
from hub.kafka.serde import DecodeError, RegistryUnavailable, Serde
from hub.settings import REPO_ROOT, load_settings
from tests.registry import SUBJECTS

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
              "failed_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}
    data = serde.encoder("hub.deadletter", "deadletter")(record)
    assert state.subjects["hub.deadletter-value"] == [1]
    assert int.from_bytes(data[1:5], "big") == 1
    # a reader that only knows the registry resolves the writer schema by id
    assert Serde(settings).decoder("deadletter")(data) == record


def test_an_unknown_id_is_the_records_fault_an_unreachable_registry_is_not(registry) -> None:
    state, url = registry
    settings = load_settings(environ={"HUB_SCHEMA_REGISTRY_URL": url})
    register(REPO_ROOT / "schemas", url, {"hub.deadletter-value": "deadletter"})
    decode = Serde(settings).decoder("deadletter")
    with pytest.raises(DecodeError) as unknown:
        decode(b"\x00\x00\x00\x00\x63rest")
    assert unknown.value.reason_code == "unknown_schema"
    state.down = True
    with pytest.raises(RegistryUnavailable, match="HTTP 503"):
        decode(b"\x00\x00\x00\x00\x01rest")
    refused = load_settings(environ={"HUB_SCHEMA_REGISTRY_URL": "http://127.0.0.1:9"})
    with pytest.raises(RegistryUnavailable, match="unreachable"):
        Serde(refused).decoder("deadletter")(b"\x00\x00\x00\x00\x01rest")
