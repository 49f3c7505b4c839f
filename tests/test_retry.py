"""Retrying what the infrastructure failed (no broker)."""
from __future__ import annotations

import asyncio

import pytest

from hub.edge.retry import Backoff, GaveUp, retried


def _run(work, backoff: Backoff) -> tuple[object, list[float], list[int]]:
    slept: list[float] = []
    heard: list[int] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    result = asyncio.run(retried(work, backoff, lambda n, exc: heard.append(n), sleep))
    return result, slept, heard


def test_work_that_recovers_is_retried_with_growing_waits() -> None:
    calls = []

    async def work() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise ConnectionError("registry down")
        return "done"

    result, slept, heard = _run(work, Backoff(attempts=5, first_s=0.5, max_s=1.5))
    assert result == "done" and len(calls) == 4
    assert slept == [0.5, 1.0, 1.5] and heard == [1, 2, 3]


def test_work_that_keeps_failing_gives_up_after_the_attempts() -> None:
    async def work() -> None:
        raise ConnectionError("registry down")

    with pytest.raises(GaveUp, match="3 times in a row; last: ConnectionError"):
        _run(work, Backoff(attempts=3, first_s=0.1, max_s=1))


def test_cancellation_is_never_retried() -> None:
    calls = []

    async def work() -> None:
        calls.append(1)
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        _run(work, Backoff(attempts=3, first_s=0.1, max_s=1))
    assert calls == [1]


def test_a_failure_is_shown_without_the_data_it_quotes() -> None:
    """What a retried step's failure logs, and the worker's last word when it
    gives up: the hub's and the Kafka client's messages, which say what
    failed; for anything else (a bug quoting the record it choked on) only
    its class and where it was raised."""
    from confluent_kafka import KafkaError, KafkaException

    from hub.flow.codec import EncodeError
    from hub.edge.retry import shown

    secret = "张三 110101199003071234"
    assert shown(KeyError(secret)).startswith("KeyError") and "张三" not in shown(KeyError(secret))
    assert "110101199003071234" not in shown(ValueError(f"invalid value {secret!r}"))
    assert shown(EncodeError("a Lead record does not fit its schema at evidence.0.finding")).endswith(
        "evidence.0.finding"
    )
    assert "_MSG_TIMED_OUT" in shown(KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT)))

    async def work() -> None:
        raise KeyError(secret)

    with pytest.raises(GaveUp) as gave_up:
        _run(work, Backoff(attempts=2, first_s=0.1, max_s=1))
    assert "KeyError" in str(gave_up.value) and "张三" not in str(gave_up.value)
    assert gave_up.value.__cause__ is None and gave_up.value.__suppress_context__
