"""Connector cursors, kept in Kafka like Kafka Connect's source offsets.

One record per file fingerprint on the connector's own topic,
``hub.connector-offsets.<connector>``; the latest record per key wins. Kept
on the broker, the cursor lives and dies with the data it describes: a fresh
embedded broker starts with no cursors, a production cluster keeps them
across hosts and restarts. On a secured cluster a connector's ACLs give it
its own cursor topic and no other's, whose keys would name another agency's
files.

A cursor says which rows never to send again, so a forged one would lose
them. Each cursor is signed by its connector, and only a cursor its own
connector signed, under its own key, counts; any other is left out (logged
by where it sits), and the rows it claimed are sent again, which the
workers drop as duplicates. Cursors an older installation kept on the shared
``hub.connector-offsets`` are still read where that topic exists and the
connector may read it (the embedded broker); newer ones on its own topic win.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Iterator

from confluent_kafka import Message, Producer

from hub.kafka.clients import KafkaClients
from hub.kafka.readers import SignedReader
from hub.kafka.serde import Serde
from hub.flow.topics import LEGACY_CURSOR_TOPIC, cursor_topic
from hub.kafka.topics import list_topics, read_to_end
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


def signed_cursors(clients: KafkaClients, connector: str) -> Iterator[dict[str, Any]]:
    """The cursor records of ``connector`` that it signed itself, oldest first."""
    read = SignedReader(clients.settings, "connector_offset", frozenset({Role.CONNECTOR}))
    for topic in _cursor_topics(clients, connector):
        for message in read_to_end(clients, topic):
            record = _own_cursor(read, connector, topic, message)
            if record is not None:
                yield record


def _cursor_topics(clients: KafkaClients, connector: str) -> list[str]:
    """The connector's cursor topic, after the shared legacy one where it still exists."""
    topics = [cursor_topic(connector)]
    if LEGACY_CURSOR_TOPIC in list_topics(clients):
        topics.insert(0, LEGACY_CURSOR_TOPIC)
    return topics


def _own_cursor(read: SignedReader, connector: str, topic: str, message: Message) -> dict[str, Any] | None:
    """The message's cursor record, if it is the connector's and the connector signed it."""
    key = message.key() or b""
    if not key.startswith(f"{connector}|".encode()):
        return None  # on the shared topic, another connector's: not ours to check
    found = read.signed(message)
    if found is None:
        return None
    signer, record = found
    if signer.name != connector or record["connector"] != connector or \
            key != cursor_key(connector, record["file_fingerprint"]).encode():
        log.warning("a cursor on %s[%s]@%s is left out: %s signed another connector's cursor",
                    topic, message.partition(), message.offset(), signer.identity)
        return None
    return record


class OffsetStore:
    """One connector's cursors (its signer's): read from the topic once, then kept."""

    def __init__(self, clients: KafkaClients, serde: Serde, producer: Producer, signer: Signer) -> None:
        self._clients = clients
        self._producer = producer
        self._signer = signer
        self._topic = cursor_topic(signer.name)
        self._encode = serde.encoder(self._topic, "connector_offset")
        self._cursors: dict[str, FileCursor] | None = None  # by file fingerprint

    def _loaded(self) -> dict[str, FileCursor]:
        if self._cursors is None:
            self._cursors = {r["file_fingerprint"]: FileCursor(r["rows_done"], r["complete"], r["rows_claimed"])
                             for r in signed_cursors(self._clients, self._signer.name)}
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
            "updated_at": dt.datetime.now(dt.UTC)})
        self._producer.produce(self._topic, key=key, value=value,
                               headers=self._signer.headers(self._topic, key, value))
