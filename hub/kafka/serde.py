"""Avro in the Confluent wire format: magic byte 0, 4-byte big-endian schema
ID, then the Avro body.

The framing is done here rather than with confluent-kafka's
``AvroSerializer`` because it sits on the workers' hot path (the
serializer's per-call context and dict conversion cost several times the
body's encoding) and because the embedded set-up has no registry server.
Schema *IDs* come from ``schemas/registry.json`` or, when a registry URL is
configured, from that registry through confluent-kafka's
``SchemaRegistryClient``.

Bodies are written and read with cavro, a Cython codec that compiles a
schema once into typed encoders: on the hub's records it writes the same
bytes as fastavro in a fifth to a half of the time and reads them in half
(measured in the README's Benchmark section; ``tests/test_schemas.py``
checks the bytes and the values against fastavro's for every contract's
versions). fastavro stays for what is not on the hot path: the contracts'
canonical forms, fingerprints and compatibility checks (``hub.kafka.schemas``).
"""
from __future__ import annotations

import json
import struct
from typing import Any, cast
from collections.abc import Callable, Mapping

import cavro

from hub.kafka.avro import codec, resolved
from hub.flow.codec import DecodeError, Encode, EncodeError, RegistryUnavailable
from hub.kafka.schemas import LocalRegistry
from hub.settings import Settings

_HEADER = struct.Struct(">bI")


class Serde:
    def __init__(self, settings: Settings) -> None:
        self.local = LocalRegistry(settings.schema_dir)
        self._remote = None
        if settings.schema_registry_url:
            from confluent_kafka.schema_registry import SchemaRegistryClient

            # Calls block the worker's event loop (and its heartbeats): fail
            # fast and let the worker's own backoff retry the batch.
            self._remote = SchemaRegistryClient({"url": settings.schema_registry_url, "timeout": 2,
                                                 "max.retries": 0})
        self._writers: dict[int, cavro.Schema] = {}
        self._latest: dict[str, cavro.Schema] = {}

    def schema_id(self, topic: str, contract: str) -> int:
        latest = self.local.latest(contract)
        if self._remote is None:
            return latest.schema_id
        from confluent_kafka.schema_registry import Schema
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            found = self._remote.lookup_schema(f"{topic}-value",
                                               Schema(json.dumps(latest.raw), "AVRO"))
        except SchemaRegistryError as exc:
            raise RuntimeError(f"schema {contract} v{latest.version} is not registered for "
                               f"{topic}-value; run `hub schemas register` first ({exc})") from exc
        assert found.schema_id is not None
        return int(found.schema_id)

    def encoder(self, topic: str, contract: str) -> Encode:
        header = self.header(topic, contract)
        write = self.latest(contract).binary_encode

        def encode(record: Mapping[str, Any]) -> bytes:
            try:
                return header + bytes(write(record))
            except Exception as exc:
                raise _unfit(contract, exc) from None

        return encode

    def latest(self, contract: str) -> cavro.Schema:
        """The contract's latest version, compiled: what is written, and what every record is read as."""
        compiled = self._latest.get(contract)
        if compiled is None:
            compiled = self._latest[contract] = codec(self.local.latest(contract).raw)
        return compiled

    def header(self, topic: str, contract: str) -> bytes:
        """The wire format's magic byte and schema ID, before every body on ``topic``."""
        return _HEADER.pack(0, self.schema_id(topic, contract))

    def _writer_schema(self, schema_id: int) -> cavro.Schema:
        schema = self._writers.get(schema_id)
        if schema is None:
            # IDs mean the configured registry's IDs, or else schemas/registry.json's: never a mix
            if self._remote is not None:
                schema = self._remote_schema(schema_id)
            elif schema_id in self.local.by_id:
                schema = codec(self.local.by_id[schema_id].raw)
            else:
                raise DecodeError(f"unknown schema id {schema_id}", "unknown_schema")
            self._writers[schema_id] = schema
        return schema

    def _remote_schema(self, schema_id: int) -> cavro.Schema:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        assert self._remote is not None
        try:
            text = self._remote.get_schema(schema_id).schema_str
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise DecodeError(f"unknown schema id {schema_id}", "unknown_schema") from None
            raise RegistryUnavailable(f"schema registry: HTTP {exc.http_status_code}") from exc
        except Exception as exc:  # connection refused, timeout, TLS: the registry, not the record
            raise RegistryUnavailable(f"schema registry unreachable: {type(exc).__name__}") from exc
        try:
            return codec(json.loads(text or ""))
        except Exception as exc:
            raise DecodeError(f"schema id {schema_id} is not a usable Avro schema", "unknown_schema") from exc

    def decoder(self, contract: str) -> Callable[[bytes | None], dict[str, Any]]:
        reader = self.latest(contract)
        # writer's schema ID -> what reads its bodies as ``reader``, or why nothing can
        readers: dict[int, Any] = {}

        def read_as(schema_id: int) -> Any:
            found = readers.get(schema_id)
            if found is None:
                writer = self._writer_schema(schema_id)
                try:
                    found = resolved(reader, writer)
                except Exception as exc:  # no body it wrote can be read as the contract: found once, not again
                    found = f"schema id {schema_id} cannot be read as {contract} ({type(exc).__name__})"
                readers[schema_id] = found
            if isinstance(found, str):
                raise DecodeError(found, "unknown_schema")
            return found

        def decode(data: bytes | None) -> dict[str, Any]:
            if data is None or len(data) < 5 or data[0] != 0:
                raise DecodeError("not in the Confluent wire format (no magic byte)")
            _, schema_id = _HEADER.unpack_from(data)
            read = read_as(schema_id)
            try:
                return cast(dict[str, Any], read.binary_decode(data[5:]))
            except Exception as exc:  # the message names the exception only: the bytes may be personal data
                raise DecodeError(f"Avro body does not match schema id {schema_id} ({type(exc).__name__})") \
                    from exc

        return decode


class SharedRuns:
    """Bodies of records that are copies of one another but for a few
    top-level fields (a lead's team copies: ``varying``), written a run of
    fields at a time: the runs the copies share once, the others for each
    copy. Avro writes a record as its fields one after another, with nothing
    around them, so the runs joined are the whole record's bytes.

    A record shares the last one's runs when every field outside
    ``varying`` holds the very same object (``is``): values that are the
    same objects write the same bytes."""

    def __init__(self, schema: dict[str, Any], varying: frozenset[str]) -> None:
        self.contract = schema["name"]
        named = codec(schema).named_types
        namespace = schema.get("namespace", "")
        fields = schema["fields"]
        # (whether it varies, its writer)
        self.runs: list[tuple[bool, Encode]] = [
            (run[0]["name"] in varying, _run_writer(f"{schema['name']}Run{i}", namespace, run, named))
            for i, run in enumerate(_runs(fields, varying))]
        self.shared = [f["name"] for f in fields if f["name"] not in varying]
        self._base: Mapping[str, Any] | None = None
        self._written: dict[int, bytes] = {}

    def body(self, record: Mapping[str, Any]) -> bytes:
        try:
            if self._base_differs(record):
                self._base = None  # until its runs are written
                self._written = {i: write(record) for i, (varies, write) in enumerate(self.runs) if not varies}
                self._base = record
            return b"".join(write(record) if varies else self._written[i]
                            for i, (varies, write) in enumerate(self.runs))
        except Exception as exc:
            raise _unfit(self.contract, exc) from None

    def _base_differs(self, record: Mapping[str, Any]) -> bool:
        """Whether the record holds other objects than the last one outside ``varying``."""
        base = self._base
        return base is None or any(record[name] is not base[name] for name in self.shared)


def _runs(fields: list[dict[str, Any]], varying: frozenset[str]) -> list[list[dict[str, Any]]]:
    """The fields in runs, each all varying or all shared, in order."""
    runs = []
    start = 0
    for end in range(1, len(fields) + 1):
        if end == len(fields) or (fields[end]["name"] in varying) != (fields[start]["name"] in varying):
            runs.append(fields[start:end])
            start = end
    return runs


def _run_writer(name: str, namespace: str, run: list[dict[str, Any]], named: Mapping[str, Any]) -> Encode:
    """A writer of a run of fields, as a record of its own; the named types
    defined outside it known by name."""
    inside = _defined_in(run, namespace)
    record = {"type": "record", "name": name, "namespace": namespace, "fields": run}
    writer: Encode = codec(record, {k: v for k, v in named.items() if k not in inside}).binary_encode
    return writer


def _unfit(contract: str, exc: Exception) -> EncodeError:
    """What failed and where, without the value the codec's message quotes."""
    path = getattr(exc, "schema_path", None)
    where = f" at {'.'.join(map(str, path))}" if path else ""
    return EncodeError(f"a {contract} record does not fit its schema{where} ({type(exc).__name__})")


def _defined_in(node: Any, namespace: str) -> set[str]:
    """The full names of the named types a part of a schema defines."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= _defined_in(item, namespace)
    elif isinstance(node, dict):
        found = _defined_in_object(node, namespace)
    return found


def _defined_in_object(node: dict[str, Any], namespace: str) -> set[str]:
    found: set[str] = set()
    if node.get("type") in ("record", "enum", "fixed") and "name" in node:
        name = node["name"]
        namespace = node.get("namespace", name.rpartition(".")[0] if "." in name else namespace)
        found.add(name if "." in name else f"{namespace}.{name}")
    for value in node.values():
        found |= _defined_in(value, namespace)
    return found
