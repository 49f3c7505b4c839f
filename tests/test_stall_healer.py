"""``StallHealer`` on Faust's bookkeeping, without a broker: which partitions
it seeks back to their committed offset, and when."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP as TopicPartition

from hub.edge.faust_patches import Processed, StallHealer

TP = TopicPartition("hub.events.samr", 1)
HEAL_AFTER_S = 5.0


class PartitionState:
    """aiokafka's fetch position of a partition (``TopicPartitionState``)."""

    def __init__(self, position: int | None) -> None:
        self._position = position


class Consumer:
    """The parts of Faust's consumer the healer reads and moves, and of the
    aiokafka consumer in its thread."""

    def __init__(self, committed: int | None, processed: list[int], read: int | None,
                 fetched: int | None = None) -> None:
        self._committed_offset = {TP: committed}
        self.processed = Processed()
        self.processed.offsets.update({TP: set(processed)} if processed else {})
        self._read_offset = {TP: read}
        self._unacked_messages: list[Any] = []  # a WeakSet in Faust
        self.sought: list[tuple[Any, int]] = []
        self.fetch = PartitionState(fetched)
        self.app = SimpleNamespace(consumer_generation_id=7)
        assignment = SimpleNamespace(state_value={TP: self.fetch}.get)
        self._thread = SimpleNamespace(_consumer=SimpleNamespace(
            _subscription=SimpleNamespace(subscription=SimpleNamespace(assignment=assignment))))

    def assignment(self) -> set[Any]:
        return {TP}

    async def earliest_offsets(self, *tps: Any) -> dict[Any, int]:
        return dict.fromkeys(tps, 0)

    async def seek(self, tp: Any, offset: int) -> None:
        self.sought.append((tp, offset))
        self._read_offset[tp] = self.fetch._position = offset


def _checks(consumer: Consumer, *times: float) -> list[int]:
    healer = StallHealer(consumer, {TP.topic}, HEAL_AFTER_S, {}, consumer.processed)
    return [asyncio.run(healer.check(now)) for now in times]


def test_a_gap_before_acknowledged_offsets_is_replayed_once_it_lasts() -> None:
    consumer = Consumer(committed=100, processed=[105, 106], read=106)
    assert _checks(consumer, 0.0, HEAL_AFTER_S - 0.1, HEAL_AFTER_S) == [0, 0, 1]
    assert consumer.sought == [(TP, 100)] and TP not in consumer.processed.offsets


def test_a_gap_waits_until_faust_has_read_what_it_fetched_past_it() -> None:
    """A seek while 3455-3505 wait fetched and unread would be undone: Faust
    reads them after it, and drops the replay below its read offset."""
    consumer = Consumer(committed=1324, processed=[1331, 1332], read=3454, fetched=3506)
    healer = StallHealer(consumer, {TP.topic}, HEAL_AFTER_S, {}, consumer.processed)
    assert asyncio.run(healer.check(0.0)) == 0
    assert asyncio.run(healer.check(HEAL_AFTER_S)) == 0 and consumer.sought == []
    consumer._read_offset[TP] = 3505  # read to where aiokafka fetched
    assert asyncio.run(healer.check(HEAL_AFTER_S + 1)) == 1 and consumer.sought == [(TP, 1324)]


def test_a_gap_is_replayed_anyway_once_it_lasted_twice_as_long() -> None:
    """Under steady load aiokafka may always have fetched ahead of Faust."""
    consumer = Consumer(committed=1324, processed=[1331, 1332], read=3454, fetched=3506)
    assert _checks(consumer, 0.0, HEAL_AFTER_S, 2 * HEAL_AFTER_S - 0.1, 2 * HEAL_AFTER_S) == [0, 0, 0, 1]
    assert consumer.sought == [(TP, 1324)]


def test_a_tail_read_but_never_acknowledged_is_replayed() -> None:
    """Events 100-718 were fetched and dropped before reaching the agent:
    nothing later was acknowledged to show the gap."""
    consumer = Consumer(committed=100, processed=[], read=718)
    assert _checks(consumer, 0.0, HEAL_AFTER_S, 2 * HEAL_AFTER_S) == [0, 1, 0]
    assert consumer.sought == [(TP, 100)]  # once: sought, it waits for the fetcher again


def test_a_tail_in_flight_is_left_to_its_batch() -> None:
    consumer = Consumer(committed=100, processed=[], read=718)
    consumer._unacked_messages.append(SimpleNamespace(tp=TP, offset=100, acked=False))
    assert _checks(consumer, 0.0, HEAL_AFTER_S, 2 * HEAL_AFTER_S) == [0, 0, 0]
    assert consumer.sought == []


def test_a_tail_fetched_but_never_read_is_replayed_once_the_worker_is_idle() -> None:
    """faust-streaming #629 as the bench's two-worker phase showed it: aiokafka
    had handed over 109-263, Faust's fetch loop broke off the batch as the
    group's generation changed, and never read any of it (read offset None)."""
    consumer = Consumer(committed=109, processed=[], read=None, fetched=264)
    assert _checks(consumer, 0.0, HEAL_AFTER_S, 2 * HEAL_AFTER_S) == [0, 1, 0]
    assert consumer.sought == [(TP, 109)] and consumer.fetch._position == 109


def test_a_tail_fetched_and_dropped_after_faust_sought_is_replayed_as_soon() -> None:
    """The same after Faust's seek once recovered: its read offset at the
    committed offset, not unknown; nothing is in transit, so no longer wait."""
    consumer = Consumer(committed=109, processed=[], read=109, fetched=264)
    assert _checks(consumer, 0.0, HEAL_AFTER_S) == [0, 1]


def test_a_recovering_worker_is_left_to_faust() -> None:
    """Between a revocation and Faust's seek once recovered, Faust knows no
    committed offset (the log start stands in) while aiokafka already
    fetches from the broker's: no replay from the log's start."""
    consumer = Consumer(committed=None, processed=[], read=None, fetched=5000)
    assert _checks(consumer, 0.0, HEAL_AFTER_S, 3 * HEAL_AFTER_S) == [0, 0, 0]
    assert consumer.sought == []


def test_a_tail_that_replays_nothing_readable_is_replayed_once_a_generation() -> None:
    """Data to 99, then a transaction marker that aiokafka steps over: every
    replay from 100 ends at 101 again with nothing read."""
    consumer = Consumer(committed=100, processed=[], read=99, fetched=101)
    healer = StallHealer(consumer, {TP.topic}, HEAL_AFTER_S, {}, consumer.processed)
    healed = []
    for now in (0.0, 2 * HEAL_AFTER_S, 3 * HEAL_AFTER_S, 5 * HEAL_AFTER_S):
        healed.append(asyncio.run(healer.check(now)))
        consumer.fetch._position = 101
    assert healed == [0, 1, 0, 0] and consumer.sought == [(TP, 100)]
    consumer.app.consumer_generation_id = 8  # a rebalance since: once more
    assert [asyncio.run(healer.check(t)) for t in (6 * HEAL_AFTER_S, 8 * HEAL_AFTER_S)] == [0, 1]


def test_a_tail_fetched_but_not_yet_read_waits_while_the_worker_is_busy() -> None:
    """A fetched batch waits behind a full stream queue while the agent works
    through another partition's events, which are in flight."""
    consumer = Consumer(committed=109, processed=[], read=None, fetched=264)
    consumer._unacked_messages.append(SimpleNamespace(tp=TopicPartition(TP.topic, 0), offset=7, acked=False))
    assert _checks(consumer, 0.0, HEAL_AFTER_S, 2 * HEAL_AFTER_S) == [0, 0, 0]
    assert consumer.sought == []


def test_a_fenced_batch_left_unacknowledged_is_replayed() -> None:
    """``mark_unacknowledged`` flags a fenced batch's messages done without
    acknowledging them: if the partition stays here, they are read again."""
    consumer = Consumer(committed=100, processed=[], read=150)
    consumer._unacked_messages.append(SimpleNamespace(tp=TP, offset=100, acked=True))
    assert _checks(consumer, 0.0, HEAL_AFTER_S) == [0, 1]


def test_a_partition_processed_to_its_end_is_not_touched() -> None:
    for consumer in (Consumer(committed=719, processed=[], read=718), Consumer(committed=None, processed=[], read=None),
                     Consumer(committed=100, processed=[100, 101], read=101),
                     Consumer(committed=100, processed=[], read=100),  # sought to 100 after a rebalance: idle
                     Consumer(committed=100, processed=[], read=None, fetched=100),  # assigned, nothing fetched yet
                     Consumer(committed=100, processed=[100], read=100, fetched=101)):  # processed, commit due
        assert _checks(consumer, 0.0, HEAL_AFTER_S, 10 * HEAL_AFTER_S) == [0, 0, 0]
        assert consumer.sought == []


def test_a_stall_that_moves_on_starts_its_clock_again() -> None:
    consumer = Consumer(committed=100, processed=[], read=718)
    healer = StallHealer(consumer, {TP.topic}, HEAL_AFTER_S, {}, consumer.processed)
    assert asyncio.run(healer.check(0.0)) == 0
    consumer._committed_offset[TP] = 200  # a commit since: progress
    assert asyncio.run(healer.check(HEAL_AFTER_S)) == 0
    assert asyncio.run(healer.check(2 * HEAL_AFTER_S)) == 1 and consumer.sought == [(TP, 200)]
