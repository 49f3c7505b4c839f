"""A worker's periodic jobs (clock tick, audit head and check, lag, commit
healing) outlive a failure: in a bare Faust timer one exception crashes the
app, so a tick the broker did not take for a moment would take the worker
down. Without a broker: the timer's body, as the worker registers it."""
from __future__ import annotations

import asyncio

import pytest

from hub.edge.metrics import Metrics
from hub.edge.worker import surviving


def test_a_failing_run_is_logged_counted_and_the_next_one_runs(caplog) -> None:
    metrics, runs = Metrics(), []

    async def clock_tick() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise ConnectionError("the broker did not take the tick: 13912345678")

    body = surviving(clock_tick, metrics, 10.0)
    for _ in range(3):
        asyncio.run(body())
    assert runs == [0, 1, 2]
    assert metrics.worker.timer_failures.labels("clock_tick")._value.get() == 2
    warnings = [r.getMessage() for r in caplog.records if r.name == "hub.edge.worker"]
    assert len(warnings) == 2 and all(w.startswith("clock_tick failed (ConnectionError") for w in warnings)
    assert not any("13912345678" in w for w in warnings)  # the exception's message is never logged
    assert body.__name__ == "clock_tick"  # Faust names a timer after its function


def test_cancelling_a_timer_still_stops_it() -> None:
    async def audit_head() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(surviving(audit_head, Metrics(), 30.0)())
