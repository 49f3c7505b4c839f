"""Avro contracts: the local registry in ``schemas/`` and compatibility checks.

``schemas/registry.json`` lists every contract's released versions with a
stable schema ID and the fingerprint (SHA-256 of the Parsing Canonical Form) of
the file it was released from. With no schema registry URL configured, these
IDs are the ones written into the Confluent wire format.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form
from fastavro.utils import generate_many

REGISTRY_FILE = "registry.json"


@dataclass(frozen=True)
class SchemaVersion:
    contract: str
    version: int
    schema_id: int
    file: Path
    fingerprint: str

    @cached_property
    def raw(self) -> dict[str, Any]:
        raw: dict[str, Any] = json.loads(self.file.read_text(encoding="utf-8"))
        return raw

    @cached_property
    def parsed(self) -> Any:
        return fastavro.parse_schema(self.raw)

    def current_fingerprint(self) -> str:
        return fingerprint(to_parsing_canonical_form(self.parsed), "SHA-256")


class LocalRegistry:
    """``schemas/`` read as a schema registry."""

    def __init__(self, schema_dir: Path) -> None:
        self.schema_dir = schema_dir
        manifest = json.loads((schema_dir / REGISTRY_FILE).read_text(encoding="utf-8"))
        self.versions: dict[str, list[SchemaVersion]] = {
            name: [SchemaVersion(name, int(v["version"]), int(v["id"]), schema_dir / v["file"],
                                 v.get("fingerprint", "")) for v in entries]
            for name, entries in manifest["contracts"].items()
        }
        self.by_id = {v.schema_id: v for vs in self.versions.values() for v in vs}

    def latest(self, contract: str) -> SchemaVersion:
        return self.versions[contract][-1]


def _backward_compatible(reader: SchemaVersion, writer: SchemaVersion, samples: int = 50) -> str | None:
    """None if data written with ``writer`` can be read with ``reader``; else why not.

    fastavro's schema resolution decides: we write generated records with the
    old schema and read them with the new one. The workers read with the hub's
    codec (``hub.kafka.serde``): it must resolve them too, to the same values."""
    import io

    from hub.kafka.avro import codec, resolved

    try:
        read_as_reader = resolved(codec(reader.raw), codec(writer.raw))  # as the workers' decoder does
    except Exception as exc:
        return f"the hub's codec cannot resolve it: {exc}"
    for record in generate_many(writer.parsed, samples):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, writer.parsed, record)
        buf.seek(0)
        try:
            expected = fastavro.schemaless_reader(buf, writer.parsed, reader.parsed, return_record_name=True)
        except Exception as exc:  # SchemaResolutionError and friends
            return str(exc)
        try:
            read = read_as_reader.binary_decode(buf.getvalue())
        except Exception as exc:
            return f"the hub's codec cannot read it: {exc}"
        if read != expected:
            return "the hub's codec reads it otherwise than fastavro's schema resolution"
    return None


def check(schema_dir: Path) -> list[str]:
    """Every problem with the contracts in ``schema_dir``; empty when all is well."""
    problems: list[str] = []
    registry = LocalRegistry(schema_dir)
    ids: dict[int, str] = {}
    for contract, versions in registry.versions.items():
        previous: SchemaVersion | None = None
        for v in versions:
            label = f"{contract} v{v.version} ({v.file.name})"
            if v.schema_id in ids:
                problems.append(f"{label}: schema id {v.schema_id} already used by {ids[v.schema_id]}")
            ids[v.schema_id] = label
            try:
                _ = v.parsed  # parsing is the check
            except Exception as exc:
                problems.append(f"{label}: does not parse: {exc}")
                continue
            problems += _release_problems(label, v, previous)
            previous = v
    return problems


def _release_problems(label: str, v: SchemaVersion, previous: SchemaVersion | None) -> list[str]:
    """A parsed version's problems as a release: edited after its release, no
    fingerprint, or not backward compatible with the version before it."""
    problems = []
    if v.fingerprint and v.fingerprint != v.current_fingerprint():
        problems.append(f"{label}: the released schema was edited; released versions are "
                        f"immutable, add a new version instead")
    if not v.fingerprint:
        problems.append(f"{label}: no fingerprint recorded in {REGISTRY_FILE}")
    if previous is not None:
        why = _backward_compatible(v, previous)
        if why:
            problems.append(f"{label}: not backward compatible with v{previous.version}: {why}")
    return problems


class IncompatibleSchema(Exception):
    pass


def register(schema_dir: Path, registry_url: str, subjects: dict[str, str]) -> list[str]:
    """Register every released version of each subject's contract, oldest
    first, with a Confluent-compatible registry; ``subjects`` maps subject to
    contract. A version the registry already has is left alone; one it finds
    incompatible with what it holds stops the run before anything later is
    registered. Returns one line per subject."""
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    client = SchemaRegistryClient({"url": registry_url})
    local = LocalRegistry(schema_dir)
    report = []
    for subject, contract in subjects.items():
        for version in local.versions[contract]:
            schema = Schema(json.dumps(version.raw), "AVRO")
            try:
                found = client.lookup_schema(subject, schema)
                report_line = f"{subject}: {contract} v{version.version} already registered (id {found.schema_id})"
            except SchemaRegistryError as exc:
                if exc.http_status_code != 404:
                    raise
                if subject in client.get_subjects() and not client.test_compatibility(subject, schema):
                    raise IncompatibleSchema(f"{subject}: the registry refuses {contract} v{version.version} "
                                             f"({version.file.name}) as incompatible with what it holds") from None
                schema_id = client.register_schema(subject, schema)
                report_line = f"{subject}: registered {contract} v{version.version} as id {schema_id}"
        report.append(report_line)
    return report
