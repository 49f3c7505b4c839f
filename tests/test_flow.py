"""Routing, feedback, outcomes, escalation and reopening through the real
flow on the in-memory bus (no broker): the demo scenario's leads reach the
teams' topics with each team's clearance, teams' feedback changes them
everywhere and goes back to the agencies whose evidence raised them, ticks
escalate overdue leads to the parent jurisdiction, and new adverse evidence
after closure reopens a lead. ``test_lead_lifecycle`` checks the same
wiring end to end on the broker (CLI, board, metrics)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hub.domain.lifecycle import ACTIVE
from hub.edge.feedback import feedback
from hub.flow.topics import FEEDBACK_TOPIC, LEADS_TOPIC, feedback_topic
from hub.devtools.samples import FUSHUN, LIQUOR, write_recheck_failure, write_scenario
from hub.testing.bus import Bus
from tests.scenario import scenario_bus

NOW = dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC)
POLICE_TEAM, COUNTY_TEAM = "hub.team.police-jinzhong-food-crime", "hub.team.samr-taigu"
CASE_NO = "A1407032026080031"  # the liquor maker's police case: police details


@pytest.fixture
def bus(tmp_path: Path) -> Bus:
    return scenario_bus(tmp_path / "data", NOW)


def _lead(bus: Bus, uscc: str, rule: str) -> dict:
    [lead] = [entry for entry in bus.leads.values() if entry["business_id"] == uscc and entry["rules"] == [rule]]
    return lead


def _copies(bus: Bus, lead_id: str) -> dict[str, dict]:
    return {topic: leads[lead_id] for topic, leads in bus.topics.items() if lead_id in leads}


def test_a_criminal_referral_reaches_the_police_in_full_and_the_county_without_police_details(bus: Bus) -> None:
    lead = _lead(bus, LIQUOR.uscc, "CRIMINAL_REFERRAL")
    copies = _copies(bus, lead["lead_id"])
    assert set(copies) == {LEADS_TOPIC, POLICE_TEAM, COUNTY_TEAM, "hub.team.samr-jinzhong",
                           "hub.team.police-shanxi-food-crime"}
    [police] = copies[POLICE_TEAM]["evidence"]
    assert police["source_record_id"] == CASE_NO and "伪劣产品" in police["finding"]
    [county] = copies[COUNTY_TEAM]["evidence"]
    assert county == {**police, "event_id": None, "source_record_id": None, "finding": None}
    assert copies[COUNTY_TEAM]["withheld"] == ["POLICE evidence event_id", "POLICE evidence finding",
                                               "POLICE evidence source_record_id"]
    # People's tokens only to a team that sees every detail (its CLI scrubs notes with them)
    assert {topic for topic, c in copies.items() if c["person_refs"]} == \
        {LEADS_TOPIC, *(topic for topic, c in copies.items() if not c.get("withheld", True))}
    assert copies[POLICE_TEAM]["person_refs"] == lead["person_refs"] != [] and copies[COUNTY_TEAM]["person_refs"] == []


def test_feedback_changes_the_lead_everywhere_and_goes_back_to_the_agencies(bus: Bus) -> None:
    lead = _lead(bus, LIQUOR.uscc, "CRIMINAL_REFERRAL")
    bus.publish_feedback(lead, "ACKNOWLEDGED", "police-jinzhong-food-crime", at=NOW)
    bus.publish_feedback(lead, "CLOSED", "police-jinzhong-food-crime", "已立案侦查，移送审查起诉",
                         at=NOW + dt.timedelta(hours=3))
    bus.run()
    copies = _copies(bus, lead["lead_id"])
    assert {c["status"] for c in copies.values()} == {"CLOSED"}
    assert [(h["status"], h["team"]) for h in copies[LEADS_TOPIC]["history"]] == [
        ("OPEN", None), ("ACKNOWLEDGED", "police-jinzhong-food-crime"), ("CLOSED", "police-jinzhong-food-crime")]
    assert copies[COUNTY_TEAM]["history"][-1]["note"] is None  # the police's note is not the county's to read
    assert [(t, o["action"]) for t, o in bus.outcomes] == [("hub.outcomes.police", "ACKNOWLEDGED"),
                                                           ("hub.outcomes.police", "CLOSED")]
    critical = {"severity": "CRITICAL"}
    assert bus.metrics.worker.time_to_acknowledge.labels(**critical)._sum.get() == 0
    assert bus.metrics.worker.time_to_close.labels(**critical)._sum.get() == 3 * 3600


def test_feedback_the_lead_cannot_take_is_a_dead_letter_with_the_reason(bus: Bus) -> None:
    lead = _lead(bus, LIQUOR.uscc, "CRIMINAL_REFERRAL")
    bus.publish_feedback(lead, "CLOSED", "police-jinzhong-food-crime", None, at=NOW)  # no outcome given
    bus.publish_feedback({**lead, "lead_id": "lead-00000000000000000000"}, "ACKNOWLEDGED",
                         "police-jinzhong-food-crime", at=NOW)
    bus.publish_feedback(lead, "CLOSED", "police-jinzhong-food-crime", "结案", at=NOW)
    bus.publish_feedback(lead, "ACKNOWLEDGED", "police-jinzhong-food-crime", at=NOW + dt.timedelta(hours=1))
    bus.run()
    assert [d["reason_code"] for d in bus.dead_letters] == ["missing_note", "unknown_lead", "invalid_transition"]
    assert bus.leads[lead["lead_id"]]["status"] == "CLOSED"


def test_overdue_leads_escalate_to_the_parent_and_closed_leads_fall_due_for_recheck(bus: Bus) -> None:
    cross = _lead(bus, FUSHUN.uscc, "CROSS_AGENCY")
    assert "hub.team.police-shanxi-food-crime" not in _copies(bus, cross["lead_id"])
    bus.publish_ticks(NOW + dt.timedelta(hours=49))  # HIGH: acknowledge within 48 h
    bus.run()
    copies = _copies(bus, cross["lead_id"])
    assert "hub.team.police-shanxi-food-crime" in copies
    assert {c["escalation"] for c in copies.values()} == {"ACKNOWLEDGE_OVERDUE"}
    bus.publish_ticks(NOW + dt.timedelta(hours=50))  # escalated once, not at every tick
    bus.run()
    assert bus.metrics.worker.escalations.labels("ACKNOWLEDGE_OVERDUE")._value.get() == \
        sum(lead["escalation"] == "ACKNOWLEDGE_OVERDUE" for lead in bus.leads.values())

    liquor = _lead(bus, LIQUOR.uscc, "CRIMINAL_REFERRAL")
    bus.publish_feedback(liquor, "CLOSED", "police-jinzhong-food-crime", "结案", at=NOW + dt.timedelta(hours=51))
    bus.run()  # the team's topic and the clock's are not ordered with each other
    bus.publish_ticks(NOW + dt.timedelta(days=33))  # re-check 30 days after closure
    bus.run()
    due = bus.leads[liquor["lead_id"]]
    assert due["status"] == "CLOSED" and due["escalation"] == "RECHECK_DUE"
    assert due["history"][-1]["status"] == "ESCALATED_RECHECK_DUE"


def test_a_new_failure_after_closure_reopens_the_lead_with_the_evidence_chained(bus: Bus, tmp_path: Path) -> None:
    lead = _lead(bus, LIQUOR.uscc, "CRIMINAL_REFERRAL")
    bus.publish_feedback(lead, "CLOSED", "police-jinzhong-food-crime", "结案", at=NOW)
    bus.run()
    bus.publish_file("samr.inspection", write_recheck_failure(tmp_path / "recheck"))
    bus.run()
    copies = _copies(bus, lead["lead_id"])
    assert all(c["status"] == "OPEN" for c in copies.values())
    full = copies[LEADS_TOPIC]
    assert full["reopened"] == 1 and full["history"][-1]["status"] == "REOPENED"
    assert [(e["source_record_id"], e["chained"]) for e in full["evidence"]] == [(CASE_NO, False),
                                                                                 ("JC2026-1120-003", True)]
    county = copies[COUNTY_TEAM]["evidence"]
    assert county[1]["source_record_id"] == "JC2026-1120-003" and county[0]["source_record_id"] is None
    assert bus.metrics.worker.leads_reopened._value.get() == 1


def test_the_leads_do_not_depend_on_how_the_partitions_interleave(tmp_path: Path) -> None:
    """Events, resolution's traffic and feedback in many interleavings: the same open leads."""
    import random

    results = []
    for seed in range(4):
        bus = Bus(clock=lambda: NOW.timestamp())
        for connector, path in write_scenario(tmp_path / f"data{seed}").items():
            bus.publish_file(connector, path)
        bus.run(random.Random(seed).randrange)
        results.append({(lead["business_key"], lead["rules"][0], lead["status"]) for lead in bus.leads.values()
                        if lead["status"] in ACTIVE})
    assert all(r == results[0] for r in results) and results[0]


def test_a_revoked_partition_is_forgotten_until_assigned_again(bus: Bus) -> None:
    """Its deadlines leave with it: a tick there no longer escalates anything
    until the partitions are assigned again (and the index rebuilt)."""
    cross = _lead(bus, FUSHUN.uscc, "CROSS_AGENCY")
    partition = bus.store.partition_of(cross["business_key"].encode())
    bus.flow.revoke(frozenset({partition}))
    assert partition not in bus.flow.deadlines.by_partition
    bus.publish_ticks(NOW + dt.timedelta(hours=49))
    bus.run()
    assert bus.leads[cross["lead_id"]]["escalation"] is None
    bus.flow.assign(frozenset(range(4)))
    bus.publish_ticks(NOW + dt.timedelta(hours=49))
    bus.run()
    assert bus.leads[cross["lead_id"]]["escalation"] == "ACKNOWLEDGE_OVERDUE"


def test_only_a_team_the_lead_was_routed_to_may_change_it(bus: Bus) -> None:
    """Issue 15's attack: feedback produced straight onto the feedback topic
    by anyone, naming any team, REJECTED a CRITICAL referral. Now an answer
    must be signed by the team on its own topic, and the team must receive the lead."""
    lead = _lead(bus, LIQUOR.uscc, "CRIMINAL_REFERRAL")
    forged = bus.serde.encoder(FEEDBACK_TOPIC, "feedback")(
        feedback(lead, "REJECTED", "totally-not-a-team", "假线索", None, NOW.timestamp()))
    key = lead["business_key"].encode()
    bus.process([bus.record(FEEDBACK_TOPIC, key, forged, signed=False),  # anyone's client, no key
                 bus.record(feedback_topic("totally-not-a-team"), key, forged, signed=False)])
    bus.publish_feedback(lead, "CLOSED", "samr-anyang", "结案", at=NOW)  # a real team, another jurisdiction
    bus.publish_feedback(lead, "CLOSED", "police-jinzhong-food-crime", "结案", at=NOW,
                         signed_by="samr-anyang")  # in the name of a team that receives it
    bus.run()
    assert [d["reason_code"] for d in bus.dead_letters] == ["unsigned", "unsigned", "team_not_recipient",
                                                            "wrong_team"]
    assert all("totally" not in d["reason"] for d in bus.dead_letters)
    assert {c["status"] for c in _copies(bus, lead["lead_id"]).values()} == {"OPEN"} and bus.outcomes == []
    assert bus.metrics.worker.untrusted.labels("team_not_recipient")._value.get() == 1
    bus.publish_feedback(lead, "ACKNOWLEDGED", "samr-taigu", at=NOW)  # the county desk receives it
    bus.run()
    assert bus.leads[lead["lead_id"]]["status"] == "ACKNOWLEDGED"


def test_a_parent_jurisdiction_may_answer_once_a_lead_is_escalated_to_it(bus: Bus) -> None:
    cross = _lead(bus, FUSHUN.uscc, "CROSS_AGENCY")
    bus.publish_feedback(cross, "ACKNOWLEDGED", "police-shanxi-food-crime", at=NOW)
    bus.run()
    assert [d["reason_code"] for d in bus.dead_letters] == ["team_not_recipient"]
    bus.publish_ticks(NOW + dt.timedelta(hours=49))
    bus.publish_feedback(cross, "ACKNOWLEDGED", "police-shanxi-food-crime", at=NOW + dt.timedelta(hours=50))
    bus.run()
    assert bus.leads[cross["lead_id"]]["status"] == "ACKNOWLEDGED" and len(bus.dead_letters) == 1
