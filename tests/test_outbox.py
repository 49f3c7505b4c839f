"""No lead on the topics that its business's state does not know, and none
lost, wherever a worker dies (no broker): the state that records a lead is
written before the lead is published, and the next worker to load a state
whose writer may have died before publishing publishes what it owed."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from hub.domain.events import event_key
from hub.flow import Flow
from hub.testing.bus import RECEIVED, Bus, Delivered
from tests.poison import critical_event, encoded, spoiled

TOPIC = "hub.events.samr"


def _worker(bus: Bus) -> Flow:
    """Another incarnation of a worker, on the same stored states."""
    return bus.restart()


def _batch(bus: Bus, flow: Flow, events: list[dict[str, Any]], write: bool = True) -> Delivered:
    """A batch whose states are written (``write``) but whose leads never reach the topics."""
    records = [bus.record(TOPIC, event_key(e).encode(), encoded(bus.settings, e), i) for i, e in enumerate(events)]
    effects = flow.process(records)
    if write:
        for state in effects.states:
            bus.businesses[state.key] = state.value
    return Delivered(effects)


def _repeat_offender(delivered: Delivered) -> dict[str, str]:
    return {lead["lead_id"]: lead["status"] for lead in delivered.leads if lead["rules"] == ["REPEAT_OFFENDER"]}


def _penalties(tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    good = critical_event(tmp_path, RECEIVED)
    first = spoiled(good, "o1", occurred_on=dt.date(2026, 10, 1))
    second = spoiled(good, "o2", occurred_on=dt.date(2026, 10, 5))
    earlier = spoiled(good, "o0", occurred_on=dt.date(2026, 9, 20))
    for event in (first, second, earlier):
        event["summary"] = good["summary"]
    return first, second, earlier


def test_a_worker_that_died_before_publishing_leaves_its_leads_to_the_next(tmp_path: Path) -> None:
    bus = Bus()
    first, second, _ = _penalties(tmp_path)
    died = _batch(bus, bus.flow, [first, second])  # states written, then the worker died: nothing published
    [lead_id] = _repeat_offender(died)
    replay = _batch(bus, _worker(bus), [first, second])  # the same events again, all duplicates
    assert _repeat_offender(replay) == {lead_id: "OPEN"}
    assert {lead["lead_id"] for lead in replay.leads} == {lead["lead_id"] for lead in died.leads}


def test_a_worker_publishes_what_it_wrote_once(tmp_path: Path) -> None:
    bus = Bus()
    first, second, _ = _penalties(tmp_path)
    _batch(bus, bus.flow, [first, second])
    assert _batch(bus, bus.flow, [first, second]).leads == []  # its own write: published already


def test_a_replay_that_draws_another_window_supersedes_what_was_published(tmp_path: Path) -> None:
    """The lead published before the crash is in the state, so when the replay
    also brings an earlier finding, the old window's lead is superseded
    instead of staying open beside the new one."""
    bus = Bus()
    first, second, earlier = _penalties(tmp_path)
    published = _repeat_offender(_batch(bus, bus.flow, [first, second]))
    [old] = published
    replay = _batch(bus, _worker(bus), [first, second, earlier])
    statuses = _repeat_offender(replay)
    assert statuses.pop(old) == "SUPERSEDED" and list(statuses.values()) == ["OPEN"]


def test_leads_owed_by_a_state_no_event_touches_again_are_published_by_the_next_worker(tmp_path: Path) -> None:
    """Found by the chaos test: a worker died between writing a placeholder's
    state (its records moved off by entity resolution) and publishing the
    withdrawal of its lead; no record ever came for that business again, so
    the lead stayed OPEN. The next incarnation publishes every lead owed by
    the states of its partitions on its first batch, whatever the batch holds."""
    bus = Bus()
    first, second, _ = _penalties(tmp_path)
    died = _batch(bus, bus.flow, [first, second])  # written, never published
    other = spoiled(critical_event(tmp_path, RECEIVED), "elsewhere", occurred_on=dt.date(2026, 10, 2))
    other["business"] = dict(other["business"], business_id="91410502MA3XK1Q2Y8")
    assert event_key(other) != event_key(first)
    next_worker = _worker(bus)
    effects = _batch(bus, next_worker, [other])
    assert {lead["lead_id"] for lead in died.leads} <= {lead["lead_id"] for lead in effects.leads}
    # rewritten by this incarnation: owed once, not again
    assert event_key(first).encode() in effects.states
    next_worker.assign(frozenset(range(4)))  # a rebalance that gives it the same partitions
    assert _batch(bus, next_worker, []).leads == []


def test_a_batch_the_edge_retries_still_republishes_what_the_states_owe(tmp_path: Path) -> None:
    """The first try's sends failed and nothing was written: the retry, the
    same batch again, must carry the owed leads too (they are checked
    against the store at each batch, not handed out once)."""
    bus = Bus()
    first, second, _ = _penalties(tmp_path)
    owed = {lead["lead_id"] for lead in _batch(bus, bus.flow, [first, second]).leads}
    other = spoiled(critical_event(tmp_path, RECEIVED), "elsewhere", occurred_on=dt.date(2026, 10, 2))
    other["business"] = dict(other["business"], business_id="91410502MA3XK1Q2Y8")
    next_worker = _worker(bus)
    failed = _batch(bus, next_worker, [other], write=False)
    retried = _batch(bus, next_worker, [other])
    assert owed <= {lead["lead_id"] for lead in failed.leads}
    assert owed <= {lead["lead_id"] for lead in retried.leads}
    assert _batch(bus, next_worker, []).leads == []  # written now: owed no more
