"""The Kafka clients of one process, made once and handed down.

A process (a CLI command, a worker, a connector run, a bench or chaos run)
makes one ``KafkaClients`` from its settings at its top and hands it to
everything below that talks to the brokers, instead of handing down the
settings and letting each helper build clients of its own from them.
It holds:

- the connection (``client_config``): the bootstrap servers and the
  security settings, checked once;
- one ``AdminClient``, made on first use and shared (librdkafka's admin
  client is thread-safe): metadata, topic creation, ACLs;
- one assign-based ``Consumer`` for looking up watermarks and reading a
  topic to its end, made on first use and shared; ``reader()`` lends it
  to one reader at a time, its assignment cleared after each read;
- producers and group consumers on request (``producer``, ``consumer``),
  with the process's connection settings; whoever asks for one owns it
  and closes it.

It also carries the ``settings`` the Kafka functions need besides the
connection (partition counts, the app ID, topic names): a function that
takes a ``KafkaClients`` reads them from there.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from hub.kafka.connection import client_config, producer_config
from hub.settings import Settings

# The shared reader: assign-based (it never joins its group), nothing
# committed; short fetch waits, as a read to the end waits on each partition.
READER_CONFIG: dict[str, Any] = {"group.id": "hub-reader", "enable.auto.commit": False, "log_level": 3,
                                 "fetch.wait.max.ms": 20, "auto.offset.reset": "earliest",
                                 "fetch.error.backoff.ms": 20}


@dataclass
class _Shared:
    """What every view of one process's clients shares: the connection and the clients made from it."""

    config: dict[str, Any]
    lock: threading.RLock = field(default_factory=threading.RLock)  # guards making the shared clients
    reading: threading.RLock = field(default_factory=threading.RLock)  # one reader of the shared consumer at a time
    admin: AdminClient | None = None
    reader: Consumer | None = None
    closed: bool = False


class KafkaClients:
    """One process's Kafka clients (see the module's description).

    Made once per process from its settings; ``with_settings`` gives a view
    with other non-connection settings (another app ID, say) that shares
    the same clients. ``close`` (or leaving a ``with`` block) closes what it
    owns: the shared reader, and its hold on the admin client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._shared = _Shared(client_config(settings))  # checked here, once: a bad setting fails at the top

    @property
    def client_config(self) -> dict[str, Any]:
        """librdkafka's connection settings (a copy: a caller may add to it)."""
        return dict(self._shared.config)

    def with_settings(self, settings: Settings) -> KafkaClients:
        """A view for ``settings`` on the same clients; the connection must be the same."""
        if client_config(settings) != self._shared.config:
            raise ValueError("a view of a process's Kafka clients must keep its connection settings")
        view = KafkaClients.__new__(KafkaClients)
        view.settings, view._shared = settings, self._shared
        return view

    def admin(self) -> AdminClient:
        """The process's admin client: made on first use, then the same one."""
        shared = self._shared
        with shared.lock:
            self._check_open()
            if shared.admin is None:
                shared.admin = AdminClient(self.client_config)
            return shared.admin

    @contextmanager
    def reader(self) -> Iterator[Consumer]:
        """The process's shared assign-based consumer, for one reader at a
        time (other threads wait): watermarks, a topic read to its end. What
        the reader assigned is unassigned when it is done, so the next read
        starts from nothing."""
        shared = self._shared
        with shared.reading:
            with shared.lock:
                self._check_open()
                if shared.reader is None:
                    shared.reader = Consumer({**self.client_config, **READER_CONFIG})
                consumer = shared.reader
            try:
                yield consumer
            finally:
                if consumer.assignment():
                    consumer.unassign()

    def producer(self, overrides: Mapping[str, Any] | None = None, /, *, plain: bool = False) -> Producer:
        """A new producer with the hub's producer settings (``producer_config``;
        ``plain``: the connection alone) and ``overrides``. The caller owns it:
        it flushes it."""
        base = self.client_config if plain else producer_config(self.settings, self._shared.config)
        return Producer({**base, **(overrides or {})})

    def consumer(self, group_id: str, overrides: Mapping[str, Any] | None = None, /) -> Consumer:
        """A new consumer of group ``group_id`` with ``overrides``. The caller owns it: it closes it."""
        return Consumer({**self.client_config, "group.id": group_id, **(overrides or {})})

    def close(self) -> None:
        """Close the shared reader and let go of the admin client (librdkafka
        destroys it with its last reference). Clients handed out stay their
        owners' to close. Idempotent; the clients cannot be used afterwards."""
        shared = self._shared
        with shared.reading, shared.lock:
            if shared.closed:
                return
            shared.closed = True
            reader, shared.reader, shared.admin = shared.reader, None, None
        if reader is not None:
            reader.close()

    def _check_open(self) -> None:
        if self._shared.closed:
            raise RuntimeError("these Kafka clients are closed")

    def __enter__(self) -> KafkaClients:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
