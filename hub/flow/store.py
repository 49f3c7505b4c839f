"""Where the flow keeps each business's state and each lookup key's resolver
state between batches. The flow reads through this protocol and writes
through its effects (``StateWrite``), so a store is read-only to it: the edge
writes a batch's states once they are all drawn.

Partitions: a table may hold entries of partitions its worker no longer
owns; ``partition_of`` tells them apart, and ``Flow.assign`` reads only the
assigned partitions' states, once after every (re)assignment."""
from __future__ import annotations

from typing import Protocol
from collections.abc import Iterable
from zlib import crc32


class Table(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        """Every stored entry this worker holds."""
        ...


class Store(Protocol):
    @property
    def businesses(self) -> Table: ...

    @property
    def resolver(self) -> Table: ...

    def partition_of(self, key: bytes) -> int:
        """The partition a key's state lives in (the events' and the changelog's)."""
        ...


class MemoryStore:
    """A store in dicts: the in-memory bus and tests."""

    def __init__(self, partitions: int = 1) -> None:
        self.businesses: dict[bytes, bytes] = {}
        self.resolver: dict[bytes, bytes] = {}
        self.partitions = partitions

    def partition_of(self, key: bytes) -> int:
        return crc32(key) % self.partitions
