"""The new signals (hub.domain.signals) as plain functions and on the
in-memory bus, every message kind between businesses and indexes included:
complaints and serial filers, batch trace, area risk, the credit list and
related parties. ``test_signals_on_broker`` runs the demo's part end to end."""
from __future__ import annotations

import dataclasses
import json
import datetime as dt
import random
from pathlib import Path

import orjson
import pytest

from connectors.samr_complaint import SamrComplaintConnector
from connectors.samr_credit import SamrCreditConnector
from connectors.sdk import RowRejected
from hub.domain import indexes, signals, storage
from hub.domain.events import EventKind
from hub.domain.rules import Fact, to_fact
from hub.domain.leads import BusinessState
from hub.domain.pii import PersonalDataHasher
from hub.domain.teams import parse_teams, recipients
from hub.flow.messages import Link, Membership, Serial, resolution_message
from hub.flow.topics import RESOLUTION_TOPIC
from hub.devtools.samples import _headers, write_csv
from hub.trust import Role
from hub.devtools.signal_samples import (COMPLAINANTS, HAM_MAKER, LISTED, NEWCO, REPRESENTATIVE, SERIAL, SWEETS, TEA,
                                complaint_rows, write_signals)
from hub.testing.bus import Bus
from tests.test_rules import NOW, RULES, event

NOW_MS = int(NOW.timestamp() * 1000)
TODAY = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)


def complaint(no: str, day: dt.date, complainant: str, status: str = "ACCEPTED", key_suffix: str = "") -> dict:
    e = event(f"c{no}:{status}", day, kind=EventKind.COMPLAINT, adverse=False)
    e["source_record_id"] = no
    e["detail"] = ("cn.supervision.hub.ComplaintDetail",
                   {"complainant_ref": complainant, "status": status, "subject_matter": None,
                    "handling_unit": None, "concluded_on": None})
    return e


def sample(no: str, day: dt.date, *, producer: bool = True, seller: str = "甲超市", batch: str = "2026-10-01",
           region: str = "410502", items: tuple[str, ...] = ("亚硝酸盐",), category: str = "肉制品") -> dict:
    e = event(no, day, kind=EventKind.SAMPLING_FAILURE, items=items)
    e["business"] = {**e["business"], "role": "PRODUCER" if producer else "SELLER", "region_code": region}
    e["detail"] = ("cn.supervision.hub.SamplingFailureDetail",
                   {"product": "火腿肠", "specification": None, "brand": None, "batch": batch, "category": category,
                    "announcement_no": None, "announced_on": None, "laboratory": None,
                    "counterpart_name": seller if producer else "某厂", "remarks": None,
                    "counterpart_region": "410522" if producer else None})
    return e


def rules_of(state: BusinessState, key: str = "K") -> dict[str, dict]:
    return {lead["rules"][0]: lead for lead in state.lead_updates(key, RULES, NOW_MS)}


# -- complaints (投诉举报) ----------------------------------------------------

def test_three_distinct_complainants_within_30_days_raise_complaints_and_two_do_not() -> None:
    state = BusinessState(region_code="410502")
    for i, who in enumerate(["a", "b", "a"]):
        state.accept(complaint(str(i), dt.date(2026, 11, 1 + i), who), RULES)
    assert "COMPLAINTS" not in rules_of(state)  # three complaints, two complainants
    state.accept(complaint("9", dt.date(2026, 11, 20), "c"), RULES)
    lead = rules_of(state)["COMPLAINTS"]
    assert lead["severity"] == "MEDIUM" and len(lead["evidence"]) == 4


def test_complaints_spread_beyond_the_window_do_not_count() -> None:
    state = BusinessState()
    for i, who in enumerate("abc"):
        state.accept(complaint(str(i), dt.date(2026, 9, 1) + dt.timedelta(days=20 * i), who), RULES)
    assert "COMPLAINTS" not in rules_of(state)


def test_a_complaint_not_accepted_counts_for_nothing_even_beside_its_earlier_status() -> None:
    state = BusinessState()
    for i, who in enumerate("abc"):
        state.accept(complaint(str(i), dt.date(2026, 11, 1 + i), who), RULES)
    state.accept(complaint("2", dt.date(2026, 11, 5), "c", status="NOT_ACCEPTED"), RULES)  # 不予受理 later
    assert "COMPLAINTS" not in rules_of(state)


def test_a_serial_filers_complaints_stay_as_evidence_and_count_toward_nothing() -> None:
    state = BusinessState()
    for i, who in enumerate("abs"):
        state.accept(complaint(str(i), dt.date(2026, 11, 1 + i), who), RULES)
    lead = rules_of(state)["COMPLAINTS"]
    state.serial.add("s")
    assert rules_of(state)["COMPLAINTS"]["status"] == "SUPERSEDED"  # learned late: the lead is withdrawn
    assert "test:c2:ACCEPTED" in state.facts and lead["lead_id"] in state.leads


def test_a_complaint_corroborates_an_active_lead() -> None:
    state = BusinessState()
    state.accept(event("s1", dt.date(2026, 10, 1), kind=EventKind.SAMPLING_FAILURE, items=("克伦特罗",)), RULES)
    rules_of(state)
    state.accept(complaint("1", dt.date(2026, 10, 3), "a"), RULES)
    referral = rules_of(state)["CRIMINAL_REFERRAL"]
    [chained] = [e for e in referral["evidence"] if e["chained"]]
    assert chained["kind"] == "COMPLAINT" and referral["status"] == "OPEN"


def test_a_complaint_corroborates_a_lead_whichever_is_processed_first() -> None:
    """Two workers' partitions, or a replay after a kill, take a complaint and
    the findings of a lead in either order: the lead shows the same evidence."""
    failure = event("s1", dt.date(2026, 10, 1), kind=EventKind.SAMPLING_FAILURE, items=("克伦特罗",))
    before_window = complaint("0", dt.date(2026, 9, 20), "z")  # made before the lead's window began
    after = complaint("1", dt.date(2026, 10, 3), "a")
    leads = []
    for order in ([failure, "draw", before_window, after], [before_window, after, failure]):
        state = BusinessState()
        for step in order:
            if step == "draw":
                rules_of(state)
            else:
                state.accept(step, RULES)
        leads.append(rules_of(state)["CRIMINAL_REFERRAL"])
    assert [[(e["event_id"], e["chained"]) for e in lead["evidence"]] for lead in leads] == \
        [[("test:s1", False), ("test:c1:ACCEPTED", True)]] * 2


def test_a_batch_trace_corroborated_by_a_complaint_names_no_complainant_among_its_sellers() -> None:
    producer = BusinessState(region_code="410523")
    producer.accept(complaint("1", dt.date(2026, 11, 9), "complainant-ref"), RULES)
    for i, seller in enumerate(["甲超市", "乙超市"]):
        producer.accept(sample(f"s{i}", dt.date(2026, 11, 8 + i), seller=seller), RULES)
    producer.accept(complaint("2", dt.date(2026, 11, 12), "other-ref"), RULES)
    lead = rules_of(producer)["BATCH_TRACE"]
    assert [e["event_id"] for e in lead["evidence"] if e["chained"]] == ["test:c1:ACCEPTED", "test:c2:ACCEPTED"]
    assert [p["name"] for p in lead["parties"]] == ["乙超市", "甲超市"]
    assert not any("ref" in str(p["business_key"]) for p in lead["parties"])


def test_a_complainant_filing_against_20_businesses_in_30_days_is_serial_and_each_is_told_once() -> None:
    index = indexes.ComplainantIndex()
    for i in range(19):
        party = signals.Party(f"B{i}", None, f"店{i}", "410502", (), dt.date(2026, 10, 1))
        indexes.count(index, complaint(str(i), dt.date(2026, 10, 1 + i), "s"), party, RULES)
        assert indexes.serial_to_tell(index, RULES) == []
    party = signals.Party("B19", None, "店19", "410502", (), dt.date(2026, 10, 20))
    assert indexes.count(index, complaint("19", dt.date(2026, 10, 20), "s"), party, RULES)
    assert len(indexes.serial_to_tell(index, RULES)) == 20
    assert indexes.serial_to_tell(index, RULES) == []  # told already
    party = signals.Party("B20", None, "店20", "410502", (), dt.date(2026, 11, 20))
    indexes.count(index, complaint("20", dt.date(2026, 11, 20), "s"), party, RULES)
    assert indexes.serial_to_tell(index, RULES) == ["B20"]  # a later business, told as it comes
    told = indexes.from_bytes(signals.IndexKind.COMPLAINANT, indexes.to_bytes(index))
    assert told == index and indexes.serial_to_tell(told, RULES) == []  # what it told is part of its state


# -- batch trace (可追溯) ----------------------------------------------------

def test_one_batch_at_three_sellers_is_one_batch_trace_lead_and_no_repeat_offender() -> None:
    producer = BusinessState(region_code="410523")
    for i, seller in enumerate(["甲超市", "乙超市", "丙超市"]):
        producer.accept(sample(f"s{i}", dt.date(2026, 11, 10 + i), seller=seller), RULES)
    assert len(producer.facts) == 3  # alike results at three sellers: three samples, never merged
    leads = rules_of(producer)
    assert set(leads) == {"BATCH_TRACE"}
    lead = leads["BATCH_TRACE"]
    assert [p["name"] for p in lead["parties"]] == ["丙超市", "乙超市", "甲超市"]
    assert lead["also_regions"] == ["410522"] and lead["severity"] == "HIGH"
    # a second batch at one seller: two findings for repeat_offender (one a batch), not four
    producer.accept(sample("s9", dt.date(2026, 11, 20), batch="2026-10-15"), RULES)
    repeat = rules_of(producer)["REPEAT_OFFENDER"]
    assert [e["event_id"] for e in repeat["evidence"]] == ["test:s0", "test:s9"]


def test_one_batch_at_one_seller_is_no_batch_trace_and_the_same_report_twice_still_merges() -> None:
    producer = BusinessState()
    producer.accept(sample("s1", dt.date(2026, 11, 10)), RULES)
    producer.accept(sample("s1-city", dt.date(2026, 11, 11)), RULES)  # the city system's report of it
    assert len(producer.facts) == 1 and rules_of(producer) == {}


def test_a_batch_trace_reaches_the_sellers_county_teams() -> None:
    teams = parse_teams({"teams": [
        {"name": "samr-tangyin", "agency": "SAMR", "jurisdiction": ["410523"]},
        {"name": "samr-anyangxian", "agency": "SAMR", "jurisdiction": ["410522"]},
        {"name": "samr-huaxian", "agency": "SAMR", "jurisdiction": ["410526"]}]})
    producer = BusinessState(region_code="410523")
    for i, seller in enumerate(["甲超市", "乙超市"]):
        producer.accept(sample(f"s{i}", dt.date(2026, 11, 10 + i), seller=seller), RULES)
    lead = rules_of(producer)["BATCH_TRACE"]
    assert {t.name for t in recipients(lead, teams)} == {"samr-tangyin", "samr-anyangxian"}
    view = producer.routing_view(lead["lead_id"])
    assert view is not None and {t.name for t in recipients(view, teams)} == {"samr-tangyin", "samr-anyangxian"}


# -- area risk (风险预警) -----------------------------------------------------

def key_of(key: str) -> signals.IndexKey:
    parsed = signals.IndexKey.parse(key)
    assert parsed is not None
    return parsed


def area(businesses: list[tuple[str, dt.date]]) -> BusinessState:
    index = BusinessState()
    for key, day in businesses:
        e = sample(f"{key}-{day}", day, producer=False, region="410526", items=("铅(以Pb计)",), category="蔬菜制品")
        [area_key] = signals.area_keys(e)
        indexes.count_sample(index, key_of(area_key), e, signals.Party(key, None, key, "410526", (), day), RULES)
    return index


def test_an_area_names_a_member_by_its_uscc_whether_resolution_came_before_or_after_the_count() -> None:
    """Issue 30, item 4: an AREA_RISK lead named one member by its USCC in a
    storm and by its provisional key in the clean runs: the record was
    counted at the index under whichever key it had first."""
    uscc = "92410526MA44G0W7MR"
    provisional = signals.Party("unresolved:410526:c超市", None, "C超市", "410526", (), dt.date(2026, 11, 9))
    resolved = signals.Party(uscc, uscc, "C超市", "410526", (), dt.date(2026, 11, 9))
    found = []
    for order in ((provisional, resolved), (resolved, provisional), (resolved,)):
        index = area([("A", dt.date(2026, 11, 1)), ("B", dt.date(2026, 11, 5))])
        e = sample("c-1109", dt.date(2026, 11, 9), producer=False, region="410526", items=("铅(以Pb计)",),
                   category="蔬菜制品")
        [area_key] = signals.area_keys(e)
        for subject in order:
            indexes.count_sample(index, key_of(area_key), e, subject, RULES)
        found.append(rules_of(index, area_key)["AREA_RISK"]["parties"])
    assert found[0] == found[1] == found[2] and uscc in {p["business_key"] for p in found[0]}


def test_the_area_key_is_county_item_without_qualifier_and_category_and_only_for_the_sampled_business() -> None:
    seller = sample("x", dt.date(2026, 11, 1), producer=False, region="410526", items=("铅(以Pb计)",),
                    category="蔬菜制品")
    assert signals.area_keys(seller) == ["area:410526|铅|蔬菜制品"]
    assert signals.area_keys(sample("y", dt.date(2026, 11, 1), region="410526")) == []  # the producer's copy
    assert signals.area_keys(sample("z", dt.date(2026, 11, 1), producer=False, region="410500")) == []  # a city


def test_three_businesses_raise_one_area_lead_a_fourth_joins_it_two_raise_none() -> None:
    key = "area:410526|铅|蔬菜制品"
    assert rules_of(area([("A", dt.date(2026, 11, 1)), ("B", dt.date(2026, 11, 5))]), key) == {}
    three = area([("A", dt.date(2026, 11, 1)), ("A", dt.date(2026, 11, 2)), ("B", dt.date(2026, 11, 5))])
    assert rules_of(three, key) == {}  # one business twice is not two businesses
    index = area([("A", dt.date(2026, 11, 1)), ("B", dt.date(2026, 11, 5)), ("C", dt.date(2026, 11, 9))])
    first = rules_of(index, key)["AREA_RISK"]
    assert [p["business_key"] for p in first["parties"]] == ["A", "B", "C"]
    assert first["business_id"] is None and first["region"]["code"] == "410526"
    e = sample("D-1", dt.date(2026, 11, 12), producer=False, region="410526", items=("铅",), category="蔬菜制品")
    d = signals.Party("D", None, "D", "410526", (), dt.date(2026, 11, 12))
    indexes.count_sample(index, key_of(key), e, d, RULES)
    joined = rules_of(index, key)["AREA_RISK"]
    assert joined["lead_id"] == first["lead_id"] and len(joined["parties"]) == 4


@pytest.mark.parametrize("seed", range(8))
def test_area_risk_does_not_depend_on_arrival_order(seed: int) -> None:
    rng = random.Random(seed)
    arrivals = [(rng.choice("ABCDEF"), dt.date(2026, 9, 1) + dt.timedelta(days=rng.randrange(90))) for _ in range(12)]
    key = "area:410526|铅|蔬菜制品"

    def drafts(order: list[tuple[str, dt.date]]) -> set[tuple[str, frozenset[str]]]:
        index = area(order)
        return {
            (d.lead_id, frozenset(f.party for f in d.evidence))
            for d in signals.area_drafts(key, index.facts.values(), RULES)
        }

    shuffled = arrivals[:]
    rng.shuffle(shuffled)
    assert drafts(arrivals) == drafts(shuffled)


def test_area_teams_are_the_countys_samr_and_agri_desks() -> None:
    teams = parse_teams(
        {
            "teams": [
                {"name": "samr-huaxian", "agency": "SAMR", "jurisdiction": ["410526"]},
                {"name": "agri-huaxian", "agency": "AGRI", "jurisdiction": ["410526"]},
                {"name": "police-huaxian", "agency": "POLICE", "jurisdiction": ["410526"]},
                {"name": "samr-neihuang", "agency": "SAMR", "jurisdiction": ["410527"]},
            ]
        }
    )
    index = area([("A", dt.date(2026, 11, 1)), ("B", dt.date(2026, 11, 5)), ("C", dt.date(2026, 11, 9))])
    lead = rules_of(index, "area:410526|铅|蔬菜制品")["AREA_RISK"]
    assert {t.name for t in recipients(lead, teams)} == {"samr-huaxian", "agri-huaxian"}


# -- related parties (关联主体) -----------------------------------------------


def party(key: str, *reasons: str) -> signals.Party:
    return signals.Party(key, key, f"{key}公司", "410506", reasons, dt.date(2026, 11, 1))


def test_a_listed_members_representative_links_the_others_once_each() -> None:
    index = indexes.PersonIndex()
    assert indexes.member(index, party("A", "LISTED"), RULES) == []
    [(to, other)] = indexes.member(index, party("B"), RULES)
    assert to == "B" and other.key == "A" and other.reasons == ("LISTED",)
    assert indexes.member(index, party("B"), RULES) == []  # told already
    links = indexes.member(index, party("C", "CRIMINAL_REFERRAL"), RULES)
    assert sorted((to, o.key, o.reasons) for to, o in links) == [
        ("A", "C", ("CRIMINAL_REFERRAL",)),
        ("B", "C", ("CRIMINAL_REFERRAL",)),
        ("C", "A", ("LISTED",)),
    ]


def test_a_removed_listing_is_told_as_withdrawn_once_and_told_again_if_listed_again() -> None:
    """Issue 32: a RELATED_PARTY lead kept saying 已列入严重违法失信名单 after the removal."""
    index = indexes.PersonIndex()
    indexes.member(index, party("A", "LISTED"), RULES)
    indexes.member(index, party("B"), RULES)
    [(to, withdrawn)] = indexes.member(index, party("A"), RULES)  # A's listing removed
    assert to == "B" and withdrawn.reasons == ("-LISTED",)
    assert indexes.member(index, party("A"), RULES) == []  # told once
    [(_, again)] = indexes.member(index, party("A", "LISTED"), RULES)
    assert again.reasons == ("LISTED",)


def test_an_over_common_representative_links_nothing() -> None:
    rules = dataclasses.replace(RULES, related_party_max_businesses=3)
    index = indexes.PersonIndex()
    for key in "ABCD":
        indexes.member(index, party(key), rules)
    assert indexes.member(index, party("E", "LISTED"), rules) == []
    assert indexes.member(index, party("A", "LISTED"), rules) == []


def test_a_link_becomes_a_related_party_lead_naming_the_business_and_not_the_person() -> None:
    state = BusinessState(region_code="410506")
    fact = signals.link_fact(party("91410506MA46YX3E44", "LISTED"))
    state.facts[fact.event_id] = fact
    lead = rules_of(state)["RELATED_PARTY"]
    [p] = lead["parties"]
    assert p["name"] == "91410506MA46YX3E44公司" and p["business_id"] == "91410506MA46YX3E44"
    assert p["link"] == "LEGAL_REPRESENTATIVE:LISTED" and "已列入严重违法失信名单" in lead["evidence"][0]["finding"]


def test_a_listing_shows_on_every_lead_and_its_removal_too() -> None:
    state = BusinessState()
    for i in range(2):
        state.accept(event(f"i{i}", dt.date(2026, 11, 1 + i)), RULES)
    listing = event("credit:1:listed", dt.date(2026, 9, 1), kind=EventKind.CREDIT_LISTING, adverse=False)
    listing["detail"] = (
        "cn.supervision.hub.CreditListingDetail",
        {
            "listed_on": dt.date(2026, 9, 1),
            "reason": "吊销许可证",
            "authority": "安阳市市场监督管理局",
            "removed_on": None,
            "removal_reason": None,
            "legal_representative_ref": "pii:r",
        },
    )
    state.accept(listing, RULES)
    assert rules_of(state)["REPEAT_OFFENDER"]["credit_status"] == "LISTED"
    assert signals.reasons(state.credit, state.leads.values()) == ("LISTED",) and state.represented_by(listing)
    removal = {
        **listing,
        "event_id": "credit:1:removed",
        "detail": (listing["detail"][0], {**listing["detail"][1], "removed_on": dt.date(2026, 11, 20)}),
    }
    state.accept(removal, RULES)
    assert state.accept(listing, RULES).value == "duplicate"  # an older record does not undo the removal
    assert (
        rules_of(state)["REPEAT_OFFENDER"]["credit_status"] == "REMOVED"
        and signals.reasons(state.credit, state.leads.values()) == ()
    )


# -- connectors --------------------------------------------------------------


def test_the_complaint_connector_keeps_only_a_keyed_hash_of_the_complainant(tmp_path: Path) -> None:
    connector = SamrComplaintConnector(PersonalDataHasher("k" * 32))
    rows = complaint_rows()
    path = write_csv(tmp_path / "c.csv", _headers(SamrComplaintConnector), rows[:4], "gbk")
    events = [e for row in connector.read(path) for e in connector.events(row, TODAY)]
    assert [e["kind"] for e in events] == ["TIP_OFF", "COMPLAINT", "COMPLAINT", "COMPLAINT"]
    text = repr(events)
    for name, phone, id_number in [*COMPLAINANTS, SERIAL]:
        assert name not in text and phone not in text and id_number not in text
    refs = {e["detail"][1]["complainant_ref"] for e in events}
    assert len(refs) == 4 and all(r.startswith("pii:") for r in refs)
    assert events[3]["detail"][1]["status"] == "NOT_ACCEPTED" and events[0]["business"]["business_id"] == SWEETS.uscc


def test_the_complaint_connector_refuses_a_bad_division_and_a_row_without_a_complainant(tmp_path: Path) -> None:
    connector = SamrComplaintConnector(PersonalDataHasher("k" * 32))
    h = _headers(SamrComplaintConnector)
    good = dict(zip(h, complaint_rows()[0], strict=False))
    rows = [
        [{**good, "所属行政区划": "999999"}[c] for c in h],
        [{**good, "诉求人姓名": "", "诉求人联系电话": "", "诉求人证件号码": ""}[c] for c in h],
    ]
    codes = []
    for row in connector.read(write_csv(tmp_path / "bad.csv", h, rows, "utf-8")):
        with pytest.raises(RowRejected) as caught:
            connector.events(row, TODAY)
        codes.append(caught.value.reason_code)
    assert codes == ["invalid_region", "missing_value"]


def test_the_credit_connector_reads_listing_and_removal(tmp_path: Path) -> None:
    connector = SamrCreditConnector(PersonalDataHasher("k" * 32))
    h = _headers(SamrCreditConnector)
    base = {
        "主体名称": LISTED.name,
        "统一社会信用代码": LISTED.uscc,
        "法定代表人": REPRESENTATIVE[0],
        "法定代表人证件号码": REPRESENTATIVE[1],
        "列入日期": "2026-09-01",
        "列入事由": "吊销许可证",
        "作出决定机关": "安阳市市场监督管理局",
        "移出日期": "",
        "移出事由": "",
    }
    rows = [
        [base[c] for c in h],
        [{**base, "移出日期": "2026-11-01", "移出事由": "信用修复"}[c] for c in h],
        [{**base, "移出日期": "2026-08-01"}[c] for c in h],
    ]
    out = []
    for row in connector.read(write_csv(tmp_path / "credit.csv", h, rows, "utf-8")):
        try:
            out.append(connector.events(row, TODAY)[0])
        except RowRejected as exc:
            out.append(exc.reason_code)
    listed, removed, bad = out
    assert listed["event_id"].endswith(":listed") and removed["event_id"].endswith(":removed") and bad == "bad_date"
    assert REPRESENTATIVE[0] not in repr(out) and REPRESENTATIVE[1] not in repr(out)
    assert listed["detail"][1]["legal_representative_ref"] == removed["detail"][1]["legal_representative_ref"]


# -- on the in-memory bus ------------------------------------------------------


def signal_bus(folder: Path, pick: int = 0) -> Bus:
    bus = Bus(clock=lambda: TODAY.timestamp())
    for connector, path in write_signals(folder):
        bus.publish_file(connector, path)
    rng = random.Random(pick)
    bus.run((lambda n: 0) if pick == 0 else (lambda n: rng.randrange(n)))
    return bus


def final(bus: Bus) -> dict[tuple[str, str], dict]:
    return {(lead["business_name"], lead["rules"][0]): lead for lead in bus.leads.values()}


@pytest.mark.parametrize("pick", [0, 1, 2])
def test_the_demo_signals_in_any_interleaving(tmp_path: Path, pick: int) -> None:
    bus = signal_bus(tmp_path, pick)
    assert bus.dead_letters == []
    leads = final(bus)
    active = {k for k, lead in leads.items() if lead["status"] == "OPEN"}
    assert (SWEETS.name, "COMPLAINTS") in active
    assert (TEA.name, "COMPLAINTS") not in active  # the serial filer's complaint counts for nothing
    assert (HAM_MAKER[0], "BATCH_TRACE") in active and (HAM_MAKER[0], "REPEAT_OFFENDER") not in leads
    areas = [lead for lead in leads.values() if lead["rules"] == ["AREA_RISK"]]
    assert [lead["region"]["code"] for lead in areas] == ["410526"] and len(areas[0]["parties"]) == 3
    assert leads[(LISTED.name, "REPEAT_OFFENDER")]["credit_status"] == "LISTED"
    [related] = leads[(NEWCO.name, "RELATED_PARTY")]["parties"]
    assert (related["name"], related["business_id"]) == (LISTED.name, LISTED.uscc)
    serial_ref = PersonalDataHasher("bus-test-key-" + "k" * 32).ref(SERIAL[2])
    assert serial_ref in bus.state(TEA.uscc).serial
    for lead in bus.leads.values():  # no complainant, not even by hash, and no representative on any lead
        assert serial_ref not in repr(lead) and REPRESENTATIVE[0] not in repr(lead)


def test_a_removal_from_the_list_supersedes_the_related_party_lead_and_says_why(tmp_path: Path) -> None:
    bus = signal_bus(tmp_path)
    lead = final(bus)[(NEWCO.name, "RELATED_PARTY")]
    assert lead["status"] == "OPEN" and "已列入严重违法失信名单" in lead["evidence"][0]["finding"]
    credit = _headers(SamrCreditConnector)
    removal = {
        "主体名称": LISTED.name,
        "统一社会信用代码": LISTED.uscc,
        "法定代表人": REPRESENTATIVE[0],
        "法定代表人证件号码": REPRESENTATIVE[1],
        "列入日期": "2026-09-01",
        "列入事由": "因生产经营不符合食品安全标准的食品被处以吊销许可证",
        "作出决定机关": "安阳市市场监督管理局",
        "移出日期": "2026-11-25",
        "移出事由": "信用修复",
    }
    bus.publish_file("samr.credit", write_csv(tmp_path / "移出.csv", credit, [[removal[c] for c in credit]], "utf-8"))
    bus.run()
    after = bus.leads[lead["lead_id"]]
    assert after["status"] == "SUPERSEDED", after["status"]
    assert "已移出严重违法失信名单" in after["evidence"][0]["finding"]
    assert "已列入严重违法失信名单" not in repr(after["evidence"])
    assert final(bus)[(LISTED.name, "REPEAT_OFFENDER")]["credit_status"] == "REMOVED"


def test_signals_sent_to_the_wrong_kind_of_key_are_refused(tmp_path: Path) -> None:
    bus = Bus(clock=lambda: TODAY.timestamp())
    encode = bus.serde.encoder(RESOLUTION_TOPIC, "resolution")
    member = signals.Party("X", None, "x", None, ("LISTED",), dt.date(2026, 11, 1))
    records = [
        bus.record(RESOLUTION_TOPIC, SWEETS.uscc.encode(), encode(resolution_message(Membership(member)))),
        bus.record(RESOLUTION_TOPIC, b"area:410526|x|y", encode(resolution_message(Link(member)))),
        bus.record(
            RESOLUTION_TOPIC, b"person:pii:1", encode({**resolution_message(Membership(member)), "party": None})
        ),
        bus.record(
            RESOLUTION_TOPIC,
            SWEETS.uscc.encode(),
            encode({**resolution_message(Serial("complainant:x")), "index_key": None}),
        ),
    ]
    delivered = bus.process(records)
    assert [d["reason_code"] for d in delivered.dead_letters] == [
        "misrouted_resolution",
        "misrouted_resolution",
        "incomplete_resolution",
        "incomplete_resolution",
    ]
    # a team forging a link to smear a business: only workers write here
    forged = bus.record(
        RESOLUTION_TOPIC,
        SWEETS.uscc.encode(),
        encode(resolution_message(Link(member))),
        by=bus.signer(Role.TEAM, "samr-anyang"),
    )
    assert [d["reason_code"] for d in bus.process([forged]).dead_letters] == ["not_authorised"]


def test_state_v3_reads_as_v4() -> None:
    state = BusinessState(name="x")
    state.accept(event("i1", dt.date(2026, 11, 1)), RULES)
    raw = storage.load(state.to_bytes(), 4, {})
    old = {k: v for k, v in raw.items() if k not in ("c", "s", "y", "m")}
    old["v"], old["f"] = 3, [f[:17] for f in raw["f"]]
    back = BusinessState.from_bytes(orjson.dumps(old))
    assert back.facts["test:i1"] == state.facts["test:i1"] and back.credit is None and back.serial == set()


def test_the_indexes_are_stored_as_their_own_types_and_read_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 34: a complainant's and a person's index are index states with
    named members (not business states with facts standing for members);
    the worker's pass over its partitions reads past them."""
    bus = signal_bus(tmp_path)
    kinds = {key: indexes.index_kind(key) for key in bus.businesses}
    complainants = [k for k, kind in kinds.items() if kind is signals.IndexKind.COMPLAINANT]
    persons = [k for k, kind in kinds.items() if kind is signals.IndexKind.PERSON]
    assert complainants and persons
    serial = [indexes.from_bytes(signals.IndexKind.COMPLAINANT, bus.businesses[k]) for k in complainants]
    assert any(index.told for index in serial)  # the serial filer's businesses were told
    [person] = [indexes.from_bytes(signals.IndexKind.PERSON, bus.businesses[k]) for k in persons]
    assert isinstance(person, indexes.PersonIndex)
    assert {m.name for m in person.members.values()} >= {LISTED.name, NEWCO.name}
    assert indexes.Told(NEWCO.uscc, LISTED.uscc, "LISTED") in person.told
    for key in complainants + persons:
        assert json.loads(bus.businesses[key])["i"] in ("complainant", "person")
        assert indexes.to_bytes(indexes.from_bytes(kinds[key], bus.businesses[key])) == bus.businesses[key]
    with caplog.at_level("ERROR"):
        bus.flow.assign(frozenset(range(4)))  # no index is read as a business's state
    assert not [r for r in caplog.records if "cannot be read" in r.getMessage()]


def test_an_index_kept_in_a_business_states_layout_is_migrated() -> None:
    """Before index states had types of their own, a person's members were
    facts (USCC in ``summary``, reasons in ``identity``) and what an index
    told was a ``told:`` entry among the flagged: both read as the new types."""
    person = BusinessState()
    person.facts["member:A"] = Fact(
        "member:A",
        "SAMR",
        "REGISTRATION",
        dt.date(2026, 11, 1),
        False,
        "",
        "UA",
        "",
        0,
        identity="CRIMINAL_REFERRAL,LISTED",
        party="A",
        party_name="A公司",
        party_region="410506",
    )
    person.facts["member:unresolved:4105:b>c"] = Fact(
        "member:unresolved:4105:b>c",
        "SAMR",
        "REGISTRATION",
        dt.date(2026, 11, 2),
        False,
        "",
        "",
        "",
        0,
        party="unresolved:4105:b>c",
        party_name="B店",
    )
    person.flagged = {"told:unresolved:4105:b>c>A:LISTED", "told:A>unresolved:4105:b>c:LISTED"}
    read = indexes.from_bytes(signals.IndexKind.PERSON, person.to_bytes())
    assert read == indexes.PersonIndex(
        {
            "A": indexes.Member("A", "UA", "A公司", "410506", ("CRIMINAL_REFERRAL", "LISTED"), dt.date(2026, 11, 1)),
            "unresolved:4105:b>c": indexes.Member("unresolved:4105:b>c", None, "B店", None, (), dt.date(2026, 11, 2)),
        },
        {indexes.Told("unresolved:4105:b>c", "A", "LISTED"), indexes.Told("A", "unresolved:4105:b>c", "LISTED")},
    )
    complainant = BusinessState()
    complainant.facts["c1"] = dataclasses.replace(
        to_fact(complaint("1", dt.date(2026, 10, 1), "s"), RULES), event_id="c1", party="B1", party_name="店1"
    )
    complainant.flagged = {"told:B1"}
    assert indexes.from_bytes(signals.IndexKind.COMPLAINANT, complainant.to_bytes()) == indexes.ComplainantIndex(
        {"c1": indexes.Filing("c1", "B1", "店1", dt.date(2026, 10, 1))}, {"B1"}
    )


def test_a_complainants_index_keeps_the_history_a_business_keeps() -> None:
    """The same bound as a business's history (rules.kept_history): the
    latest ``history_max_events`` filings, ``history_days`` back from the latest."""
    rules = dataclasses.replace(RULES, history_max_events=3, history_days=30)
    index = indexes.ComplainantIndex()
    for i, day in enumerate([dt.date(2026, 8, 1), dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3),
                             dt.date(2026, 10, 4)]):
        party = signals.Party(f"B{i}", None, f"店{i}", "410502", (), day)
        indexes.count(index, complaint(str(i), day, "s"), party, rules)
    assert sorted(f.business for f in index.filings.values()) == ["B2", "B3", "B4"]


def test_an_unreadable_stored_index_fails_its_record_alone() -> None:
    """Attack on the store: a person's index whose stored bytes are neither
    an index record nor a business state of before. The record sent to it is
    a dead letter; its batch-mate, to another index, is applied, and the
    damaged index is left as it was, not overwritten."""
    bus = Bus(clock=lambda: TODAY.timestamp())
    encode = bus.serde.encoder(RESOLUTION_TOPIC, "resolution")
    bus.businesses[b"person:pii:bad"] = b'{"i": "person", "members": "nonsense"}'
    member = signals.Party("X", "X", "x公司", None, ("LISTED",), dt.date(2026, 11, 1))
    delivered = bus.process([
        bus.record(RESOLUTION_TOPIC, b"person:pii:bad", encode(resolution_message(Membership(member))), offset=0),
        bus.record(RESOLUTION_TOPIC, b"person:pii:good", encode(resolution_message(Membership(member))), offset=1)])
    assert [d["reason_code"] for d in delivered.dead_letters] == ["processing_error"]
    assert bus.businesses[b"person:pii:bad"] == b'{"i": "person", "members": "nonsense"}'
    good = indexes.from_bytes(signals.IndexKind.PERSON, bus.businesses[b"person:pii:good"])
    assert isinstance(good, indexes.PersonIndex) and set(good.members) == {"X"}
