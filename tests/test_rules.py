"""The lead rules as plain functions: no broker."""
from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from hypothesis import given, settings as hsettings, strategies as st

from hub.domain.events import Agency, BusinessRole, EventKind, make_event
from hub.domain.leads import Accepted, BusinessState
from hub.domain import storage
from hub.domain.rules import RuleFamily, criminal_reason, evaluate, missing_figure_note, to_fact
from hub.settings import RuleSettings

RULES = RuleSettings()
KEY = "91410502MA3XK1Q2YB"
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
DETAIL = ("cn.supervision.hub.InspectionDetail", {})


def event(eid: str, day: dt.date, agency: Agency = Agency.SAMR, kind: EventKind = EventKind.INSPECTION,
          adverse: bool = True, items: tuple[str, ...] = (), offence: str | None = None,
          value: str | None = None) -> dict:
    return make_event(
        connector="test", agency=agency, kind=kind, source_record_id=eid, file="f.csv", row=2,
        occurred_on=day, received_at=NOW,
        business={"business_id": KEY, "name": "安阳市文峰区鑫源肉类加工有限公司", "address": None,
                  "region_code": "410502", "licence_number": None, "registration_number": None,
                  "role": BusinessRole.SUBJECT.value},
        adverse=adverse, summary=f"finding {eid}", detail=DETAIL, offence=offence,
        value_yuan=Decimal(value) if value else None,
        findings=[{"item": i, "result": None, "value": None, "unit": None, "limit": None, "failed": adverse}
                  for i in items])


def leads_of(*events: dict) -> list:
    return evaluate(KEY, [to_fact(e, RULES) for e in events], RULES)


def rules_of(*events: dict) -> list[RuleFamily]:
    return sorted(d.rule.value for d in leads_of(*events))


D = dt.date(2026, 3, 1)


def days(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


# -- criminal_referral ---------------------------------------------------------

def test_non_food_substance_alone_is_a_criminal_referral() -> None:
    pork = event("s1", D, kind=EventKind.SAMPLING_FAILURE, items=("盐酸克伦特罗",))
    [lead] = leads_of(pork)
    assert lead.rule is RuleFamily.CRIMINAL_REFERRAL and lead.severity.value == "CRITICAL"
    assert "克伦特罗" in criminal_reason(pork, RULES)


def test_banned_pesticide_is_a_criminal_referral() -> None:
    chives = event("a1", D, Agency.AGRI, EventKind.FARM_SAMPLING, items=("克百威",))
    assert rules_of(chives) == ["CRIMINAL_REFERRAL"]


def test_passing_test_of_a_banned_substance_is_nothing() -> None:
    assert leads_of(event("a1", D, Agency.AGRI, EventKind.FARM_SAMPLING, adverse=False, items=("克百威",))) == []


def test_counterfeit_case_from_the_threshold() -> None:
    at = event("p1", D, Agency.POLICE, EventKind.POLICE_CASE, offence="生产、销售伪劣产品罪", value="50000")
    below = event("p2", D, Agency.POLICE, EventKind.POLICE_CASE, offence="生产、销售伪劣产品罪", value="49999.99")
    other = event("p3", D, Agency.POLICE, EventKind.POLICE_CASE, offence="非法经营罪", value="900000")
    assert criminal_reason(at, RULES) and not criminal_reason(below, RULES) and not criminal_reason(other, RULES)


def test_threshold_and_lists_come_from_configuration() -> None:
    custom = RuleSettings(counterfeit_threshold_yuan=10_000, non_food_substances=("工业明胶",))
    case = event("p1", D, Agency.POLICE, EventKind.POLICE_CASE, offence="销售伪劣产品", value="20000")
    assert criminal_reason(case, custom) and not criminal_reason(case, RULES)
    gelatin = event("s1", D, kind=EventKind.SAMPLING_FAILURE, items=("工业明胶",))
    assert criminal_reason(gelatin, custom) and not criminal_reason(gelatin, RULES)


# -- cross_agency ------------------------------------------------------------

def test_two_agencies_within_the_window() -> None:
    assert rules_of(event("m1", D, Agency.SAMR, EventKind.PENALTY),
                    event("p1", days(89), Agency.POLICE, EventKind.POLICE_CASE)) == ["CROSS_AGENCY"]


def test_two_agencies_too_far_apart() -> None:
    assert rules_of(event("m1", D, Agency.SAMR, EventKind.PENALTY),
                    event("p1", days(90), Agency.POLICE, EventKind.POLICE_CASE)) == []


def test_one_agency_twice_is_not_cross_agency() -> None:
    assert "CROSS_AGENCY" not in rules_of(event("m1", D), event("m2", days(10)))


def test_non_adverse_events_do_not_count() -> None:
    assert rules_of(event("m1", D, adverse=False), event("p1", days(3), Agency.POLICE, EventKind.POLICE_CASE)) == []


# -- repeat_offender -----------------------------------------------------------

def test_a_single_minor_failure_is_not_a_lead() -> None:
    assert leads_of(event("m1", D)) == []


def test_two_findings_within_180_days() -> None:
    [lead] = leads_of(event("m1", D), event("m2", days(179), kind=EventKind.PENALTY))
    assert lead.rule is RuleFamily.REPEAT_OFFENDER and lead.severity.value == "MEDIUM"
    assert lead.window_start == D and lead.window_end == days(179)


def test_findings_181_days_apart_are_not_a_repeat() -> None:
    assert leads_of(event("m1", D), event("m2", days(180))) == []


def test_police_cases_are_not_findings() -> None:
    assert "REPEAT_OFFENDER" not in rules_of(event("p1", D, Agency.POLICE, EventKind.POLICE_CASE),
                                             event("p2", days(5), Agency.POLICE, EventKind.POLICE_CASE))


# -- identity and windows -------------------------------------------------------

def test_new_evidence_in_the_window_updates_the_same_lead() -> None:
    [before] = leads_of(event("m1", D), event("m2", days(30)))
    [after] = leads_of(event("m1", D), event("m2", days(30)), event("m3", days(100)))
    assert before.lead_id == after.lead_id
    assert before.fingerprint() != after.fingerprint()
    assert [f.event_id for f in after.evidence] == ["test:m1", "test:m2", "test:m3"]


def test_a_later_episode_is_another_lead() -> None:
    drafts = leads_of(event("m1", D), event("m2", days(30)), event("m3", days(400)), event("m4", days(420)))
    assert len({d.lead_id for d in drafts}) == 2


def test_windows_use_event_dates_not_arrival() -> None:
    first = event("m1", D)
    late = event("m2", days(20))
    late["received_at"] = NOW + dt.timedelta(days=500)
    assert rules_of(first, late) == ["REPEAT_OFFENDER"]


@hsettings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, RULES.history_days - 1), st.sampled_from(list(Agency)), st.booleans()),
                min_size=1, max_size=12), st.randoms())
def test_leads_do_not_depend_on_arrival_order(specs, rnd: random.Random) -> None:
    kinds = {Agency.SAMR: EventKind.PENALTY, Agency.POLICE: EventKind.POLICE_CASE, Agency.AGRI: EventKind.FARM_SAMPLING}
    events = [event(f"e{i}", days(d), a, kinds[a], adverse=adv) for i, (d, a, adv) in enumerate(specs)]
    shuffled = events[:]
    rnd.shuffle(shuffled)

    def through_state(evts: list[dict]) -> set[tuple[str, frozenset[str]]]:
        """Feed events one at a time as a worker would; keep the last record
        published per lead, as a subscriber would."""
        state = BusinessState()
        published: dict[str, dict] = {}
        for e in evts:
            state.accept(e, RULES)
            published.update((lead["lead_id"], lead) for lead in state.lead_updates(KEY, RULES, 0))
        return {(lid, frozenset(ev["event_id"] for ev in lead["evidence"]))
                for lid, lead in published.items() if lead["status"] == "OPEN"}

    in_one_go = {(d.lead_id, frozenset(f.event_id for f in d.evidence))
                 for d in evaluate(KEY, [to_fact(e, RULES) for e in events], RULES)}
    assert through_state(events) == in_one_go
    assert through_state(events) == through_state(shuffled)


# -- business state ------------------------------------------------------------

def test_state_deduplicates_by_source_record() -> None:
    state = BusinessState()
    assert state.accept(event("m1", D), RULES) is Accepted.NEW
    assert state.accept(event("m1", D), RULES) is Accepted.DUPLICATE


def test_events_older_than_the_history_are_expired() -> None:
    state = BusinessState()
    state.accept(event("m1", days(500)), RULES)
    assert state.accept(event("m0", D), RULES) is Accepted.EXPIRED


def test_history_is_bounded_in_time_and_size() -> None:
    rules = RuleSettings(history_days=100, history_max_events=3)
    state = BusinessState()
    for i in range(6):
        state.accept(event(f"m{i}", days(i * 10)), rules)
    assert sorted(state.facts) == ["test:m3", "test:m4", "test:m5"]
    state.accept(event("m9", days(200)), rules)
    assert sorted(state.facts) == ["test:m9"]


def test_unchanged_leads_are_not_republished() -> None:
    state = BusinessState()
    state.accept(event("m1", D), RULES)
    state.accept(event("m2", days(5)), RULES)
    [lead] = state.lead_updates(KEY, RULES, 1_000)
    assert state.lead_updates(KEY, RULES, 2_000) == []
    state.accept(event("m3", days(6)), RULES)
    [update] = state.lead_updates(KEY, RULES, 3_000)
    assert update["lead_id"] == lead["lead_id"] and update["first_seen"] == lead["first_seen"]
    assert update["updated_at"] > lead["updated_at"] and len(update["evidence"]) == 3


def test_a_late_older_event_supersedes_the_lead_it_redraws() -> None:
    state = BusinessState()
    state.accept(event("m2", days(50)), RULES)
    state.accept(event("m3", days(60)), RULES)
    [old] = state.lead_updates(KEY, RULES, 1_000)
    state.accept(event("m1", D), RULES)
    updates = {u["lead_id"]: u for u in state.lead_updates(KEY, RULES, 2_000)}
    assert updates[old["lead_id"]]["status"] == "SUPERSEDED"
    new_id = updates[old["lead_id"]]["superseded_by"]
    assert updates[new_id]["status"] == "OPEN" and len(updates[new_id]["evidence"]) == 3


def test_forgetting_old_facts_leaves_their_leads_as_published() -> None:
    rules = RuleSettings(history_days=300)
    state = BusinessState()
    for eid, day in (("m1", 0), ("m2", 10), ("m3", 20)):
        state.accept(event(eid, days(day)), rules)
    [lead] = state.lead_updates(KEY, rules, 1_000)
    state.accept(event("m4", days(305)), rules)  # m1 falls out of the history
    assert "test:m1" not in state.facts
    assert state.lead_updates(KEY, rules, 2_000) == []  # no re-drawn or superseded lead
    state.accept(event("m5", days(320)), rules)
    [later] = state.lead_updates(KEY, rules, 3_000)
    assert later["lead_id"] != lead["lead_id"] and later["status"] == "OPEN"


def test_state_round_trips_through_bytes() -> None:
    state = BusinessState()
    state.accept(event("m1", D), RULES)
    state.accept(event("m2", days(5)), RULES)
    state.lead_updates(KEY, RULES, 1_000)
    again = BusinessState.from_bytes(state.to_bytes())
    assert again == state
    assert again.lead_updates(KEY, RULES, 2_000) == []


def test_fact_keeps_what_the_rules_need() -> None:
    fact = to_fact(event("s1", D, kind=EventKind.SAMPLING_FAILURE, items=("苏丹红Ⅳ",)), RULES)
    assert storage.fact_of(storage.fact_record(fact)) == fact and fact.criminal.startswith("非食用物质")


# -- 以罚代刑: the figures the law uses, never the fine (issue 32, item 2) -----

def penalty(eid: str, offence: str, facts: str, fine: str) -> dict:
    """A market-supervision penalty as the connector makes it: value_yuan is its fine."""
    return {**event(eid, D, kind=EventKind.PENALTY, offence=offence, value=fine),
            "detail": ("cn.supervision.hub.PenaltyDetail", {"violation_facts": facts})}


def test_sales_stated_in_the_facts_make_the_referral_whatever_the_fine() -> None:
    liquor = penalty("p1", "以假充真销售白酒", "当事人以假充真销售白酒，销售金额6.2万元，违法所得1.1万元", "30000")
    assert criminal_reason(liquor, RULES) == "伪劣产品 销售金额62000元 ≥ 50000元 (刑法第140条)"
    assert rules_of(liquor) == ["CRIMINAL_REFERRAL"]


def test_a_large_fine_on_little_goods_is_no_referral() -> None:
    fined = penalty("p1", "生产销售伪劣食品", "当事人以次充好销售伪劣月饼，货值金额8000元", "120000")
    assert criminal_reason(fined, RULES) == "" and rules_of(fined) == []


@pytest.mark.parametrize(
    "facts, reason",
    [
        ("尚未销售的货值金额16万元", "伪劣产品 货值金额160000元 ≥ 150000元 (刑法第140条, 未遂)"),
        (
            "销售金额3万元，尚未销售货值金额6万元",
            "伪劣产品 销售金额30000元×3 + 未销售货值金额60000元 ≥ 150000元 (刑法第140条)",
        ),
        ("销售金额4.9万元", ""),
        ("销售金额3万元，尚未销售货值金额5万元", ""),
        ("销售金额共计50,000元", "伪劣产品 销售金额50000元 ≥ 50000元 (刑法第140条)"),
        ("销售金额１５万元", "伪劣产品 销售金额150000元 ≥ 50000元 (刑法第140条)"),
    ],
)
def test_article_140_on_the_stated_figures(facts: str, reason: str) -> None:
    assert criminal_reason(penalty("p1", "以次充好", f"当事人{facts}", "1000000"), RULES) == reason


def test_a_figure_stated_once_is_counted_once() -> None:
    """A penalty with no 违法行为类型 has its 违法事实 as its offence: its
    3万 of sales were read twice, as 6万, and referred."""
    facts = "当事人以次充好，销售金额3万元"
    assert criminal_reason(penalty("p1", facts, facts, "10000"), RULES) == ""
    stated_in_both = penalty("p2", "以次充好，销售金额6万元", "当事人以次充好，销售金额6万元", "10000")
    assert criminal_reason(stated_in_both, RULES) == "伪劣产品 销售金额60000元 ≥ 50000元 (刑法第140条)"
    assert criminal_reason(penalty("p3", "以次充好，销售金额6万元", "当事人以次充好", "10000"), RULES)  # the type's


def test_a_record_without_a_figure_says_so_and_guesses_nothing() -> None:
    silent = penalty("p1", "销售伪劣白酒", "当事人销售伪劣白酒", "120000")
    assert criminal_reason(silent, RULES) == ""
    assert missing_figure_note("销售伪劣白酒", "当事人销售伪劣白酒").startswith("涉案销售金额、货值金额未载明")
    assert missing_figure_note("销售伪劣白酒", "销售金额2万元") == ""
    assert missing_figure_note("未按规定公示许可证", "") == ""  # not an offence with a figure in law


def test_the_thresholds_of_article_140_are_configuration() -> None:
    low = RuleSettings(counterfeit_threshold_yuan=10_000, counterfeit_goods_value_threshold_yuan=30_000)
    assert criminal_reason(penalty("p1", "以次充好", "销售金额2万元", "0"), low)
    assert criminal_reason(penalty("p1", "以次充好", "货值金额3万元", "0"), low)
    assert not criminal_reason(penalty("p1", "以次充好", "销售金额2万元", "0"), RULES)
