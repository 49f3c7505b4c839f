"""The strict commit rule on Faust's bookkeeping, without a broker."""
from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from hub.faust_patches import strict_commits

TP = ("hub.events.police", 0)


def _consumer(committed: int | None, acked: list[int], log_start: dict[Any, int]) -> Any:
    consumer = SimpleNamespace(_acked=defaultdict(list, {TP: list(acked)}),
                               _acked_index=defaultdict(set, {TP: set(acked)}),
                               _committed_offset={TP: committed})
    strict_commits(consumer, log_start)
    return consumer


def test_a_partition_never_committed_commits_only_from_the_start_of_its_log() -> None:
    """Faust's recovery race dropped offsets 0-128: 129-135 were processed, and
    must not be committed over the events that were not."""
    consumer = _consumer(None, list(range(129, 136)), {TP: 0})
    assert consumer._new_offset(TP) is None
    consumer._acked[TP] += list(range(0, 129))
    assert consumer._new_offset(TP) == 136 and consumer._acked[TP] == []


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
    consumer._acked[TP].append(42)
    assert consumer._new_offset(TP) == 45
