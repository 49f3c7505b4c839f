"""The flow: a batch of records in, ``Effects`` out. No Kafka, no metrics, no
Avro here: the edge (``hub.edge.worker``, or the in-memory bus of the tests)
feeds it records and carries out its effects.

Four kinds of message meet a business's state, all keyed by business:
events (the rules), teams' feedback (the lead lifecycle), clock ticks, one
per partition, at which the deadlines of that partition's leads are
checked, and resolved records coming back from entity resolution. Time
reaches the lifecycle only through ticks and feedback, so a test (or a
replay) controls it by what it publishes. Each kind has its handler
(``events``, ``feedback``, ``ticks``, ``resolving`` with ``signalling``), which
sees the batch and a ``Context``, never the ``Flow``; ``drawing`` draws the
leads at the end of the batch.

Each record is applied on its own: one that cannot be decoded, validated or
processed becomes a dead letter, its changes are rolled back, and its
batch-mates go on. Only ``RegistryUnavailable`` (the infrastructure, not the
record) escapes, so the edge retries the whole batch without acknowledging it.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from time import perf_counter
from typing import Any, TypeVar
from collections.abc import Callable, Iterable, Mapping

from hub.audit.entries import UNPROVEN
from hub.domain import indexes
from hub.domain.leads import BusinessState
from hub.domain.pii import PersonalDataHasher, describe
from hub.domain.resolution import ResolverState
from hub.domain.teams import Team
from hub.domain.validation import latest_date
from hub.flow import events, feedback, resolving, ticks
from hub.flow.batch import Batch, Context, DecodedStates, Deadlines, StateLoader
from hub.flow.codec import Codec, Encode, RegistryUnavailable
from hub.flow.deadletters import refuse
from hub.flow.drawing import draw_leads
from hub.flow.effects import Effects, Stage, StateWrite, Unresolved
from hub.flow.messages import EventMessage, FeedbackMessage, Message, Reader, Record, Refused, Tick
from hub.flow.store import Store
from hub.flow.topics import BUSINESS_TABLE, RESOLVER_TABLE
from hub.settings import FlowSettings
from hub.trust import Role, Verifier

log = logging.getLogger(__name__)


class Flow:
    """The worker's logic for the partitions it owns (``assign``)."""

    def __init__(self, settings: FlowSettings, codec: Codec, store: Store, teams: Mapping[str, Team],
                 verifier: Verifier, clock: Callable[[], float] = time.time) -> None:
        self.limits = settings.validation
        self.reader = Reader(codec.decoder, settings, verifier, teams)
        self.encoders: dict[str, Encode] = {}
        self.codec = codec
        self.store = store
        self.clock = clock
        # Who writes the states this flow changes (see BusinessState.resume),
        # and the states it wrote last, decoded.
        self.decoded = DecodedStates(settings.state_cache_businesses)
        self.loader = StateLoader(store, self.decoded, uuid.uuid4().hex)
        self.deadlines = Deadlines(settings.lifecycle)
        self.context = Context(settings.rules, settings.lifecycle, dict(teams),
                               PersonalDataHasher(settings.pii_key), self.reader, self.encode_event,
                               self.deadlines, f"{Role.WORKER}:{settings.worker_name}", clock)
        # lookup key -> (parked, ambiguous, oldest parked ms), for keys with records waiting only
        self.unresolved: dict[bytes, tuple[int, int, int]] = {}
        # Business key -> partition, of the stored states whose leads the next
        # batch republishes; each batch checks the store again, so a batch the
        # edge retries (its writes not done) republishes them too.
        self._owed: dict[bytes, int] = {}

    @property
    def incarnation(self) -> str:
        return self.loader.incarnation

    # -- partitions ------------------------------------------------------
    def assign(self, partitions: frozenset[int]) -> None:
        """After a (re)start, a rebalance or ``renew``, and before the next
        batch: one pass over the stored states of ``partitions``. It rebuilds
        the deadline index and the count of unresolved records, and finds the
        states another incarnation wrote whose leads may never have reached
        the topics (it died or was fenced in between): the next batch
        republishes them, because waiting for each business's next record
        would leave them unpublished for good where none comes."""
        self.unresolved, self._owed = {}, {}
        self.deadlines.clear()
        self.decoded.clear()
        for key, data in self.store.businesses.items():
            partition = self.store.partition_of(key)
            if indexes.index_kind(key) is not None:
                continue  # an index state: no deadlines, no leads to owe
            if partition in partitions and (state := _readable(BusinessState.from_bytes, data)) is not None:
                self.deadlines.index(key, state, partition)
                if state.resume(self.incarnation):
                    self._owed[key] = partition
                else:
                    self.decoded.keep(key, data, state)
        for key, data in self.store.resolver.items():
            if self.store.partition_of(key) in partitions and \
                    (resolver := _readable(ResolverState.from_bytes, data)) is not None:
                self._summarise_unresolved(key, resolver)

    def revoke(self, partitions: frozenset[int]) -> None:
        """These partitions went to another worker: nothing of theirs is
        kept in hand (their deadlines, their owed leads). ``assign`` follows
        before the next batch."""
        self.deadlines.drop(partitions)
        self.decoded.clear()
        self._owed = {k: p for k, p in self._owed.items() if p not in partitions}
        self.unresolved = {k: v for k, v in self.unresolved.items()
                           if self.store.partition_of(k) not in partitions}

    def renew(self) -> None:
        """This worker was fenced: states it wrote may owe leads it did not
        publish. As another incarnation it republishes them; ``assign`` must
        be called again before the next batch."""
        self.loader.incarnation = uuid.uuid4().hex
        self.decoded.clear()

    # -- a batch ---------------------------------------------------------
    def process(self, records: Iterable[Record | tuple[Any, ...]]) -> Effects:
        effects = Effects()
        batch = Batch(effects, self.loader)
        now = self.clock()  # one clock reading for the batch
        latest = latest_date(now, self.limits)
        self._republish_owed(batch)
        for raw in records:
            self._apply_record(batch, Record(*raw), latest, int(now * 1000))
        draw_leads(self.context, batch)
        started = perf_counter()
        for key, index in batch.changed_indexes.items():
            effects.states.append(StateWrite(BUSINESS_TABLE, key, indexes.to_bytes(index)))
        for key, resolver in batch.changed_resolvers.items():
            self._summarise_unresolved(key, resolver)
            effects.states.append(StateWrite(RESOLVER_TABLE, key, resolver.to_bytes()))
        effects.seconds[Stage.STATE_ENCODE] += perf_counter() - started
        effects.seconds[Stage.RULES] -= effects.seconds[Stage.STATE_LOAD]  # timed inside the rules' time
        effects.unresolved = self.unresolved_now()
        return effects

    def _republish_owed(self, batch: Batch) -> None:
        for key, partition in list(self._owed.items()):
            stored = self.store.businesses.get(key)
            state = None if stored is None else BusinessState.from_bytes(stored)
            if state is None or not state.resume(self.incarnation):  # written since
                del self._owed[key]
                continue
            batch.states[key] = batch.changed[key] = state
            batch.partition_of[key] = partition

    def _apply_record(self, batch: Batch, record: Record, latest: dt.date, now_ms: int) -> None:
        """One record on its own: verified, read and handled, or refused (its
        changes rolled back, its batch-mates unaffected)."""
        effects = batch.effects
        batch.current = record
        batch.undo.clear()
        batch.undo_resolvers.clear()
        marks = (len(effects.first), len(effects.observations), len(effects.audit), effects.oldest_received_at)
        batch.sender = UNPROVEN
        started = perf_counter()
        try:
            signed = self.reader.verify(record)
            batch.sender = signed.signer.identity
            verified = perf_counter()
            effects.seconds[Stage.VERIFY] += verified - started
            message = self.reader.read(record, signed, latest, now_ms)
            read = perf_counter()
            effects.seconds[Stage.DECODE] += read - verified
            self._handle(message, batch)
            effects.seconds[Stage.RULES] += perf_counter() - read
        except RegistryUnavailable:
            raise
        except Refused as exc:
            self._roll_back(batch, marks)
            refuse(effects, self.reader, exc.code, str(exc), record, batch.sender)
        except Exception as exc:  # a bug or a record nobody foresaw: it alone fails
            self._roll_back(batch, marks)
            log.warning("%s[%s]@%s failed: %s", record.topic, record.partition, record.offset, describe(exc))
            refuse(effects, self.reader, "processing_error", f"processing failed: {type(exc).__name__}", record,
                   batch.sender)

    def _handle(self, message: Message, batch: Batch) -> None:
        if isinstance(message, EventMessage):
            events.apply(self.context, message, message.key, batch)
        elif isinstance(message, FeedbackMessage):
            feedback.apply(self.context, message, batch)
        elif isinstance(message, Tick):
            ticks.apply(self.context, message, batch)
        else:
            resolving.apply(self.context, message, batch)

    def _roll_back(self, batch: Batch, marks: tuple[int, int, int, float | None]) -> None:
        for key in batch.undo:
            batch.applied[key].pop()
        _restore(batch.undo, batch.states, batch.changed, lambda state: state)
        _restore(batch.undo_resolvers, batch.resolvers, batch.changed_resolvers, ResolverState.from_bytes)
        _restore(batch.undo_indexes, batch.indexes, batch.changed_indexes, lambda index: index)
        del batch.effects.first[marks[0]:], batch.effects.observations[marks[1]:], batch.effects.audit[marks[2]:]
        batch.effects.oldest_received_at = marks[3]

    def encode_event(self, topic: str, event: Mapping[str, Any]) -> bytes:
        encode = self.encoders.get(topic)
        if encode is None:
            encode = self.encoders[topic] = self.codec.encoder(topic, "event")
        return encode(event)

    # -- unresolved records ----------------------------------------------
    def _summarise_unresolved(self, key: bytes, state: ResolverState) -> None:
        waiting = state.unresolved()
        if not waiting:
            self.unresolved.pop(key, None)
            return
        ambiguous = sum(r.decision.ambiguous for r in waiting)
        self.unresolved[key] = (len(waiting) - ambiguous, ambiguous, min(r.parked_ms for r in waiting))

    def unresolved_now(self) -> Unresolved:
        values = self.unresolved.values()
        return Unresolved(sum(p for p, _, _ in values), sum(a for _, a, _ in values),
                          min((o for _, _, o in values), default=None))


S = TypeVar("S")


def _readable(parse: Callable[[bytes], S], data: bytes) -> S | None:
    """A stored state, or None (logged) if it cannot be read: one bad entry
    must not stop a worker from taking its partitions. Its business's records
    become dead letters when they come (the state fails to load for them)."""
    try:
        return parse(data)
    except Exception as exc:
        log.error("a stored state cannot be read and is left out of the pass over the states: %s", describe(exc))
        return None


def _restore(undo: dict[bytes, Any], loaded: dict[bytes, Any], changed: dict[bytes, Any],
             parse: Callable[[Any], Any]) -> None:
    """Put back the states a failed record touched: one it loaded first is
    forgotten (the next touch loads it again), one loaded earlier in the
    batch gets back what it was before the record."""
    for key, raw in undo.items():
        if raw is None:
            loaded.pop(key, None)  # absent if loading it is what failed
            changed.pop(key, None)
        else:
            loaded[key] = parse(raw)
            if key in changed:
                changed[key] = loaded[key]

