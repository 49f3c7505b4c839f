"""Every place the hub reaches into Faust's (and aiokafka's) private
attributes, in one module. faust-streaming is pinned to 0.15.x;
``tests/test_faust_patches.py`` fails loudly if an upgrade removes or
reshapes what these rely on.

- ``QuietMonitor``: no per-event statistics for web views the hub turns off.
- ``strict_commits``, ``Processed``: commit only the run of offsets the
  worker processed (faust-streaming #606 commits over a gap at the head;
  Faust's stream acknowledges events it skipped unprocessed).
- ``StallHealer``: a partition whose commits wait behind a gap that the
  recovery race dropped (#596) is replayed from its committed offset.
- ``still_member``: ask the group coordinator, before a write, whether this
  worker is still in the generation that gave it its batch.
- ``set_without_changelog``: a table entry whose changelog record the hub
  writes itself.
- ``read_offset``, ``has_unacked``: the consumer's position, for lag.
- ``fetched_to``: where aiokafka fetches a partition next, for the healer.
- ``StoppableWorker``: a signal stop that cannot hang, and a stop from
  another thread.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from collections import defaultdict
from typing import Any
from collections.abc import Callable, Iterable

import faust
import mode
from faust.sensors.monitor import Monitor

log = logging.getLogger(__name__)

# A stop on SIGTERM/SIGINT that did not finish within its grace period.
EXIT_STOP_CUT_SHORT = 77


def _ignore(self: Monitor, *args: Any, **kwargs: Any) -> None:
    return None


class QuietMonitor(Monitor):
    """Faust's Monitor keeps per-event statistics for its web views, which the
    hub turns off; the hub's Prometheus metrics take their place. Skipping the
    per-event hooks saves about 15 µs an event (a bare take() loop went from
    8.1k to 9.2k events/s on the embedded broker)."""

    on_message_in = on_message_out = on_stream_event_in = on_stream_event_out = _ignore
    on_send_initiated = on_send_completed = on_table_get = on_table_set = _ignore


def commit_start(consumer: Any, tp: Any, log_start: dict[Any, int]) -> int | None:
    """The offset a partition's next commit must start from: its committed
    offset, or where its log starts when it has none (Faust keeps "never
    committed" and "committed at 0" alike as None); None while unknown."""
    committed = consumer._committed_offset.get(tp)
    return committed if committed is not None else log_start.get(tp)


class Processed:
    """The offsets the worker has finished (its batches written, or
    dead-lettered) and not yet committed, per partition: what commits are
    computed from. Faust's own acknowledgements are not: its stream also
    acknowledges, unprocessed, an event it skips as fetched in an earlier
    group generation (faust-streaming PR #223, "otherwise the lag would
    increase"), in compiled code that no hook reaches; such an offset would
    let a commit pass the real event before it was processed."""

    def __init__(self) -> None:
        self.offsets: defaultdict[Any, set[int]] = defaultdict(set)

    def add(self, events: Iterable[Any]) -> None:
        for event in events:
            self.offsets[event.message.tp].add(event.message.offset)

    def forget(self, tps: Iterable[Any]) -> None:
        for tp in tps:
            self.offsets.pop(tp, None)


def strict_commits(consumer: Any, log_start: dict[Any, int], processed: Processed) -> None:
    """Commit only what was processed: the run of ``processed`` offsets that
    starts exactly at the committed offset, or for a partition never
    committed, at the start of its log.

    Replaces Faust's ``Consumer._new_offset`` on this consumer: it commits over
    a one-offset gap at the head (faust-streaming issue #606, open), which loses
    an event that the recovery race (#596) dropped; and offsets its gap
    tracker filled in can be acked twice, so duplicates in the acked list make
    commits crawl one offset per interval. The event topics are not compacted
    and carry no transaction markers, so a gap in them is always an event not
    yet processed. Without a committed offset, any run would do for Faust: a
    partition whose first events the race dropped was committed past them.
    Faust still asks only about partitions it holds acknowledgements for, which
    every processed batch gives it (``take_events`` acknowledges it)."""
    def new_offset(tp: Any) -> int | None:
        consumer._acked[tp].clear()  # read by nothing: see Processed
        consumer._acked_index[tp].clear()
        done = processed.offsets.get(tp)
        start = commit_start(consumer, tp, log_start)
        if not done or start is None:  # nothing, or where to start not known yet: commit nothing
            return None
        done.difference_update([o for o in done if o < start])
        if start not in done:
            return None
        end = start
        while end + 1 in done:
            end += 1
        done.difference_update(range(start, end + 1))
        return end + 1

    consumer._new_offset = new_offset


class StallHealer:
    """faust-streaming issue #596: a recovery race can drop fetched events
    from the stream queues unacked; with strict commits the partition then
    waits at the gap. The gap can also be the partition's whole tail: read
    past its committed offset, nothing acknowledged, nothing in flight, and
    no later event to show the gap (a hole that fits the one CI run that left
    619 events of a partition uncommitted after a kill and restart; not
    reproduced). Or the tail never reached Faust's stream at all: aiokafka
    handed it over, and Faust's fetch loop broke off the batch because the
    group's generation changed under it (faust-streaming #629, seen in the
    bench's two-worker phase as the second worker joins). A partition
    stalled any of these ways for ``heal_after_s`` is sought back to its
    committed offset; the replayed events that were processed are duplicates
    the state suppresses, the dropped ones get processed."""

    def __init__(self, consumer: Any, topics: set[str], heal_after_s: float, log_start: dict[Any, int],
                 processed: Processed) -> None:
        self.consumer, self.topics, self.heal_after_s, self.log_start = consumer, topics, heal_after_s, log_start
        self.processed = processed
        self.stalled_since: dict[Any, tuple[int, float]] = {}
        # Where each partition was last replayed, and in which group generation.
        self.replayed: dict[Any, tuple[int, int]] = {}

    async def check(self, now: float) -> int:
        """Partitions sought back this time."""
        consumer, healed = self.consumer, 0
        await self._learn_log_starts()
        in_flight = {message.tp for message in list(consumer._unacked_messages) if not message.acked}
        for tp in consumer.assignment():
            start = self._stalled_at(tp, in_flight)
            if start is None:
                self.stalled_since.pop(tp, None)
                continue
            waited = self._stalled_for(tp, start, now)
            if waited >= self.heal_after_s and (self._read_all_fetched(tp, start) or waited >= 2 * self.heal_after_s):
                await self._heal(tp, start)
                healed += 1
        return healed

    async def _learn_log_starts(self) -> None:
        """The log start of each assigned partition not yet known."""
        consumer = self.consumer
        unknown = [tp for tp in consumer.assignment() if tp.topic in self.topics and tp not in self.log_start]
        if unknown:
            self.log_start.update(await consumer.earliest_offsets(*unknown))

    def _stalled_at(self, tp: Any, in_flight: set[Any]) -> int | None:
        """Where a partition's commits wait behind a gap, if they do: a gap
        before the events processed, or a tail dropped."""
        done, start = self.processed.offsets.get(tp), commit_start(self.consumer, tp, self.log_start)
        if tp.topic not in self.topics or start is None or not (
                min(done) > start if done else self._tail_dropped(tp, start, in_flight)):
            return None
        return start

    def _stalled_for(self, tp: Any, start: int, now: float) -> float:
        """How long the partition has waited at ``start`` (waiting elsewhere
        before, it starts waiting now)."""
        first = self.stalled_since.setdefault(tp, (start, now))
        if first[0] != start:
            self.stalled_since[tp] = (start, now)
            return 0.0
        return now - first[1]

    def _read_all_fetched(self, tp: Any, start: int) -> bool:
        """Whether Faust has read all that aiokafka handed it of the partition,
        or read nothing past ``start`` (a dropped batch, judged idle). A seek
        waits for it (up to ``heal_after_s`` more): Faust drops an event that
        comes back below its read offset, and events fetched past the gap but
        not yet read would raise that offset after the seek and drop the
        replay (the bench's pipeline phase replayed the same gap every 6 s
        until it sought at such a moment)."""
        read, fetched = read_offset(self.consumer, tp), fetched_to(self.consumer, tp)
        return read is None or read <= start or fetched is None or read + 1 >= fetched

    async def _heal(self, tp: Any, start: int) -> None:
        """Seek the partition back to where its commits wait."""
        consumer = self.consumer
        if consumer._committed_offset.get(tp) is None:  # retention may have moved the start since
            self.log_start.update(await consumer.earliest_offsets(tp))
            start = self.log_start[tp]
        log.warning("commits on %s wait at %s behind a gap; replaying from there", tp, start)
        self.replayed[tp] = (start, consumer.app.consumer_generation_id)
        self.processed.forget([tp])
        await consumer.seek(tp, start)
        self.stalled_since.pop(tp, None)

    def _tail_dropped(self, tp: Any, start: int, in_flight: set[Any]) -> bool:
        """Read past ``start``, yet nothing of it acknowledged or in flight.
        Past, not up to: a seek (Faust's after a rebalance, or this healer's)
        leaves the read offset *at* the offset to read next, so a tail of one
        dropped event is not told from a partition sought and idle; the next
        event on the partition shows that gap as the first kind.

        Or fetched past ``start`` and never read, while nothing at all is in
        flight: a batch Faust fetched and has not read yet waits behind a full
        stream queue, and meanwhile the agent works through a batch of its
        own, whose events are in flight (Faust tracks an event as the stream
        takes it, not as it is queued); with nothing in flight, the batch was
        dropped."""
        if tp in in_flight:
            return False
        read = read_offset(self.consumer, tp)
        return (read is not None and read > start) or (not in_flight and self._fetched_unread(tp, start))

    def _fetched_unread(self, tp: Any, start: int) -> bool:
        """aiokafka handed Faust offsets from ``start`` on (faust-streaming
        #629). Judged only where Faust knows the committed offset: from a
        revocation until its seek once recovered it does not, while aiokafka
        already fetches from the broker's committed offset. And once per
        committed offset and group generation: a replay that brings nothing
        to read (a transaction marker at the tail, which aiokafka steps
        over) is not repeated."""
        consumer = self.consumer
        fetched = fetched_to(consumer, tp)
        return (consumer._committed_offset.get(tp) is not None and fetched is not None and fetched > start
                and self.replayed.get(tp) != (start, consumer.app.consumer_generation_id))


async def still_member(app: faust.App, generation: int) -> bool:
    """Whether this worker is still a member of the group generation that gave
    it its partitions, asked of the group coordinator with a heartbeat (in
    Faust's consumer thread, where aiokafka's coordinator lives). A worker
    paused beyond the session timeout has not heard yet that its partitions
    went to another."""
    thread: Any = app.consumer._thread  # type: ignore[attr-defined]
    coordinator = thread._ensure_consumer()._coordinator
    return bool(app.consumer_generation_id == generation and await thread.call_thread(coordinator._do_heartbeat)
                and coordinator.generation == generation == app.consumer_generation_id)


def set_without_changelog(table: Any, key: bytes, value: bytes) -> None:
    """Set a table entry in the table's store alone: the caller writes the
    changelog record itself (``hub.edge.worker.Publisher``). Faust's
    ``__setitem__`` would also send it through Faust's producer buffer, at
    several times the cost."""
    table.data[key] = value


def read_offset(consumer: Any, tp: Any) -> int | None:
    """The last offset read from a partition, if any."""
    offset = consumer._read_offset.get(tp)
    return None if offset is None else int(offset)


def fetched_to(consumer: Any, tp: Any) -> int | None:
    """The offset aiokafka fetches a partition from next: it handed every
    offset before it to Faust. None while unknown (no aiokafka consumer yet,
    the partition not in aiokafka's assignment, or awaiting its reset).
    Read from the event loop's thread while aiokafka's runs: a position is
    one attribute, and a stale one only delays the healer's judgement."""
    aiokafka_consumer = consumer._thread._consumer
    subscription = aiokafka_consumer._subscription.subscription if aiokafka_consumer is not None else None
    assignment = subscription.assignment if subscription is not None else None
    state = assignment.state_value(tp) if assignment is not None else None
    # ``_position``, read once: the ``position`` property asserts, and aiokafka's thread may reset it meanwhile
    return None if state is None else state._position


def has_unacked(consumer: Any) -> bool:
    return bool(consumer._unacked_messages)


def mark_unacknowledged(events: Any) -> None:
    """Keep Faust from recording these events as processed: take_events'
    ``finally`` acknowledges a batch, and the strict commits then stop
    before them (a batch fenced, or stopped mid-way)."""
    for event in events:
        event.message.acked = True


class StoppableWorker(faust.Worker):
    """A Faust worker whose stop on a signal cannot hang.

    Faust's graceful stop commits offsets, flushes the producer and leaves
    the group: with the broker down each of those waits out its own timeout,
    a minute and more. Nothing is lost by leaving without them: what was not
    committed is replayed by the next worker, and a state written without its
    leads owes them to the next one (``BusinessState.resume``). So a stop with
    the broker unreachable is immediate, and any stop is cut short after
    ``grace_s``."""

    broker_down: Callable[[], bool] = staticmethod(lambda: False)
    grace_s: float = 30.0

    def _schedule_shutdown(self, signal_: Any) -> None:
        if self.broker_down():
            log.warning("stopping at once: the broker does not answer, so there is nothing to commit or flush; "
                        "what this worker did not commit is replayed")
            logging.shutdown()
            os._exit(0)
        if not self._signal_stop_time:
            watchdog = threading.Timer(self.grace_s, self._cut_short)
            watchdog.daemon = True
            watchdog.start()
        super()._schedule_shutdown(signal_)

    def request_stop(self) -> None:
        """A graceful stop asked for by another thread of this process
        (``hub backfill``): no signal, and no watchdog, whose cut would end
        the whole process."""
        self.loop.call_soon_threadsafe(lambda: mode.Worker._schedule_shutdown(self, signal.SIGTERM))

    def _cut_short(self) -> None:
        log.error("a graceful stop took longer than %.0fs; leaving without it (nothing uncommitted is lost)",
                  self.grace_s)
        logging.shutdown()
        os._exit(EXIT_STOP_CUT_SHORT)
