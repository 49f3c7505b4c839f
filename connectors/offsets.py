"""Connector cursors, kept in Kafka like Kafka Connect's source offsets.

One record per (connector, file fingerprint) on ``hub.connector-offsets``; the
latest record per key wins. Kept on the broker, the cursor lives and dies with
the data it describes: a fresh embedded broker starts with no cursors, a
production cluster keeps them across hosts and restarts.

A cursor says which rows never to send again, so a forged one would lose
them: every connector may write the shared topic, and one could mark
another's export as delivered. Each cursor is signed by its connector, and
only a cursor its own connector signed, under its own key, counts; any
other is left out (logged by where it sits), and the rows it claimed are
sent again, which the workers drop as duplicates.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from confluent_kafka import Producer

from hub.leadview import SignedReader
from hub.serde import Serde
from hub.settings import Settings
from hub.topics import CONNECTOR_OFFSETS_TOPIC, read_to_end
from hub.trust import Role, Signer

log = logging.getLogger(__name__)


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


def cursor_key(connector: str, file_fingerprint: str) -> str:
    return f"{connector}|{file_fingerprint}"


def signed_cursors(settings: Settings, connector: str | None = None) -> Iterator[dict[str, Any]]:
    """The cursor records on the topic that their own connector signed (of
    one connector, or of all), oldest first."""
    read = SignedReader(settings, "connector_offset", frozenset({Role.CONNECTOR}))
    for message in read_to_end(settings, CONNECTOR_OFFSETS_TOPIC):
        key = message.key() or b""
        if connector is not None and not key.startswith(f"{connector}|".encode()):
            continue  # another connector's: not ours to check
        found = read.signed(message)
        if found is None:
            continue
        signer, record = found
        if signer.name != record["connector"] or key != cursor_key(signer.name, record["file_fingerprint"]).encode():
            log.warning("a cursor on %s[%s]@%s is left out: %s signed another connector's cursor",
                        CONNECTOR_OFFSETS_TOPIC, message.partition(), message.offset(), signer.identity)
            continue
        yield record


class OffsetStore:
    """One connector's cursors (its signer's): read from the topic once, then kept."""

    def __init__(self, settings: Settings, serde: Serde, producer: Producer, signer: Signer) -> None:
        self._settings = settings
        self._producer = producer
        self._signer = signer
        self._encode = serde.encoder(CONNECTOR_OFFSETS_TOPIC, "connector_offset")
        self._cursors: dict[str, FileCursor] | None = None  # by file fingerprint

    def _loaded(self) -> dict[str, FileCursor]:
        if self._cursors is None:
            self._cursors = {r["file_fingerprint"]: FileCursor(r["rows_done"], r["complete"], r["rows_claimed"])
                             for r in signed_cursors(self._settings, self._signer.name)}
        return self._cursors

    def get(self, file_fingerprint: str) -> FileCursor:
        return self._loaded().get(file_fingerprint, FileCursor())

    def put(self, file_fingerprint: str, file: str, cursor: FileCursor) -> None:
        """Record progress; the caller flushes the producer."""
        self._loaded()[file_fingerprint] = cursor
        connector = self._signer.name
        key = cursor_key(connector, file_fingerprint).encode()
        value = self._encode({
            "connector": connector, "file_fingerprint": file_fingerprint, "file": file,
            "rows_done": cursor.rows_done, "complete": cursor.complete, "rows_claimed": cursor.rows_claimed,
            "updated_at": dt.datetime.now(dt.timezone.utc)})
        self._producer.produce(CONNECTOR_OFFSETS_TOPIC, key=key, value=value,
                               headers=self._signer.headers(CONNECTOR_OFFSETS_TOPIC, key, value))
