"""What a message's handler works with: the ``Batch`` in hand (the states it
loaded and changed, what it owes to roll back) and the ``Context`` (the
flow's settings and services a handler may use). Handlers (``events``,
``feedback``, ``ticks``, ``resolving``, ``signalling``, ``drawing``) see
these two and nothing else of the ``Flow``."""
from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter
from typing import Any
from collections.abc import Callable, Mapping

from hub.audit.entries import UNPROVEN
from hub.domain import indexes
from hub.domain.indexes import IndexState
from hub.domain.leads import BusinessState
from hub.domain.pii import PersonalDataHasher
from hub.domain.resolution import ResolverState
from hub.domain.signals import IndexKind
from hub.domain.teams import Team
from hub.flow.effects import Effects, Send, Stage
from hub.flow.messages import Reader, Record, ResolutionBody, resolution_message
from hub.flow.store import Store
from hub.flow.topics import RESOLUTION_TOPIC
from hub.settings import LifecycleSettings, RuleSettings


class DecodedStates:
    """Business states as last written by this flow, decoded, so that the
    next batch to touch a business need not parse its stored JSON again;
    the most recently written ``size`` of them.

    A state is handed out once (``take``) and only while the store still
    holds the bytes it was written as: a batch the edge did not write
    (retried, fenced) or one whose record failed leaves the store behind the
    object, which is then not reused. The next write keeps it again."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: dict[bytes, tuple[bytes, BusinessState]] = {}

    def keep(self, key: bytes, data: bytes, state: BusinessState) -> None:
        if self.size <= 0:
            return
        self._kept.pop(key, None)  # to the end: the most recent
        self._kept[key] = (data, state)
        while len(self._kept) > self.size:
            del self._kept[next(iter(self._kept))]

    def take(self, key: bytes, stored: bytes | None) -> BusinessState | None:
        kept = self._kept.pop(key, None)
        return kept[1] if kept is not None and stored is not None and kept[0] == stored else None

    def clear(self) -> None:
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)


@dataclass
class StateLoader:
    """Where a batch loads states from: the store, the decoded states this
    flow wrote last, and the incarnation that now writes them (see
    ``BusinessState.resume``)."""

    store: Store
    decoded: DecodedStates
    incarnation: str


class Deadlines:
    """Partition -> business key -> its earliest pending deadline (epoch ms):
    what a tick on a partition has to look at."""

    def __init__(self, lifecycle: LifecycleSettings) -> None:
        self.lifecycle = lifecycle
        self.by_partition: dict[int, dict[bytes, int]] = {}

    def index(self, key: bytes, state: BusinessState, partition: int) -> None:
        due = state.next_deadline(self.lifecycle)
        if due is None:
            self.by_partition.get(partition, {}).pop(key, None)
        else:
            self.by_partition.setdefault(partition, {})[key] = due

    def due(self, partition: int, at_ms: int) -> list[bytes]:
        return [key for key, due in self.by_partition.get(partition, {}).items() if due <= at_ms]

    def drop(self, partitions: frozenset[int]) -> None:
        for partition in partitions:
            self.by_partition.pop(partition, None)

    def clear(self) -> None:
        self.by_partition = {}


@dataclass
class Batch:
    """One batch in hand: the states it loaded and changed, and what it owes
    to roll back the record being applied if that record fails."""

    effects: Effects
    loader: StateLoader
    states: dict[bytes, BusinessState] = field(default_factory=dict)  # loaded
    changed: dict[bytes, BusinessState] = field(default_factory=dict)  # to write
    partition_of: dict[bytes, int] = field(default_factory=dict)
    resolvers: dict[bytes, ResolverState] = field(default_factory=dict)
    changed_resolvers: dict[bytes, ResolverState] = field(default_factory=dict)
    # business key -> the records applied to it, each with its proven sender
    applied: dict[bytes, list[tuple[Record, str]]] = field(default_factory=dict)
    # What the record being applied touched: a key first loaded by it is
    # forgotten on rollback; one an earlier record had loaded gets back its
    # state from before (a snapshot; a resolver's bytes).
    undo: dict[bytes, BusinessState | None] = field(default_factory=dict)
    undo_resolvers: dict[bytes, bytes | None] = field(default_factory=dict)
    # A complainant's and a person's index states (an area's is a BusinessState).
    indexes: dict[bytes, IndexState] = field(default_factory=dict)
    changed_indexes: dict[bytes, IndexState] = field(default_factory=dict)
    undo_indexes: dict[bytes, IndexState | None] = field(default_factory=dict)
    current: Record | None = None
    sender: str = UNPROVEN  # the identity that signed the record being applied
    fresh: set[str] = field(default_factory=set)  # event IDs first seen in this batch (for late reports)

    def state(self, key: bytes, partition: int) -> BusinessState:
        """A business's state, loaded once a batch; remembered for the rollback."""
        state = self.states.get(key)
        if key not in self.undo:  # the first touch by this record
            self.undo[key] = None if state is None else state.snapshot()
            assert self.current is not None
            self.applied.setdefault(key, []).append((self.current, self.sender))
        if state is None:
            state = self._load(key, partition)
        return state

    def _load(self, key: bytes, partition: int) -> BusinessState:
        started = perf_counter()
        raw = self.loader.store.businesses.get(key)
        state = self.states[key] = self.loader.decoded.take(key, raw) or (
            BusinessState.from_bytes(raw) if raw is not None else BusinessState())
        self.effects.seconds[Stage.STATE_LOAD] += perf_counter() - started
        self.partition_of[key] = partition
        if state.resume(self.loader.incarnation):
            self.changed[key] = state
        return state

    def resolver(self, key: bytes) -> ResolverState:
        state = self.resolvers.get(key)
        if key not in self.undo_resolvers:
            self.undo_resolvers[key] = None if state is None else state.to_bytes()
        if state is None:
            raw = self.loader.store.resolver.get(key)
            state = self.resolvers[key] = ResolverState.from_bytes(raw) if raw is not None else ResolverState()
        return state

    def index(self, key: bytes, kind: IndexKind) -> IndexState:
        """A complainant's or a person's index state, loaded once a batch;
        remembered for the rollback."""
        state = self.indexes.get(key)
        if key not in self.undo_indexes:
            self.undo_indexes[key] = None if state is None else state.snapshot()
        if state is None:
            raw = self.loader.store.businesses.get(key)
            state = self.indexes[key] = indexes.from_bytes(kind, raw) if raw is not None else indexes.new_index(kind)
        return state

    def resolve(self, target: str, body: ResolutionBody) -> None:
        """Send a message on the resolution topic, keyed by its target."""
        self.effects.first.append(Send(RESOLUTION_TOPIC, target.encode(), "resolution", resolution_message(body)))


@dataclass(frozen=True)
class Context:
    """What of the flow a handler may use: the settings it reads, the
    teams, the personal-data hasher, the record reader (to decode a carried
    event), the event encoder, the deadline index and the clock."""

    rules: RuleSettings
    lifecycle: LifecycleSettings
    teams: dict[str, Team]
    hasher: PersonalDataHasher
    reader: Reader
    encode_event: Callable[[str, Mapping[str, Any]], bytes]
    deadlines: Deadlines
    identity: str  # who publishes the leads
    clock: Callable[[], float]
