"""Entity resolution: the decision as a function, and the worker's logic on an
in-memory bus under many arrival orders and interleavings (no broker)."""
from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from hub.domain.leads import BusinessState
from hub.domain.names import normalise_name
from hub.domain.resolution import (BY_LICENCE, BY_NAME_AND_ADDRESS, BY_NAME_IN_REGION, Candidate, Decision,
                                   ParkedRecord, ResolverState, decide)
from hub.samples import (BAKERY, CONDIMENT, FUSHUN, LIQUOR, PORK, VEG_BASE, YUXIANG, _headers, make_uscc, write_csv,
                         write_registry, write_scenario)
from connectors.samr_sampling import SamrSamplingConnector
from connectors.samr_inspection import SamrInspectionConnector
from tests.bus import Bus

SELLER = "unresolved:410502:安阳市文峰区惠民生鲜超市"
PORK_SAMPLE = "samr.sampling:GC26410500410230101"

# Every open lead of the scenario once resolution has run: the order of files
# and of messages must not change it.
EXPECTED = {
    (CONDIMENT.uscc, "REPEAT_OFFENDER"): {"samr.inspection:JC2026-0412-001", "samr.inspection:JC2026-0615-007",
                                          "samr.penalty:安北市监罚〔2026〕112号",
                                          "samr.sampling:GC26410500410230155:seller"},
    (FUSHUN.uscc, "CROSS_AGENCY"): {"samr.penalty:晋榆市监罚〔2026〕58号", "police.case:A1407022026090012:FILED"},
    (VEG_BASE.uscc, "CRIMINAL_REFERRAL"): {"agri.sampling:NY2026-AY-0087:克百威"},
    (LIQUOR.uscc, "CRIMINAL_REFERRAL"): {"police.case:A1407032026080031:FILED"},
    (PORK.uscc, "CRIMINAL_REFERRAL"): {f"{PORK_SAMPLE}:producer"},
    (PORK.uscc, "CROSS_AGENCY"): {f"{PORK_SAMPLE}:producer", "agri.sampling:NY2026-AY-0102:磺胺类(总量)"},
    (PORK.uscc, "REPEAT_OFFENDER"): {f"{PORK_SAMPLE}:producer", "agri.sampling:NY2026-AY-0102:磺胺类(总量)"},
    (BAKERY.uscc, "REPEAT_OFFENDER"): {"samr.penalty:安殷市监罚〔2026〕27号",
                                       "samr.sampling:GC26410500410230171:producer"},
    (SELLER, "CRIMINAL_REFERRAL"): {f"{PORK_SAMPLE}:seller"},  # nobody registers the supermarket
}


def candidate(uscc: str, name: str, address: str | None = None, licences: tuple[str, ...] = ()) -> Candidate:
    return Candidate(uscc, name, uscc[2:8], frozenset({normalise_name(name)}),
                     frozenset({normalise_name(address)} if address else ()), frozenset(licences))


def record(name: str, region: str | None = "410502", address: str | None = None,
           licence: str | None = None) -> ParkedRecord:
    return ParkedRecord("e1", "unresolved:x", "t", b"", normalise_name(name), name, region,
                        normalise_name(address) if address else None, licence, None, 0)


A = make_uscc("92", "410502", "MA4AAAAA1")
B = make_uscc("92", "410502", "MA4BBBBB2")
ELSEWHERE = make_uscc("92", "140702", "MA0CCCCC3")
CITY = make_uscc("91", "410500", "MA4DDDDD4")  # registered by the city: its USCC names the prefecture


def test_a_bracket_variant_name_resolves_within_its_region() -> None:
    found = decide(record(BAKERY.name.replace("(", "（").replace(")", "）") + " ", "410505"),
                   [candidate(BAKERY.uscc, BAKERY.name)])
    assert (found.business_id, found.method) == (BAKERY.uscc, BY_NAME_IN_REGION)
    assert "410505 河南省安阳市殷都区" in found.matched


def test_a_city_registration_matches_an_address_in_one_of_its_districts() -> None:
    assert decide(record("好运来饭店"), [candidate(CITY, "好运来饭店")]).business_id == CITY


def test_the_licence_wins_over_a_different_name() -> None:
    found = decide(record("老字号调味品店", licence="JY14105030009876"),
                   [candidate(A, "新名字调味品店", licences=("JY14105030009876",)), candidate(B, "老字号调味品店")])
    assert (found.business_id, found.method, found.matched) == (A, BY_LICENCE, "JY14105030009876")


def test_two_businesses_of_one_name_in_one_region_are_ambiguous_unless_the_address_tells() -> None:
    pool = [candidate(A, "好运来饭店", "河南省安阳市文峰区人民大道1号"), candidate(B, "好运来饭店", "河南省安阳市文峰区东风路9号")]
    ambiguous = decide(record("好运来饭店", address="河南省安阳市文峰区光明路3号"), pool)
    assert ambiguous.business_id is None and ambiguous.ambiguous and ambiguous.candidates == tuple(sorted((A, B)))
    assert "share this name" in ambiguous.reason
    found = decide(record("好运来饭店", address="河南省安阳市文峰区东风路 9 号"), pool)
    assert (found.business_id, found.method) == (B, BY_NAME_AND_ADDRESS)


def test_a_name_registered_only_elsewhere_or_not_at_all_stays_parked() -> None:
    elsewhere = decide(record("好运来饭店"), [candidate(ELSEWHERE, "好运来饭店")])
    assert elsewhere.business_id is None and not elsewhere.ambiguous and "outside" in elsewhere.reason
    assert decide(record("好运来饭店"), []) == Decision(reason="no registered business has this name (yet)")


def test_a_branch_is_not_its_parent() -> None:
    assert decide(record("鑫源肉类加工有限公司文峰分公司"), [candidate(A, "鑫源肉类加工有限公司")]).business_id is None


def test_resolver_state_round_trips_and_ignores_a_replayed_park() -> None:
    state = ResolverState()
    state.register(candidate(A, "好运来饭店", "某地"), relayed=False)
    watch, moves = state.park(record("好运来饭店"))
    assert watch == [] and [m.new.business_id for m in moves] == [A]
    assert state.park(record("好运来饭店")) == ([], [])
    assert ResolverState.from_bytes(state.to_bytes()) == state


def _run(folder: Path, order: list[str], seed: int, extra: dict[str, Path] | None = None) -> Bus:
    files = {**write_scenario(folder), **(extra or {})}
    bus = Bus()
    for name in order:
        bus.publish_file(name.split("#")[0], files[name])
    rng = random.Random(seed)
    bus.run(lambda n: rng.randrange(n))
    return bus


SCENARIO_FILES = ["samr.sampling", "samr.penalty", "samr.inspection", "police.case", "agri.sampling",
                  "registry.business"]


@hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(SCENARIO_FILES), seed=st.integers(0, 2**32))
def test_the_scenario_gives_the_same_leads_whatever_the_order(tmp_path: Path, order: list[str], seed: int) -> None:
    bus = _run(tmp_path, order, seed)
    assert {k: set(v) for k, v in bus.open_leads().items()} == EXPECTED
    assert bus.dead_letters == []
    [bakery] = [l for l in bus.leads.values() if l["business_key"] == BAKERY.uscc and l["status"] == "OPEN"]
    sampled = next(e for e in bakery["evidence"] if e["kind"] == "SAMPLING_FAILURE")
    assert sampled["resolution"] == (f"name_in_region: {normalise_name(BAKERY.name)} in 410505 河南省安阳市殷都区 -> "
                                     f"{BAKERY.uscc} {BAKERY.name} (learned from samr.penalty:安殷市监罚〔2026〕27号)")
    # The record counted under its provisional key while it waited: that lead is superseded.
    provisional = [l for l in bus.leads.values() if l["business_key"].startswith("unresolved:410502:安阳市文峰区鑫源")]
    assert all(l["status"] == "SUPERSEDED" and l["superseded_by"] is None for l in provisional)


def _ambiguity_files(folder: Path) -> dict[str, Path]:
    """Two registered 好运来饭店 in 文峰区, a third elsewhere; three sampling failures."""
    folder.mkdir(parents=True, exist_ok=True)
    registry = write_registry(folder / "registry-a.csv", [(A, "安阳市文峰区好运来饭店", "河南省安阳市文峰区人民大道1号", "")])
    registry_b = write_registry(folder / "registry-b.csv", [
        (B, "安阳市文峰区好运来饭店", "河南省安阳市文峰区东风路9号", ""),
        (ELSEWHERE, "安阳市文峰区好运来饭店", "山西省晋中市榆次区", "")])
    h = _headers(SamrSamplingConnector)

    def row(no: str, address: str, day: str) -> list[str]:
        values = {"序号": "1", "抽样编号": no, "标称生产企业名称": "", "标称生产企业地址": "",
                  "被抽样单位名称": "安阳市文峰区好运来饭店", "被抽样单位地址": address, "食品名称": "凉皮",
                  "规格型号": "", "商标": "", "生产日期/批号": day, "不合格项目‖检验结果‖标准值":
                  "苯甲酸及其钠盐(以苯甲酸计)‖1.2g/kg‖不得使用", "分类": "餐饮食品", "公告号": "2026年第20号",
                  "公告日期": day, "检验机构": "安阳市食品检验检测中心", "备注": ""}
        return [values[c] for c in h]

    sampling = write_csv(folder / "sampling.csv", h, [
        row("GC-AMBIG-1", "河南省安阳市文峰区光明路3号", "2026-08-01"),  # matches neither address
        row("GC-ADDR-2", "河南省安阳市文峰区东风路9号", "2026-08-05"),   # B's address
    ])
    return {"registry.business": registry, "registry.business#b": registry_b, "samr.sampling#ambiguity": sampling}


@pytest.mark.parametrize("order", list(itertools.permutations(["registry.business", "registry.business#b",
                                                                "samr.sampling#ambiguity"])))
def test_ambiguity_in_every_order(tmp_path: Path, order: tuple[str, ...]) -> None:
    extra = _ambiguity_files(tmp_path / "ambiguity")
    bus = Bus()
    for name in order:
        bus.publish_file(name.split("#")[0], extra[name])
    bus.run(lambda n: n - 1)  # drain the newest partition first: late registry records overtake
    states = {k: ResolverState.from_bytes(v) for k, v in bus.resolver.items()}
    waiting = [r for s in states.values() for r in s.unresolved()]
    assert [(r.event_id, r.decision.candidates) for r in waiting] == \
        [("samr.sampling:GC-AMBIG-1:seller", tuple(sorted((A, B))))]
    resolved = [r for s in states.values() for r in s.records.values() if r.decision.business_id]
    assert [(r.event_id, r.decision.business_id, r.decision.method) for r in resolved] == \
        [("samr.sampling:GC-ADDR-2:seller", B, BY_NAME_AND_ADDRESS)]
    assert bus.metrics.worker.unresolved.labels("ambiguous")._value.get() == 1
    # The ambiguous record's evidence stays under its provisional key, B holds the other one.
    facts = {k.decode(): [f.event_id for f in bs.facts.values() if not f.moved_to]
             for k, bs in ((k, BusinessState.from_bytes(v))
                           for k, v in bus.businesses.items())}
    assert facts[B] == ["samr.sampling:GC-ADDR-2:seller"]
    assert facts.get(A, []) == []  # resolved to A while B was unknown, then taken back
    assert facts["unresolved:410502:安阳市文峰区好运来饭店"] == ["samr.sampling:GC-AMBIG-1:seller"]


def test_a_licence_resolves_a_record_that_names_the_business_differently(tmp_path: Path) -> None:
    """An inspection without a USCC but with the licence; the registry knows the licence under the new name."""
    h = _headers(SamrInspectionConnector)
    values = {"检查编号": "JC-LIC-1", "被检查单位名称": "老街酱园", "统一社会信用代码": "",
              "许可证编号": CONDIMENT.licence, "检查日期": "2026-08-01", "检查人员": "", "检查结果": "不符合",
              "结果处理": "书面限期整改", "发现问题": "未索证索票", "整改期限": ""}
    inspection = write_csv(tmp_path / "inspection.csv", h, [[values[c] for c in h]])
    registry = write_registry(tmp_path / "registry.csv", [(CONDIMENT.uscc, CONDIMENT.name, CONDIMENT.address,
                                                          CONDIMENT.licence)])
    for first, second in (("samr.inspection", "registry.business"), ("registry.business", "samr.inspection")):
        bus = Bus()
        paths = {"samr.inspection": inspection, "registry.business": registry}
        bus.publish_file(first, paths[first])
        bus.run()
        bus.publish_file(second, paths[second])
        bus.run()
        state = BusinessState.from_bytes(
            bus.businesses[CONDIMENT.uscc.encode()])
        fact = state.facts["samr.inspection:JC-LIC-1"]
        assert fact.resolution.startswith(f"licence: {CONDIMENT.licence} -> {CONDIMENT.uscc}")
        assert bus.metrics.worker.resolved.labels("licence")._value.get() == 1
