"""Retrying what the infrastructure failed, with exponential backoff.

A record's own faults are dead letters (``hub.flow``); a failure of the
registry, the broker or a state write is nobody's record's fault, so the work
is tried again as it was, and nothing is acknowledged meanwhile. After
``attempts`` failures in a row the caller gives up, and a worker then exits
non-zero so that its supervisor restarts it and the batch is replayed.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TypeVar
from collections.abc import Awaitable, Callable

from hub.domain.pii import describe

T = TypeVar("T")


class GaveUp(RuntimeError):
    """The same work failed ``attempts`` times in a row."""


def shown(exc: BaseException) -> str:
    """A failure for a log line. The hub's own exceptions and the Kafka
    client's say what failed in words written for it (an ``EncodeError``
    names a field, never its value); any other (a bug's ``KeyError``, a
    library's ``ValueError``) may quote the record it choked on, so only its
    class and where it was raised are shown."""
    module = type(exc).__module__
    if module.startswith(("hub.", "confluent_kafka", "cimpl", "aiokafka")):
        return f"{type(exc).__name__}: {exc}"
    return describe(exc)


@dataclass(frozen=True)
class Backoff:
    attempts: int
    first_s: float
    max_s: float

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row."""
        return min(self.max_s, self.first_s * 2.0 ** (failures - 1))


async def retried(work: Callable[[], Awaitable[T]], backoff: Backoff,
                  on_failure: Callable[[int, Exception], None],
                  sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> T:
    """``work()``'s result, calling it again after each failure; ``on_failure``
    hears of each (count in a row, exception). Cancellation is never retried."""
    failures = 0
    while True:
        try:
            return await work()
        except Exception as exc:  # CancelledError is a BaseException: it passes
            failures += 1
            on_failure(failures, exc)
            if failures >= backoff.attempts:
                raise GaveUp(f"failed {failures} times in a row; last: {shown(exc)}") from None
            await sleep(backoff.delay(failures))
