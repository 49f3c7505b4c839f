"""Avro in the Confluent wire format: magic byte 0, 4-byte big-endian schema
ID, then the Avro body.

The framing is done here with fastavro rather than with confluent-kafka's
``AvroSerializer`` because it sits on the workers' hot path (fastavro's
schemaless reader/writer cost a few microseconds; the serializer's per-call
context and dict conversion cost several times that) and because the embedded
set-up has no registry server. Schema *IDs* come from ``schemas/registry.json``
or, when a registry URL is configured, from that registry through
confluent-kafka's ``SchemaRegistryClient``.
"""
from __future__ import annotations

import io
import json
import struct
from typing import Any, Callable, cast

import fastavro

from hub.flow.codec import DecodeError, RegistryUnavailable
from hub.schemas import LocalRegistry
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
        self._writers: dict[int, Any] = {}

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

    def encoder(self, topic: str, contract: str) -> Callable[[dict[str, Any]], bytes]:
        schema = self.local.latest(contract).parsed
        header = _HEADER.pack(0, self.schema_id(topic, contract))
        writer = fastavro.schemaless_writer

        def encode(record: dict[str, Any]) -> bytes:
            buf = io.BytesIO()
            buf.write(header)
            writer(buf, schema, record)
            return buf.getvalue()

        return encode

    def _writer_schema(self, schema_id: int) -> Any:
        schema = self._writers.get(schema_id)
        if schema is None:
            # IDs mean the configured registry's IDs, or else schemas/registry.json's: never a mix
            if self._remote is not None:
                schema = self._remote_schema(schema_id)
            elif schema_id in self.local.by_id:
                schema = self.local.by_id[schema_id].parsed
            else:
                raise DecodeError(f"unknown schema id {schema_id}", "unknown_schema")
            self._writers[schema_id] = schema
        return schema

    def _remote_schema(self, schema_id: int) -> Any:
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
            return fastavro.parse_schema(json.loads(text or ""))
        except Exception as exc:
            raise DecodeError(f"schema id {schema_id} is not a usable Avro schema", "unknown_schema") from exc

    def decoder(self, contract: str) -> Callable[[bytes | None], dict[str, Any]]:
        reader = self.local.latest(contract).parsed
        read = fastavro.schemaless_reader

        def decode(data: bytes | None) -> dict[str, Any]:
            if data is None or len(data) < 5 or data[0] != 0:
                raise DecodeError("not in the Confluent wire format (no magic byte)")
            _, schema_id = _HEADER.unpack_from(data)
            writer = self._writer_schema(schema_id)
            try:
                return cast(dict[str, Any], read(io.BytesIO(data[5:]), writer,
                                                 None if writer is reader else reader, return_record_name=True))
            except Exception as exc:  # the message names the exception only: the bytes may be personal data
                raise DecodeError(f"Avro body does not match schema id {schema_id} ({type(exc).__name__})") \
                    from exc

        return decode
