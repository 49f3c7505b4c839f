"""The same finding reported twice (county and city systems) counts once."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from hub.domain.events import EventKind
from hub.domain.leads import Accepted, BusinessState
from hub.devtools.samples import write_city_double_report, write_scenario
from tests.conftest import TEST_PII_KEY
from tests.helpers import hub
from tests.scenario import EXPECTED_TICKED
from tests.test_rules import KEY, RULES, days, event

SAMPLING = (
    "cn.supervision.hub.SamplingFailureDetail",
    {"product": "酱油", "batch": "2026-04-11", "category": "调味品"},
)


def report(
    source_id: str, day: dt.date, batch: str = "2026-04-11", result: str = "0.35g/100mL", item: str = "氨基酸态氮"
) -> dict:
    e = event(source_id, day, kind=EventKind.SAMPLING_FAILURE, items=(item,))
    e["detail"] = (SAMPLING[0], {**SAMPLING[1], "batch": batch})
    e["findings"][0]["result"] = result
    return e


def _leads(*events: dict) -> dict[str, list[tuple[str, list[str]]]]:
    state = BusinessState()
    outcomes = [state.accept(e, RULES) for e in events]
    assert outcomes.count(Accepted.NEW) + outcomes.count(Accepted.NEAR_DUPLICATE) == len(events)
    return {
        lead["rules"][0]: [(e["source_record_id"], e["also_reported_as"]) for e in lead["evidence"]]
        for lead in state.lead_updates(KEY, RULES, 0)
        if lead["status"] == "OPEN"
    }


def test_a_county_and_a_city_report_of_one_sample_are_one_finding() -> None:
    assert _leads(report("GC-county", days(0)), report("SC-city", days(3))) == {}  # not a repeat offender


def test_two_findings_still_make_a_repeat_offender() -> None:
    leads = _leads(report("GC-1", days(0)), report("GC-2", days(30), batch="2026-05-20"))
    assert leads == {"REPEAT_OFFENDER": [("GC-1", []), ("GC-2", [])]}


def test_different_results_or_far_apart_reports_are_different_findings() -> None:
    assert "REPEAT_OFFENDER" in _leads(report("GC-1", days(0)), report("SC-1", days(2), result="0.30g/100mL"))
    assert "REPEAT_OFFENDER" in _leads(report("GC-1", days(0)), report("SC-1", days(RULES.near_duplicate_days + 1)))


@given(st.permutations(["GC-county", "SC-city", "XZ-province", "GC-later"]))
def test_the_merged_finding_is_the_same_whatever_the_arrival_order(order: list[str]) -> None:
    dates = {"GC-county": days(0), "SC-city": days(3), "XZ-province": days(5), "GC-later": days(40)}
    batches = {"GC-later": "2026-05-30"}
    events = [report(s, dates[s], batch=batches.get(s, "2026-04-11")) for s in order]
    assert _leads(*events) == {"REPEAT_OFFENDER": [("GC-county", ["SC-city", "XZ-province"]), ("GC-later", [])]}


def test_a_lead_whose_report_merges_into_an_earlier_twin_is_superseded_by_the_twins_lead() -> None:
    """The city's report of a clenbuterol finding arrives first and makes a lead; the county's
    report of the same sample, dated earlier, re-draws the window and takes the city's in."""
    state = BusinessState()
    state.accept(report("SC-city", days(30), item="克伦特罗"), RULES)
    [first] = state.lead_updates(KEY, RULES, 0)
    assert state.accept(report("GC-county", days(20), item="克伦特罗"), RULES) is Accepted.NEAR_DUPLICATE
    published = {lead["status"]: lead for lead in state.lead_updates(KEY, RULES, 1)}
    assert set(published) == {"OPEN", "SUPERSEDED"}
    assert published["SUPERSEDED"]["lead_id"] == first["lead_id"]
    assert published["SUPERSEDED"]["superseded_by"] == published["OPEN"]["lead_id"]
    assert [(e["source_record_id"], e["also_reported_as"]) for e in published["OPEN"]["evidence"]] == [
        ("GC-county", ["SC-city"])
    ]


def test_a_superseded_lead_with_no_successor_says_why() -> None:
    """Issue 32: a lead superseded with no lead taking over its evidence
    said nothing of why (superseded_by empty, no note)."""
    from hub.domain.leads import NO_LONGER_NOTE

    state = BusinessState()
    first, second = report("SC-a", days(0), batch="b1"), report("SC-b", days(40), batch="b2")
    for record in (first, second):
        state.accept(record, RULES)
    [lead] = state.lead_updates(KEY, RULES, 0)
    assert lead["rules"] == ["REPEAT_OFFENDER"]
    del state.facts[second["event_id"]]  # one finding left: no repeat, and no lead to take the other over
    [superseded] = state.lead_updates(KEY, RULES, 1)
    assert superseded["lead_id"] == lead["lead_id"] and superseded["status"] == "SUPERSEDED"
    assert superseded["superseded_by"] is None and superseded["history"][-1]["note"] == NO_LONGER_NOTE


def test_a_replayed_merged_report_is_an_exact_duplicate() -> None:
    state = BusinessState()
    state.accept(report("GC-county", days(0)), RULES)
    assert state.accept(report("SC-city", days(3)), RULES) is Accepted.NEAR_DUPLICATE
    assert state.accept(report("SC-city", days(3)), RULES) is Accepted.DUPLICATE
    assert BusinessState.from_bytes(state.to_bytes()) == state


@pytest.mark.broker
@pytest.mark.parametrize("city_first", [False, True])
def test_county_and_city_double_reports_on_the_broker(tmp_path: Path, city_first: bool) -> None:
    """Each order on its own private embedded broker (connector cursors would skip files seen before)."""
    files = write_scenario(tmp_path / "data")
    city = write_city_double_report(tmp_path / "data")
    sources = [f"--source={kind}={path}" for kind, path in files.items()]
    county = sources.pop(0)
    assert county.startswith("--source=samr.sampling=")
    sources = (
        [f"--source=samr.sampling={city}", county] if city_first else [county, f"--source=samr.sampling={city}"]
    ) + sources
    out = tmp_path / "leads.jsonl"
    result = hub("backfill", *sources, "--leads-out", str(out), cwd=tmp_path, env={"HUB_PII_KEY": TEST_PII_KEY})
    assert result.returncode == 0, result.stderr
    # Two samples, each naming a seller and a producer: four reports merged, once each (not again
    # when the records, merged under their provisional keys, resolve to their businesses).
    assert "4 near-duplicate reports merged" in result.stdout, result.stdout
    leads = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    open_leads = [lead for lead in leads if lead["status"] == "OPEN"]
    # The same leads as with the county's report alone: the city's report is no second finding,
    # so it makes no repeat_offender lead, nor any other, on its own.
    assert {
        (lead["business_key"], lead["rules"][0]): {e["event_id"] for e in lead["evidence"]} for lead in open_leads
    } == EXPECTED_TICKED
    city = {"GC26410500410230101": ["SC2026-AY-0031"], "GC26410500410230155": ["SC2026-AY-0032"]}
    sampled = [
        e
        for lead in open_leads
        for e in lead["evidence"]
        if e["kind"] == "SAMPLING_FAILURE" and e["source_record_id"] in city
    ]
    assert sampled and all(e["also_reported_as"] == city[e["source_record_id"]] for e in sampled)


@given(st.permutations(["GC-a", "SC-b", "XZ-c", "GC-d"]))
def test_a_chain_of_reports_merges_alike_whatever_the_arrival_order(order: list[str]) -> None:
    """Found by the chaos test: reports 10 days apart (days 0, 10, 20) are each
    within near_duplicate_days of the next but the first and last are not;
    merged pair by pair as they came, the middle one joined whichever came
    first, and the leads depended on arrival order."""
    step = RULES.near_duplicate_days - 4
    dates = {"GC-a": days(0), "SC-b": days(step), "XZ-c": days(2 * step), "GC-d": days(60)}
    batches = {"GC-d": "2026-06-30"}
    events = [report(s, dates[s], batch=batches.get(s, "2026-04-11")) for s in order]
    assert _leads(*events) == {"REPEAT_OFFENDER": [("GC-a", ["SC-b", "XZ-c"]), ("GC-d", [])]}
