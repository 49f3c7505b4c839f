"""The strict commit rule on Faust's bookkeeping, without a broker."""
from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from faust.types import TP as TopicPartition

from hub.edge.faust_patches import Processed, strict_commits

TP = TopicPartition("hub.events.police", 0)


def _consumer(committed: int | None, processed: list[int], log_start: dict[Any, int],
              faust_acked: list[int] | None = None) -> Any:
    """``processed``: what the worker finished; ``faust_acked``: what Faust's
    own acknowledgements hold (the same, unless given)."""
    acked = list(processed if faust_acked is None else faust_acked)
    consumer = SimpleNamespace(_acked=defaultdict(list, {TP: acked}), _acked_index=defaultdict(set, {TP: set(acked)}),
                               _committed_offset={TP: committed}, processed=Processed())
    _finish(consumer, processed)
    strict_commits(consumer, log_start, consumer.processed)
    return consumer


def _finish(consumer: Any, offsets: list[int]) -> None:
    consumer.processed.add(SimpleNamespace(message=SimpleNamespace(tp=TP, offset=o)) for o in offsets)


def test_a_partition_never_committed_commits_only_from_the_start_of_its_log() -> None:
    """Faust's recovery race dropped offsets 0-128: 129-135 were processed, and
    must not be committed over the events that were not."""
    consumer = _consumer(None, list(range(129, 136)), {TP: 0})
    assert consumer._new_offset(TP) is None
    _finish(consumer, list(range(0, 129)))
    assert consumer._new_offset(TP) == 136 and not consumer.processed.offsets[TP]


def test_nothing_is_committed_while_the_start_of_the_log_is_unknown() -> None:
    assert _consumer(None, [0, 1, 2], {})._new_offset(TP) is None


def test_a_log_that_starts_later_commits_from_there() -> None:
    """Retention deleted the partition's first offsets on Kafka."""
    assert _consumer(None, [500, 501], {TP: 500})._new_offset(TP) == 502


def test_a_committed_partition_commits_the_run_from_its_committed_offset_only() -> None:
    consumer = _consumer(40, [40, 41, 43, 44], {TP: 0})
    assert consumer._new_offset(TP) == 42
    assert consumer._new_offset(TP) is None  # 42 was neither processed nor dead-lettered
    consumer._committed_offset[TP] = 42
    _finish(consumer, [42])
    assert consumer._new_offset(TP) == 45


def test_an_event_faust_acknowledged_without_the_worker_processing_it_is_not_committed() -> None:
    """Faust's stream acknowledges an event it skips as fetched in an earlier
    generation; the same offset, fetched again, is still on its way."""
    consumer = _consumer(100, [100, 101], {TP: 0}, faust_acked=[100, 101, 102])
    assert consumer._new_offset(TP) == 102  # not 103: 102 was only skipped
    assert consumer._acked[TP] == [] and consumer._acked_index[TP] == set()  # Faust's own list does not grow
    consumer._committed_offset[TP] = 102
    assert consumer._new_offset(TP) is None
    _finish(consumer, [102])
    assert consumer._new_offset(TP) == 103


def test_a_revoked_partition_is_forgotten() -> None:
    consumer = _consumer(40, [40, 41], {TP: 0})
    consumer.processed.forget([TP])
    assert consumer._new_offset(TP) is None
