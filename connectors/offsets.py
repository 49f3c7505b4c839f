"""Connector cursors, kept in Kafka like Kafka Connect's source offsets.

One record per (connector, file fingerprint) on ``hub.connector-offsets``; the
latest record per key wins. Kept on the broker, the cursor lives and dies with
the data it describes: a fresh embedded broker starts with no cursors, a
production cluster keeps them across hosts and restarts.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Producer

from hub.serde import Serde
from hub.settings import Settings
from hub.topics import CONNECTOR_OFFSETS_TOPIC, read_to_end


@dataclass(frozen=True)
class FileCursor:
    rows_done: int = 0
    complete: bool = False
    # Rows above ``rows_done`` up to this one may have been sent by the run
    # that wrote the cursor: if it did not finish, a rerun sends them again.
    rows_claimed: int = 0


def fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class OffsetStore:
    def __init__(self, settings: Settings, serde: Serde, producer: Producer) -> None:
        self._settings = settings
        self._producer = producer
        self._encode = serde.encoder(CONNECTOR_OFFSETS_TOPIC, "connector_offset")
        self._decode = serde.decoder("connector_offset")
        self._cursors: dict[str, FileCursor] | None = None

    @staticmethod
    def _key(connector: str, file_fingerprint: str) -> str:
        return f"{connector}|{file_fingerprint}"

    def _load(self) -> dict[str, FileCursor]:
        cursors: dict[str, FileCursor] = {}
        for msg in read_to_end(self._settings, CONNECTOR_OFFSETS_TOPIC):
            record = self._decode(msg.value())
            cursors[self._key(record["connector"], record["file_fingerprint"])] = FileCursor(
                record["rows_done"], record["complete"], record["rows_claimed"])
        return cursors

    def get(self, connector: str, file_fingerprint: str) -> FileCursor:
        if self._cursors is None:
            self._cursors = self._load()
        return self._cursors.get(self._key(connector, file_fingerprint), FileCursor())

    def put(self, connector: str, file_fingerprint: str, file: str, cursor: FileCursor) -> None:
        """Record progress; the caller flushes the producer."""
        if self._cursors is None:
            self._cursors = self._load()
        key = self._key(connector, file_fingerprint)
        self._cursors[key] = cursor
        self._producer.produce(CONNECTOR_OFFSETS_TOPIC, key=key.encode(), value=self._encode({
            "connector": connector, "file_fingerprint": file_fingerprint, "file": file,
            "rows_done": cursor.rows_done, "complete": cursor.complete, "rows_claimed": cursor.rows_claimed,
            "updated_at": dt.datetime.now(dt.timezone.utc)}))
