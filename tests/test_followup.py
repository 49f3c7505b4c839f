"""Follow-through as plain functions on one business's state, time passed in
(the lifecycle's ticks): transfers to the police both ways, 回头看 closed on
evidence, rectification and late reports. No broker; ``test_follow_through``
runs the same end to end."""
from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from hypothesis import given, settings as hsettings, strategies as st

from hub.domain.events import Agency, EventKind, cst_start_ms
from hub.domain.followup import RectificationStatus, rectifications
from hub.domain.leads import Accepted, BusinessState
from hub.domain.lifecycle import FeedbackRejected, is_overdue
from hub.domain.rules import to_fact
from hub.domain.teams import parse_teams, recipients, redact
from hub.settings import LifecycleSettings
from tests.test_rules import KEY, RULES, event

H = 3_600_000
LIFE = LifecycleSettings()
FOUND = cst_start_ms(dt.date(2026, 10, 20))  # the day of the referral's finding (clenbuterol), CST
T0 = FOUND + 10 * H  # the referral opens when its finding arrives, that morning: the 310 clock runs from FOUND
TEAMS = parse_teams({"teams": [
    {"name": "samr-anyang", "agency": "SAMR", "jurisdiction": ["4105"], "cleared_agencies": ["AGRI"]},
    {"name": "police-anyang", "agency": "POLICE", "jurisdiction": ["4105"], "cleared_agencies": ["SAMR", "AGRI"]},
    {"name": "oversight-henan", "agency": "PROCURATORATE", "role": "oversight", "jurisdiction": ["41"],
     "cleared_agencies": ["SAMR", "AGRI"]},
]})


def clenbuterol(day: dt.date = dt.date(2026, 10, 20)) -> dict:
    return event("s1", day, kind=EventKind.SAMPLING_FAILURE, items=("克伦特罗",))


def police(status: str, day: dt.date, case: str = "A1") -> dict:
    e = event(f"{case}:{status}", day, agency=Agency.POLICE, kind=EventKind.POLICE_CASE,
              adverse=status != "WITHDRAWN")
    e["detail"] = ("cn.supervision.hub.PoliceCaseDetail", {"case_name": "x", "status": status, "accepted_on": day,
                                                           "filed_on": None, "handling_unit": None,
                                                           "clue_source": None})
    return e


def inspection(no: str, day: dt.date, result: str, rectify_by: dt.date | None = None) -> dict:
    e = event(no, day, adverse=result == "NON_COMPLIANT")
    e["detail"] = ("cn.supervision.hub.InspectionDetail",
                   {"result": result, "handling": "RECTIFY_BY_DEADLINE" if rectify_by else "PASSED",
                    "problems": None, "rectify_by": rectify_by})
    return e


def passed_sample(no: str, day: dt.date) -> dict:
    return event(no, day, agency=Agency.AGRI, kind=EventKind.FARM_SAMPLING, adverse=False, items=("腐霉利",))


def referral() -> tuple[BusinessState, dict]:
    state = BusinessState(region_code="410502")
    state.accept(clenbuterol(), RULES)
    [lead] = state.lead_updates(KEY, RULES, T0, LIFE)
    return state, lead


def publish(state: BusinessState, now_ms: int) -> dict[str, dict]:
    return {lead["rules"][0]: lead for lead in state.lead_updates(KEY, RULES, now_ms, LIFE)}


def names(teams: list) -> set[str]:
    return {t.name for t in teams}


# -- transfers (行刑衔接) ----------------------------------------------------

def test_a_referral_not_transferred_in_time_escalates_to_oversight() -> None:
    state, lead = referral()
    assert lead["transfer_by"].timestamp() * 1000 == FOUND + 96 * H and not lead["oversight"]
    assert names(recipients(lead, TEAMS)) == {"samr-anyang", "police-anyang"}  # oversight: not yet
    state.escalate_due(LIFE, T0 + 24 * H + 1)  # ACKNOWLEDGE_OVERDUE comes first (from publication)
    assert state.escalate_due(LIFE, FOUND + 96 * H + 1) == ["TRANSFER_OVERDUE"]
    escalated = publish(state, FOUND + 97 * H)["CRIMINAL_REFERRAL"]
    assert escalated["escalation"] == "TRANSFER_OVERDUE" and escalated["oversight"] and is_overdue(escalated)
    # why the procuratorate and the parent received it: every flag, not only the latest (issue 32)
    assert escalated["escalations"] == ["ACKNOWLEDGE_OVERDUE", "TRANSFER_OVERDUE"]
    assert "oversight-henan" in names(recipients(escalated, TEAMS))
    state.apply_feedback(lead["lead_id"], "TRANSFERRED", "samr-anyang", "移送安阳市公安局", T0 + 98 * H)
    later = publish(state, T0 + 98 * H)["CRIMINAL_REFERRAL"]
    # from then on, and its later records keep the label (issue 30: a republished lead lost it)
    assert later["escalation"] == "TRANSFER_OVERDUE" and "oversight-henan" in names(recipients(later, TEAMS))
    assert not is_overdue(later)


def test_the_transfer_clock_runs_from_the_finding_and_a_late_finding_is_overdue_on_arrival() -> None:
    """Issue 32, item 3: a finding reported 34 days late got a fresh 96 h.
    By the 310 limits it is overdue on arrival, and the lead says so at once:
    escalated, to oversight, before any tick."""
    state = BusinessState(region_code="410502")
    found_on = dt.date(2026, 10, 20) - dt.timedelta(days=34)
    state.accept(clenbuterol(found_on), RULES)
    [lead] = state.lead_updates(KEY, RULES, T0, LIFE)
    assert lead["transfer_by"].timestamp() * 1000 == cst_start_ms(found_on) + 96 * H < T0
    assert lead["history"][-1]["status"] == "ESCALATED_TRANSFER_OVERDUE"
    assert lead["escalation"] == "TRANSFER_OVERDUE" and lead["oversight"] and is_overdue(lead)
    assert "oversight-henan" in names(recipients(lead, TEAMS))
    # a referral the police's own case raised has nothing to transfer: no clock from its finding
    police_only = BusinessState(region_code="410502")
    case = police("FILED", found_on)
    case.update(offence="生产、销售伪劣产品罪", value_yuan=Decimal("90000"))
    police_only.accept(case, RULES)
    [own] = police_only.lead_updates(KEY, RULES, T0, LIFE)
    assert own["rules"] == ["CRIMINAL_REFERRAL"] and own["escalation"] is None


def _final(*records: dict, now: int = T0 + H) -> dict[str, dict]:
    """Each record in its own batch, a tick after each: the last record of every lead, less when things happened."""
    state = BusinessState(region_code="410502")
    last: dict[str, dict] = {}
    for record in records:
        state.accept(record, RULES)
        last.update({lead["lead_id"]: lead for lead in state.lead_updates(KEY, RULES, now, LIFE)})
        state.escalate_due(LIFE, now)
        last.update({lead["lead_id"]: lead for lead in state.lead_updates(KEY, RULES, now, LIFE)})
    return {lead["rules"][0]: {k: v for k, v in lead.items() if k not in ("history", "version", "updated_at")}
            for lead in last.values() if lead["status"] != "SUPERSEDED"}


def test_a_transfer_deadline_is_decided_by_the_police_records_date_in_either_order() -> None:
    """Issue 30: a late finding is overdue on arrival; when the police's 立案,
    dated within the 310 limit, comes after it, the escalation is withdrawn,
    so the lead is the same as when the 立案 came first. A 立案 after the
    limit was late either way."""
    late_finding = clenbuterol(dt.date(2026, 10, 1))  # its transfer was due by 10-05, 00:00 CST
    for filed_on, overdue in ((dt.date(2026, 10, 3), False), (dt.date(2026, 10, 12), True)):
        filing = police("FILED", filed_on)
        first, second = _final(late_finding, filing), _final(filing, late_finding)
        assert first == second, (filed_on, first["CRIMINAL_REFERRAL"], second["CRIMINAL_REFERRAL"])
        referral = first["CRIMINAL_REFERRAL"]
        assert (referral["escalation"], referral["escalations"], referral["oversight"]) == (
            ("TRANSFER_OVERDUE", ["TRANSFER_OVERDUE"], True) if overdue else (None, [], False))
    state = BusinessState(region_code="410502")
    state.accept(late_finding, RULES)
    [lead] = state.lead_updates(KEY, RULES, T0, LIFE)
    assert lead["escalation"] == "TRANSFER_OVERDUE" and "oversight-henan" in names(recipients(lead, TEAMS))
    state.accept(police("FILED", dt.date(2026, 10, 3)), RULES)
    [withdrawn] = [lead for lead in state.lead_updates(KEY, RULES, T0 + H, LIFE)
                   if lead["rules"] == ["CRIMINAL_REFERRAL"]]
    assert withdrawn["history"][-1]["status"] == "WITHDRAWN_TRANSFER_OVERDUE" and not withdrawn["oversight"]
    assert "oversight-henan" in names(recipients(withdrawn, TEAMS))  # the procuratorate hears it was withdrawn


def test_a_rectification_a_tick_flagged_is_no_lead_once_its_in_time_confirmation_arrives() -> None:
    """Issue 30: a tick found a rectification overdue before the compliant
    re-inspection, dated before the deadline, arrived: the same records in
    date order give no RECTIFICATION_OVERDUE lead, so neither may this order."""
    order = inspection("r1", dt.date(2026, 9, 24), "NON_COMPLIANT", rectify_by=dt.date(2026, 10, 8))
    confirmed = inspection("r2", dt.date(2026, 10, 6), "COMPLIANT")
    assert "RECTIFICATION_OVERDUE" in _final(order)
    assert "RECTIFICATION_OVERDUE" not in _final(order, confirmed)
    assert _final(order, confirmed) == _final(confirmed, order)


def test_a_transfer_the_police_never_take_up_escalates_as_unfiled() -> None:
    state, lead = referral()
    state.apply_feedback(lead["lead_id"], "TRANSFERRED", "samr-anyang", "移送", T0 + 10 * H)
    moved = publish(state, T0 + 10 * H)["CRIMINAL_REFERRAL"]
    assert moved["transfer_by"] is None and moved["police_filing_by"].timestamp() * 1000 == T0 + 82 * H
    assert state.next_deadline(LIFE) == T0 + 82 * H
    assert state.escalate_due(LIFE, T0 + 82 * H) == ["TRANSFER_UNFILED"]
    unfiled = publish(state, T0 + 82 * H)["CRIMINAL_REFERRAL"]
    assert unfiled["escalation"] == "TRANSFER_UNFILED" and unfiled["oversight"] and is_overdue(unfiled)


def test_a_police_filing_links_to_the_referral_and_stops_its_clocks_in_either_order() -> None:
    for police_first in (False, True):
        state = BusinessState(region_code="410502")
        filed = police("FILED", dt.date(2026, 10, 22))  # within 3 days of the transfer (10-20)
        if police_first:
            state.accept(filed, RULES)
        state.accept(clenbuterol(), RULES)
        [lead] = [
            entry for entry in state.lead_updates(KEY, RULES, T0, LIFE) if entry["rules"] == ["CRIMINAL_REFERRAL"]
        ]
        state.apply_feedback(lead["lead_id"], "TRANSFERRED", "samr-anyang", "移送", T0 + H)
        if not police_first:
            assert state.accept(filed, RULES) is Accepted.NEW
        linked = publish(state, T0 + 2 * H)["CRIMINAL_REFERRAL"]
        assert [(k["kind"], k["event_id"], k["agency"]) for k in linked["links"]] == [
            ("POLICE_FILED", filed["event_id"], "POLICE")
        ]
        assert linked["police_filing_by"] is None and linked["transfer_by"] is None
        raised = [level for _ in range(5) for level in state.escalate_due(LIFE, T0 + 1000 * H)]
        assert "CLOSE_OVERDUE" in raised and not {"TRANSFER_OVERDUE", "TRANSFER_UNFILED"} & set(raised)


def test_a_police_filing_dated_after_its_three_days_is_late_in_either_order() -> None:
    """The police decide within 3 days of the transfer (310): a 立案 dated
    later is TRANSFER_UNFILED, whether it arrived before the tick or after;
    one dated in time withdraws a TRANSFER_UNFILED a tick raised first."""
    for filed_on, late in ((dt.date(2026, 10, 25), True), (dt.date(2026, 10, 22), False)):
        outcomes = []
        for police_first in (False, True):
            state, lead = referral()
            state.apply_feedback(lead["lead_id"], "TRANSFERRED", "samr-anyang", "移送", T0 + H)
            filed = police("FILED", filed_on)
            if police_first:
                state.accept(filed, RULES)
            state.escalate_due(LIFE, T0 + 200 * H)
            if not police_first:
                state.accept(filed, RULES)
            state.escalate_due(LIFE, T0 + 201 * H)
            final = publish(state, T0 + 201 * H)["CRIMINAL_REFERRAL"]
            outcomes.append((final["escalations"], final["oversight"]))
        assert outcomes[0] == outcomes[1] == ((["TRANSFER_UNFILED"], True) if late else ([], False)), outcomes


def test_a_police_filing_after_closure_is_follow_up_and_reopens_nothing() -> None:
    state, lead = referral()
    state.apply_feedback(lead["lead_id"], "TRANSFERRED", "samr-anyang", "移送", T0 + H)
    state.apply_feedback(lead["lead_id"], "CLOSED", "samr-anyang", "已移送, 行政处罚", T0 + 2 * H)
    assert state.accept(police("ACCEPTED", dt.date(2026, 10, 22)), RULES) is Accepted.NEW  # not REOPENED
    after = publish(state, T0 + 3 * H)["CRIMINAL_REFERRAL"]
    assert after["status"] == "CLOSED" and [k["kind"] for k in after["links"]] == ["POLICE_ACCEPTED"]


def test_a_referral_closed_or_rejected_without_transfer_is_flagged_to_oversight() -> None:
    for action in ("CLOSED", "REJECTED"):
        state, lead = referral()
        state.apply_feedback(lead["lead_id"], action, "samr-anyang", "罚款5万元结案", T0 + H)
        flagged = publish(state, T0 + H)["CRIMINAL_REFERRAL"]
        assert flagged["escalation"] == "NOT_TRANSFERRED" and flagged["oversight"]
        assert flagged["history"][-1]["status"] == "ESCALATED_NOT_TRANSFERRED"
        assert flagged["history"][-2]["note"] == "罚款5万元结案"  # the reason stays on the record
        assert "oversight-henan" in names(recipients(flagged, TEAMS))
    state, lead = referral()
    try:
        state.apply_feedback(lead["lead_id"], "CLOSED", "samr-anyang", " ", T0 + H)
        raise AssertionError("closed without a reason")
    except FeedbackRejected as exc:
        assert exc.code == "missing_note"
    state.apply_feedback(lead["lead_id"], "TRANSFERRED", "samr-anyang", "移送", T0 + H)
    state.apply_feedback(lead["lead_id"], "CLOSED", "samr-anyang", "公安已立案", T0 + 2 * H)
    closed = publish(state, T0 + 2 * H)["CRIMINAL_REFERRAL"]
    assert closed["escalation"] is None and not closed["oversight"]


def test_a_dropped_case_opens_a_reverse_referral_for_market_supervision_linked_both_ways() -> None:
    state, lead = referral()
    state.apply_feedback(lead["lead_id"], "TRANSFERRED", "samr-anyang", "移送", T0 + H)
    state.accept(police("FILED", dt.date(2026, 10, 22)), RULES)
    dropped = police("WITHDRAWN", dt.date(2026, 11, 10))
    assert state.accept(dropped, RULES) is Accepted.NEW
    out = publish(state, T0 + 3 * H)
    reverse, original = out["REVERSE_REFERRAL"], out["CRIMINAL_REFERRAL"]
    assert reverse["severity"] == "MEDIUM" and [e["event_id"] for e in reverse["evidence"]] == [dropped["event_id"]]
    assert [(k["kind"], k["lead_id"]) for k in reverse["links"]] == [("REFERRAL", lead["lead_id"])]
    assert ("POLICE_DROPPED", reverse["lead_id"]) in [(k["kind"], k["lead_id"]) for k in original["links"]]
    # the market-supervision desk, and the procuratorate that watches transfers both ways (issue 32)
    assert names(recipients(reverse, TEAMS)) == {"samr-anyang", "oversight-henan"} and reverse["oversight"]
    police_copy = redact(original, TEAMS["police-anyang"], TEAMS)
    assert dropped["event_id"] in {k["event_id"] for k in police_copy["links"]}
    desk_copy = redact(reverse, TEAMS["samr-anyang"], TEAMS)  # not cleared for police details
    assert [(k["kind"], k["event_id"], k["lead_id"]) for k in desk_copy["links"]] == [
        ("REFERRAL", None, lead["lead_id"])
    ]
    assert "POLICE evidence event_id" in desk_copy["withheld"]
    # what 310 hands back with the case: its number and date, and that its reason must be asked for
    assert "公安机关撤案：案件编号 A1:WITHDRAWN，2026-11-10，撤案原因未随数据报送" in desk_copy["recommended_action"]


def test_a_reverse_referrals_links_do_not_depend_on_when_an_earlier_finding_arrived() -> None:
    """Issue 30: an earlier finding that re-draws the referral's window (a
    sampling notice resolved to the business after the 撤案 was processed)
    left the open reverse referral linked to the superseded referral too."""
    earlier = event("s0", dt.date(2026, 10, 5), kind=EventKind.SAMPLING_FAILURE, items=("克伦特罗",))
    dropped = police("WITHDRAWN", dt.date(2026, 11, 10))

    def reverse_links(order: list[dict]) -> list[tuple[str, str]]:
        state = BusinessState(region_code="410502")
        for n, record in enumerate(order):
            state.accept(record, RULES)
            publish(state, T0 + n * H)  # each record processed in a batch of its own
        [mark] = [m for m in state.leads.values() if m.rule == "REVERSE_REFERRAL"]
        return [(kind, lead_id) for kind, _, _, lead_id in mark.links]

    late = reverse_links([clenbuterol(), dropped, earlier])
    in_order = reverse_links([earlier, clenbuterol(), dropped])
    assert late == in_order and len(late) == 1, (late, in_order)


def test_a_police_filing_on_a_referred_business_is_its_follow_up_not_a_cross_agency_lead() -> None:
    """Issue 32: the police's 立案 of the case the hub referred was linked
    (POLICE_FILED) and also opened a HIGH CROSS_AGENCY lead for the same facts."""
    state, lead = referral()
    state.apply_feedback(lead["lead_id"], "TRANSFERRED", "samr-anyang", "移送", T0 + H)
    state.accept(police("FILED", dt.date(2026, 10, 22)), RULES)
    out = publish(state, T0 + 2 * H)
    assert set(out) == {"CRIMINAL_REFERRAL"}, set(out)
    assert _has_link(out["CRIMINAL_REFERRAL"], "POLICE_FILED")
    # the police's own case before any referral is evidence of its own: two agencies, a joint lead
    alone = BusinessState(region_code="410502")
    alone.accept(police("FILED", dt.date(2026, 10, 1), case="A0"), RULES)
    alone.accept(event("p1", dt.date(2026, 10, 10), kind=EventKind.PENALTY), RULES)
    assert "CROSS_AGENCY" in publish(alone, T0)


def _has_link(lead: dict, kind: str) -> bool:
    return kind in {k["kind"] for k in lead["links"]}


def test_a_dropped_case_without_a_referral_still_comes_back() -> None:
    state = BusinessState(region_code="410502")
    state.accept(police("WITHDRAWN", dt.date(2026, 11, 10)), RULES)
    [reverse] = state.lead_updates(KEY, RULES, T0, LIFE)
    assert reverse["rules"] == ["REVERSE_REFERRAL"] and reverse["links"] == []


# -- 回头看 on evidence --------------------------------------------------------


def closed_repeat_offender(closed_ms: int) -> tuple[BusinessState, str]:
    state = BusinessState(region_code="410502")
    state.accept(inspection("i1", dt.date(2026, 9, 1), "NON_COMPLIANT"), RULES)
    state.accept(inspection("i2", dt.date(2026, 9, 20), "NON_COMPLIANT"), RULES)
    [lead] = state.lead_updates(KEY, RULES, T0, LIFE)
    state.apply_feedback(lead["lead_id"], "CLOSED", "samr-anyang", "罚款2万元", closed_ms)
    state.lead_updates(KEY, RULES, closed_ms, LIFE)
    return state, lead["lead_id"]


def test_a_later_compliant_record_proves_the_recheck() -> None:
    closed_ms = cst_start_ms(dt.date(2026, 11, 2))
    for proof in (inspection("i3", dt.date(2026, 11, 20), "COMPLIANT"), passed_sample("p1", dt.date(2026, 11, 20))):
        state, lead_id = closed_repeat_offender(closed_ms)
        state.accept(inspection("i0", dt.date(2026, 11, 2), "COMPLIANT"), RULES)  # the closing day's own: not later
        assert publish(state, closed_ms + H) == {}
        state.accept(proof, RULES)
        rechecked = publish(state, closed_ms + 2 * H)["REPEAT_OFFENDER"]
        assert rechecked["status"] == "RECHECKED" and rechecked["recheck_on"] is None
        assert [(k["kind"], k["event_id"]) for k in rechecked["links"]] == [("RECHECKED", proof["event_id"])]
        assert state.next_deadline(LIFE) is None  # nothing left to escalate
        state.accept(inspection("i4", dt.date(2026, 12, 5), "NON_COMPLIANT"), RULES)  # a failure reopens it
        assert state.leads[lead_id].status == "OPEN"


def test_no_recheck_by_its_date_plus_grace_escalates_to_the_parent() -> None:
    closed_ms = T0 + H
    state, _lead_id = closed_repeat_offender(closed_ms)
    due = closed_ms + LIFE.recheck_ms
    assert state.escalate_due(LIFE, due) == ["RECHECK_DUE"]
    assert state.escalate_due(LIFE, due + LIFE.recheck_grace_ms - 1) == []
    assert state.escalate_due(LIFE, due + LIFE.recheck_grace_ms) == ["RECHECK_OVERDUE"]
    late = state.lead_updates(KEY, RULES, due + LIFE.recheck_grace_ms, LIFE)
    assert [lead["escalation"] for lead in late] == ["RECHECK_OVERDUE"]
    teams = parse_teams(
        {"teams": [{"name": "city", "agency": "SAMR"}, {"name": "county", "agency": "SAMR", "parent": "city"}]}
    )
    assert names(recipients(late[0], teams)) == {"city", "county"}


# -- rectification (整改) -------------------------------------------------------


def test_a_rectification_past_its_deadline_opens_an_escalated_lead_and_a_later_compliant_one_confirms_it() -> None:
    state = BusinessState(region_code="410502")
    order = inspection("r1", dt.date(2026, 10, 1), "NON_COMPLIANT", rectify_by=dt.date(2026, 10, 15))
    state.accept(order, RULES)
    assert state.lead_updates(KEY, RULES, T0, LIFE) == []
    overdue_at = cst_start_ms(dt.date(2026, 10, 15) + dt.timedelta(days=LIFE.rectification_grace_days + 1))
    assert state.next_deadline(LIFE) == overdue_at
    assert state.escalate_due(LIFE, overdue_at - 1) == []
    assert state.escalate_due(LIFE, overdue_at) == ["RECTIFICATION_OVERDUE"]
    assert state.escalate_due(LIFE, overdue_at + H) == []  # once
    lead = publish(state, overdue_at)["RECTIFICATION_OVERDUE"]
    assert lead["escalation"] == "RECTIFICATION_OVERDUE" and lead["status"] == "OPEN"
    assert [e["event_id"] for e in lead["evidence"]] == [order["event_id"]]
    state.accept(inspection("r2", dt.date(2026, 10, 25), "NON_COMPLIANT"), RULES)  # a repeat joins it
    repeat = publish(state, overdue_at + H)["RECTIFICATION_OVERDUE"]
    assert len(repeat["evidence"]) == 2 and repeat["lead_id"] == lead["lead_id"]
    confirm = inspection("r3", dt.date(2026, 11, 5), "COMPLIANT")
    state.accept(confirm, RULES)
    done = publish(state, overdue_at + 2 * H)["RECTIFICATION_OVERDUE"]
    assert [(k["kind"], k["event_id"]) for k in done["links"]] == [("RECTIFIED", confirm["event_id"])]
    [found] = rectifications(state.facts.values())
    assert found.status(dt.date(2026, 11, 30), 3) is RectificationStatus.CONFIRMED_LATE
    assert names(recipients(done, TEAMS)) == {"samr-anyang"}


def _missed_twice_then_compliant() -> list[dict]:
    """Issue 30's case: 不符合 on 03-15 (deadline 03-29) and on 07-14
    (deadline 07-28), then 符合 on 09-09: both deadlines were missed."""
    return [
        inspection("m1", dt.date(2026, 3, 15), "NON_COMPLIANT", rectify_by=dt.date(2026, 3, 29)),
        inspection("m2", dt.date(2026, 7, 14), "NON_COMPLIANT", rectify_by=dt.date(2026, 7, 28)),
        inspection("m3", dt.date(2026, 9, 9), "COMPLIANT"),
    ]


def test_a_missed_rectification_deadline_is_decided_by_the_records_dates_not_by_when_a_tick_fell() -> None:
    """Fed at once (no tick between), the late compliant re-inspection used
    to hide the missed deadlines: no RECTIFICATION_OVERDUE lead. Fed with a
    tick before the re-inspection, the lead opened. Both now give the lead,
    linked to the inspection that rectified it late."""
    at_once = BusinessState(region_code="410502")
    for record in _missed_twice_then_compliant():
        at_once.accept(record, RULES)
    lead = publish(at_once, T0)["RECTIFICATION_OVERDUE"]
    assert lead["status"] == "OPEN" and lead["escalation"] == "RECTIFICATION_OVERDUE"
    assert [e["event_id"] for e in lead["evidence"]] == ["test:m1", "test:m2"]
    assert [(k["kind"], k["event_id"]) for k in lead["links"]] == [("RECTIFIED", "test:m3")]

    ticked = BusinessState(region_code="410502")
    first, second, compliant = _missed_twice_then_compliant()
    for record in (first, second):
        ticked.accept(record, RULES)
    ticked.escalate_due(LIFE, T0)
    publish(ticked, T0)
    ticked.accept(compliant, RULES)
    again = publish(ticked, T0 + H)["RECTIFICATION_OVERDUE"]
    assert again["lead_id"] == lead["lead_id"]
    assert {k: v for k, v in again.items() if k not in ("first_seen", "updated_at", "history", "version")} == {
        k: v for k, v in lead.items() if k not in ("first_seen", "updated_at", "history", "version")
    }


def test_a_rectification_confirmed_in_time_raises_nothing() -> None:
    state = BusinessState(region_code="410502")
    state.accept(inspection("r1", dt.date(2026, 10, 1), "NON_COMPLIANT", rectify_by=dt.date(2026, 10, 15)), RULES)
    state.accept(inspection("r2", dt.date(2026, 10, 14), "BASICALLY_COMPLIANT"), RULES)
    assert state.next_deadline(LIFE) is None
    assert state.escalate_due(LIFE, T0 + 10_000 * H) == [] and state.lead_updates(KEY, RULES, T0, LIFE) == []
    [found] = rectifications(state.facts.values())
    assert found.status(dt.date(2026, 11, 30), 3) is RectificationStatus.CONFIRMED
    assert found.confirmed_by is not None and found.confirmed_by.event_id == "test:r2"


@hsettings(max_examples=40, deadline=None)
@given(st.randoms(use_true_random=False))
def test_rectifications_do_not_depend_on_arrival_order(rng: random.Random) -> None:
    records = [
        inspection("a", dt.date(2026, 3, 1), "NON_COMPLIANT", dt.date(2026, 3, 10)),
        inspection("b", dt.date(2026, 3, 20), "NON_COMPLIANT", dt.date(2026, 4, 1)),
        inspection("c", dt.date(2026, 4, 20), "COMPLIANT"),
        inspection("d", dt.date(2026, 6, 1), "NON_COMPLIANT", dt.date(2026, 6, 10)),
        inspection("e", dt.date(2026, 7, 1), "NON_COMPLIANT"),
    ]
    rng.shuffle(records)
    found = rectifications([to_fact(r, RULES) for r in records])
    assert [
        (
            [o.event_id for o in r.orders],
            [p.event_id for p in r.repeats],
            r.confirmed_by.event_id if r.confirmed_by else None,
        )
        for r in found
    ] == [(["test:a", "test:b"], ["test:b"], "test:c"), (["test:d"], ["test:e"], None)]


# -- late reports (迟报) ---------------------------------------------------------


def test_evidence_carries_its_reporting_delay_and_a_late_one_marks_the_lead() -> None:
    state = BusinessState(region_code="410502")
    state.accept(clenbuterol(dt.date(2026, 10, 20)), RULES)  # arrived on 2026-11-01: 12 days
    [lead] = state.lead_updates(KEY, RULES, T0, LIFE)
    assert lead["evidence"][0]["reported_after_days"] == 12 and lead["reported_late_days"] == 12
    state = BusinessState(region_code="410502")
    state.accept(clenbuterol(dt.date(2026, 10, 31)), RULES)
    [lead] = state.lead_updates(KEY, RULES, T0, LIFE)
    assert lead["evidence"][0]["reported_after_days"] == 1 and lead["reported_late_days"] is None


def test_a_police_case_is_late_from_its_acceptance() -> None:
    case = police("FILED", dt.date(2026, 10, 30))
    case["detail"][1]["accepted_on"] = dt.date(2026, 10, 1)
    assert to_fact(case, RULES).delay_days == 31


# -- oversight teams -----------------------------------------------------------


def test_oversight_teams_are_validated_and_described() -> None:
    for bad in ({"role": "boss"}, {"agency": "COURT"}):
        try:
            parse_teams({"teams": [{"name": "x", "agency": "SAMR", **bad}]})
            raise AssertionError(f"accepted {bad}")
        except ValueError as exc:
            assert "unknown" in str(exc)
    assert TEAMS["oversight-henan"].oversees and not TEAMS["samr-anyang"].oversees


# -- through the real flow (the in-memory bus) ----------------------------------


def test_the_workers_route_a_flagged_referral_to_oversight_and_refuse_its_answers(tmp_path) -> None:
    from hub.devtools.samples import VEG_BASE
    from tests.scenario import scenario_bus

    bus = scenario_bus(tmp_path / "data", dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC))
    [lead] = [entry for entry in bus.leads.values() if entry["business_id"] == VEG_BASE.uscc]
    oversight = "hub.team.procuratorate-anyang"
    # its finding reached the hub weeks after its date: overdue on arrival (310), oversight has it from the start
    assert bus.topics[oversight][lead["lead_id"]]["escalation"] == "TRANSFER_OVERDUE"
    bus.publish_feedback(lead, "CLOSED", "samr-anyang", "罚款2万元结案")
    bus.run()
    flagged = bus.topics[oversight][lead["lead_id"]]
    assert flagged["escalation"] == "NOT_TRANSFERRED" and flagged["status"] == "CLOSED"
    assert flagged["team"] == "procuratorate-anyang" and not flagged["withheld"]  # cleared for every agency
    before = bus.state(lead["business_key"]).to_bytes()
    bus.publish_feedback(flagged, "REJECTED", "procuratorate-anyang", "应当移送")
    bus.run()
    assert [d["reason_code"] for d in bus.dead_letters] == ["oversight_read_only"]
    assert bus.state(lead["business_key"]).to_bytes() == before


def test_a_rectification_deadline_may_lie_ahead_but_not_beyond_a_year() -> None:
    from hub.domain.validation import Invalid, check_record
    from hub.settings import ValidationSettings

    limits, latest = ValidationSettings(), dt.date(2026, 11, 3)
    ahead = inspection("r1", dt.date(2026, 11, 1), "NON_COMPLIANT", rectify_by=dt.date(2026, 12, 15))
    check_record(ahead, limits, latest)  # a deadline six weeks on is what a 整改期限 is
    for far in (dt.date(2028, 1, 1), dt.date(9999, 12, 31), dt.date(1, 1, 1)):
        wild = inspection("r1", dt.date(2026, 11, 1), "NON_COMPLIANT", rectify_by=far)
        try:
            check_record(wild, limits, latest)
            raise AssertionError(f"accepted a deadline on {far}")
        except Invalid as exc:
            assert exc.reason_code == "date_out_of_range" and "rectify_by" in str(exc.field)
    late = inspection("r2", dt.date(2026, 11, 10), "NON_COMPLIANT")  # the inspection itself may not lie ahead
    try:
        check_record(late, limits, latest)
        raise AssertionError("accepted an inspection dated ahead")
    except Invalid as exc:
        assert exc.field == "occurred_on"


def test_follow_ups_are_in_date_order_whatever_order_their_records_arrived_in() -> None:
    cases = [police("FILED", dt.date(2026, 10, 28), case="A2"), police("FILED", dt.date(2026, 10, 22), case="A1")]
    links = []
    for order in (cases, cases[::-1]):
        state, _ = referral()
        for case in order:
            state.accept(case, RULES)
        links.append(publish(state, T0 + H)["CRIMINAL_REFERRAL"]["links"])
    assert links[0] == links[1] and [k["occurred_on"].day for k in links[0]] == [22, 28]


def test_the_earliest_proof_stands_whatever_order_the_proofs_arrived_in() -> None:
    closed_ms = cst_start_ms(dt.date(2026, 11, 2))
    proofs = [inspection("i3", dt.date(2026, 11, 20), "COMPLIANT"), passed_sample("p1", dt.date(2026, 11, 10))]
    seen = []
    for order in (proofs, proofs[::-1]):
        state, _ = closed_repeat_offender(closed_ms)
        for proof in order:
            state.accept(proof, RULES)
            state.lead_updates(KEY, RULES, closed_ms + H, LIFE)
        [mark] = state.leads.values()
        seen.append((mark.status, mark.links))
    assert seen[0] == seen[1] and seen[0][1][0][1] == "test:p1"
    state = BusinessState(region_code="410502")
    order = inspection("r1", dt.date(2026, 10, 1), "NON_COMPLIANT", rectify_by=dt.date(2026, 10, 5))
    state.accept(order, RULES)
    state.escalate_due(LIFE, cst_start_ms(dt.date(2026, 10, 20)))
    for confirm in (
        inspection("r3", dt.date(2026, 11, 5), "COMPLIANT"),
        inspection("r2", dt.date(2026, 10, 25), "COMPLIANT"),
    ):
        state.accept(confirm, RULES)
        state.lead_updates(KEY, RULES, T0, LIFE)
    [lead] = state.leads.values()
    assert [(k[0], k[1]) for k in lead.links] == [("RECTIFIED", "test:r2")]


# -- the same records, the same leads ------------------------------------------


def _scenario() -> list[dict]:
    """One business through most rule families: a banned pesticide and a
    non-food substance (criminal referrals), a police case filed then
    dropped (撤案: a reverse referral), penalties and inspections (repeat
    offender, cross-agency), a rectification missed twice and confirmed late,
    a compliant re-inspection and a passed farm sample."""
    return [
        event("a1", dt.date(2026, 3, 2), Agency.AGRI, EventKind.FARM_SAMPLING, items=("克百威",)),
        clenbuterol(dt.date(2026, 3, 20)),
        police("FILED", dt.date(2026, 4, 2)),
        police("WITHDRAWN", dt.date(2026, 6, 1)),
        event("p1", dt.date(2026, 4, 10), kind=EventKind.PENALTY),
        event("p2", dt.date(2026, 8, 10), kind=EventKind.PENALTY),
        *_missed_twice_then_compliant(),
        passed_sample("a2", dt.date(2026, 10, 1)),
    ]


@hsettings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False))
def test_open_leads_do_not_depend_on_arrival_order_or_on_where_ticks_fall(rng: random.Random) -> None:
    """Issue 30: the records in any order, each in a batch of its own, with
    clock ticks (all at the same instant, as ticks of one moment would be)
    anywhere between them: the same open leads, field by field, as the
    records in date order with one tick at the end."""
    now = T0 + 400 * 24 * H  # every deadline of the scenario has passed

    def final(steps: list[dict | None]) -> dict[str, dict]:
        state = BusinessState(region_code="410502")
        last: dict[str, dict] = {}
        for step in [*steps, None]:  # None: a tick; one after all the records
            if step is None:
                state.escalate_due(LIFE, now)
            else:
                state.accept(step, RULES)
            last.update({lead["lead_id"]: lead for lead in state.lead_updates(KEY, RULES, now, LIFE)})
        return {
            lead_id: {k: v for k, v in lead.items() if k not in ("history", "version")}
            for lead_id, lead in last.items()
            if lead["status"] == "OPEN"
        }

    in_order: list[dict | None] = sorted(_scenario(), key=lambda e: e["occurred_on"])
    shuffled: list[dict | None] = _scenario()
    rng.shuffle(shuffled)
    for _ in range(rng.randrange(4)):
        shuffled.insert(rng.randrange(len(shuffled) + 1), None)
    expected = final(in_order)
    assert {lead["rules"][0] for lead in expected.values()} >= {
        "CRIMINAL_REFERRAL",
        "REVERSE_REFERRAL",
        "RECTIFICATION_OVERDUE",
        "REPEAT_OFFENDER",
    }
    assert final(shuffled) == expected
