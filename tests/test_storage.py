"""The stored states' versions and their migrations: states written by the
release before versions were kept (a real changelog's worth, the demo
scenario's, in tests/data/states_v1.json) and hand-made older layouts read
into the same states; what a newer release adds is ignored."""
from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from hub.domain import storage
from hub.domain.leads import BusinessState
from hub.domain.lifecycle import LeadStatus
from hub.domain.resolution import ResolverState
from hub.settings import RuleSettings

V1 = json.loads((Path(__file__).parent / "data" / "states_v1.json").read_text())
# Written by the release before follow-through (version 2): the demo scenario
# with an acknowledgement and a tick that escalated leads.
V2 = json.loads((Path(__file__).parent / "data" / "states_v2.json").read_text())


@pytest.mark.parametrize("key", sorted(V2["businesses"]))
def test_every_business_state_of_version_2_reads_with_no_follow_up_and_writes_the_current_version(key: str) -> None:
    written = V2["businesses"][key].encode()
    old = json.loads(written)
    assert old["v"] == 2
    state = BusinessState.from_bytes(written)
    assert BusinessState.from_bytes(state.to_bytes()) == state
    assert json.loads(state.to_bytes())["v"] == storage.BUSINESS_STATE_VERSION
    assert [f.event_id for f in state.facts.values()] == [f[0] for f in old["f"]]
    assert all((f.outcome, f.due, f.delay_days) == ("", 0, 0) for f in state.facts.values())
    assert {k: (m.status, m.history, m.escalated) for k, m in state.leads.items()} == \
        {k: (m[5], [tuple(h) for h in m[7]], tuple(m[8])) for k, m in old["l"].items()}
    assert all(m.links == () and not m.oversight for m in state.leads.values()) and state.flagged == set()


# Written by the release before the new signals (version 3): the demo
# scenario with an acknowledgement and a tick 20 days on (rectifications overdue).
V3 = json.loads((Path(__file__).parent / "data" / "states_v3.json").read_text())


@pytest.mark.parametrize("key", sorted(V3["businesses"]))
def test_every_business_state_of_version_3_reads_with_no_signals_and_writes_the_current_version(key: str) -> None:
    written = V3["businesses"][key].encode()
    old = json.loads(written)
    assert old["v"] == 3
    state = BusinessState.from_bytes(written)
    assert BusinessState.from_bytes(state.to_bytes()) == state
    assert json.loads(state.to_bytes())["v"] == storage.BUSINESS_STATE_VERSION
    assert [(f.event_id, f.outcome, f.due) for f in state.facts.values()] == [(f[0], f[14], f[15]) for f in old["f"]]
    assert all((f.party, f.party_name, f.party_region) == ("", "", "") for f in state.facts.values())
    assert state.credit is None and state.serial == state.representatives == set() and state.member_told == ""
    assert state.flagged == set(old["x"]) and set(state.leads) == set(old["l"])
    assert state.lead_updates(key, RuleSettings(), 0) == []  # no lead changes with the upgrade


# Written by the release before lead versions (version 4): the demo scenario
# and a tick 20 days on.
V4 = json.loads((Path(__file__).parent / "data" / "states_v4.json").read_text())


@pytest.mark.parametrize("key", sorted(V4["businesses"]))
def test_every_business_state_of_version_4_reads_with_unversioned_leads_and_writes_the_current_version(
        key: str) -> None:
    written = V4["businesses"][key].encode()
    old = json.loads(written)
    assert old["v"] == 4
    state = BusinessState.from_bytes(written)
    assert BusinessState.from_bytes(state.to_bytes()) == state
    assert json.loads(state.to_bytes())["v"] == storage.BUSINESS_STATE_VERSION == 6
    assert {k: (m.status, m.links, m.version) for k, m in state.leads.items()} == \
        {k: (m[5], tuple(tuple(x) for x in m[13]), 0) for k, m in old["l"].items()}
    assert state.lead_updates(key, RuleSettings(), 0) == []  # no lead changes with the upgrade
    for mark in state.leads.values():  # the first versioned record: the worker's clock
        assert mark.next_version(1_800_000_000_000) == 1_800_000_000_000
        assert mark.next_version(1_700_000_000_000) == 1_800_000_000_001  # a clock behind: still above


# Written by the release before records by name (version 5): the demo
# scenario and a tick 20 days on.
V5 = json.loads((Path(__file__).parent / "data" / "states_v5.json").read_text())


@pytest.mark.parametrize("key", sorted(V5["businesses"]))
def test_every_business_state_of_version_5_reads_and_writes_the_same_layout(key: str) -> None:
    """Version 6 reads facts and marks by name (msgspec records) and writes
    them as version 5 did, field for field: a release of either version
    reads the other's states."""
    written = V5["businesses"][key].encode()
    old = json.loads(written)
    assert old["v"] == 5
    state = BusinessState.from_bytes(written)
    again = json.loads(state.to_bytes())
    assert again.pop("v") == storage.BUSINESS_STATE_VERSION == 6
    old.pop("v")
    assert again == old
    assert BusinessState.from_bytes(state.to_bytes()) == state
    assert state.lead_updates(key, RuleSettings(), 0) == []  # no lead changes with the upgrade


def test_a_stored_state_that_is_not_a_record_fails_to_load() -> None:
    """A state of a known version whose fields do not decode is refused (the
    flow makes its records dead letters), never half-read."""
    written = json.loads(V5["businesses"][sorted(V5["businesses"])[0]])
    written["f"] = [["too", "short"]]
    with pytest.raises(msgspec.ValidationError):
        BusinessState.from_bytes(json.dumps(written).encode())


@pytest.mark.parametrize("key", sorted(V1["businesses"]))
def test_every_business_state_of_the_previous_release_reads_and_writes_the_current_version(key: str) -> None:
    written = V1["businesses"][key].encode()
    state = BusinessState.from_bytes(written)
    again = state.to_bytes()
    assert json.loads(again)["v"] == storage.BUSINESS_STATE_VERSION
    assert BusinessState.from_bytes(again) == state
    old = json.loads(written)
    assert [f.event_id for f in state.facts.values()] == [f[0] for f in old["f"]]
    assert {k: (m.status, m.history[-1][1] if m.history else None) for k, m in state.leads.items()} == \
        {k: (m[5], m[7][-1][1] if m[7] else None) for k, m in old["l"].items()}
    assert state.writer == old["w"] and state.outbox == set(old["o"])


@pytest.mark.parametrize("key", sorted(V1["resolver"]))
def test_every_resolver_state_of_the_previous_release_reads(key: str) -> None:
    state = ResolverState.from_bytes(V1["resolver"][key].encode())
    assert json.loads(state.to_bytes())["v"] == storage.RESOLVER_STATE_VERSION
    assert ResolverState.from_bytes(state.to_bytes()) == state


def _v1(facts: list[list[object]], leads: dict[str, list[object]]) -> bytes:
    return json.dumps({"n": "x", "b": None, "r": "410502", "p": None, "f": facts, "l": leads}).encode()


def test_the_oldest_layouts_read_with_their_defaults() -> None:
    """Facts of 9 fields, lead marks of 6 (before the lifecycle), no persons, outbox or writer."""
    state = BusinessState.from_bytes(_v1(
        [["test:m1", "SAMR", "INSPECTION", 739311, True, "", "finding m1", "m1", 5]],
        {"lead-1": [1000, "fp", "REPEAT_OFFENDER", 739311, ["test:m1"], "OPEN"]}))
    fact = state.facts["test:m1"]
    assert (fact.category, fact.identity, fact.also_reported, fact.resolution, fact.moved_to) == ("", "", (), "", "")
    mark = state.leads["lead-1"]
    assert (mark.status, mark.opened_ms, mark.history, mark.reopened, mark.escalated) == \
        (LeadStatus.OPEN, 1000, [], 0, ())
    assert (state.persons, state.outbox, state.writer, state.registered) == (set(), set(), "", None)


def test_merged_reports_kept_without_their_dates_take_the_findings_date() -> None:
    fact = ["test:a", "SAMR", "SAMPLING", 739311, True, "", "f", "a", 5, "肉制品", "id", [["test:b", "b"]]]
    [read] = BusinessState.from_bytes(_v1([fact], {})).facts.values()
    assert read.also_reported == (("test:b", "b", 739311),)


def test_the_retired_announced_escalation_is_read_past_and_written_empty() -> None:
    """Slot 12 of a mark held the escalation the last record carried; every
    record now carries the latest one raised (``escalated``), so the slot is
    read past and written as None, and releases before and after read it."""
    mark = [1000, "fp", "REPEAT_OFFENDER", 739311, [], "CLOSED", 1000, [[1000, "OPEN", None, None]],
            ["ACKNOWLEDGE_OVERDUE"], [], 0, 2000, "ACKNOWLEDGE_OVERDUE", [], True]
    read = BusinessState.from_bytes(_v1([], {"lead-1": mark})).leads["lead-1"]
    assert read.escalated == ("ACKNOWLEDGE_OVERDUE",)
    written = storage.mark_record(read)
    assert written.retired_escalation is None and len(msgspec.json.decode(msgspec.json.encode(written))) == 16


def test_what_a_newer_release_adds_is_ignored() -> None:
    state = BusinessState.from_bytes(V1["businesses"][sorted(V1["businesses"])[0]].encode())
    raw = json.loads(state.to_bytes())
    raw["v"] += 1
    raw["new key"] = "of a newer release"
    raw["f"] = [[*f, "a new field"] for f in raw["f"]]
    raw["l"] = {k: [*m, "a new field"] for k, m in raw["l"].items()}
    assert BusinessState.from_bytes(json.dumps(raw).encode()) == state
