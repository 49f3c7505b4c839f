"""Parsers and validators of the five connectors, on rows as agencies write them."""
import contextlib
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest


from connectors.agri_sampling import AgriSamplingConnector
from connectors.business_registry import BusinessRegistryConnector
from connectors.police_case import PoliceCaseConnector
from connectors.samr_inspection import SamrInspectionConnector
from connectors.samr_penalty import SamrPenaltyConnector
from connectors.samr_sampling import SamrSamplingConnector, parse_failures
from connectors.sdk import Connector, RowRejected
from hub.domain.events import event_key
from hub.devtools.samples import (CONDIMENT, FUSHUN, LEGAL_REP, LEGAL_REP_ID, LIQUOR, PORK, SUSPECT2_ID,
                         SUSPECT2_NAME, SUSPECT_ID, SUSPECT_NAME, VEG_BASE, _headers, agri_rows, inspection_rows,
                         penalty_rows, police_rows, sampling_rows, write_csv)
from hub.domain.pii import PersonalDataHasher

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _rows(connector: Connector, tmp_path: Path, rows: list[list[str]]):
    path = write_csv(tmp_path / f"{connector.name}.csv", list(connector.columns), rows, "gbk")
    return list(connector.read(path))


def _parse(connector: Connector, tmp_path: Path, rows: list[list[str]]):
    out = []
    for row in _rows(connector, tmp_path, rows):
        try:
            out.append(connector.events(row, NOW))
        except RowRejected as exc:
            out.append(exc)
    return out


def test_failure_column_packs_item_result_and_limit() -> None:
    found = parse_failures("克伦特罗‖0.52μg/kg‖不得检出；铅(以Pb计)‖0.8mg/kg‖≤0.5mg/kg\n苯甲酸‖1.2g/kg‖不得使用")
    assert [f["item"] for f in found] == ["克伦特罗", "铅(以Pb计)", "苯甲酸"]
    assert found[0]["value"] == 0.52 and found[0]["unit"] == "μg/kg" and found[0]["limit"] == "不得检出"
    assert found[1]["limit"] == "≤0.5mg/kg"
    assert all(f["failed"] for f in found)


def test_sampling_row_gives_one_event_per_business(tmp_path: Path, hasher) -> None:
    pork, soy, cake, bad = _parse(SamrSamplingConnector(hasher), tmp_path, sampling_rows())
    seller, producer = pork
    assert seller["business"]["role"] == "SELLER" and producer["business"]["role"] == "PRODUCER"
    assert producer["business"]["name"] == PORK.name and producer["business"]["business_id"] is None
    assert producer["event_id"] == "samr.sampling:GC26410500410230101:producer"
    assert producer["findings"][0]["item"] == "克伦特罗"
    assert producer["occurred_on"] == dt.date(2026, 7, 10)
    # No USCC: the provisional key carries the region the address names.
    assert event_key(producer) == f"unresolved:410502:{PORK.name}"
    assert (
        cake[1]["business"]["region_code"] == "410505" and cake[1]["business"]["name"] == "香满园食品（安阳）有限公司"
    )
    assert soy[0]["business"]["name"] == CONDIMENT.name and len(soy[0]["findings"]) == 2
    assert isinstance(bad, RowRejected) and bad.reason_code == "missing_value" and bad.column == "公告日期"


def test_penalty_amounts_are_in_wan_and_people_are_hashed(tmp_path: Path, hasher) -> None:
    fushun, _condiment, _bakery, bad = _parse(SamrPenaltyConnector(hasher), tmp_path, penalty_rows())
    event = fushun[0]
    assert event["business"]["business_id"] == FUSHUN.uscc
    assert event["business"]["region_code"] == "140702"
    detail = event["detail"][1]
    assert detail["fine_yuan"] == Decimal("25000.00") and detail["confiscated_yuan"] == Decimal("3600.00")
    assert event["value_yuan"] == Decimal("28600.00")
    assert event["person_refs"] == [hasher.ref(LEGAL_REP), hasher.ref(LEGAL_REP_ID)]
    assert LEGAL_REP not in repr(event) and LEGAL_REP_ID not in repr(event)
    assert isinstance(bad, RowRejected) and bad.reason_code == "invalid_business_id"
    assert bad.column == "行政相对人代码_1(统一社会信用代码)"


def test_penalty_on_a_natural_person_hides_the_name(tmp_path: Path, hasher) -> None:
    row = penalty_rows()[0]
    header = list(SamrPenaltyConnector.columns)
    row[header.index("行政相对人名称")] = "孙小明"
    row[header.index("行政相对人类别")] = "自然人"
    row[header.index("行政相对人代码_1(统一社会信用代码)")] = ""
    [[event]] = _parse(SamrPenaltyConnector(hasher), tmp_path, [row])
    assert "孙小明" not in repr(event)
    assert event["business"]["name"] == f"自然人 {hasher.ref('孙小明')}"


def test_penalty_bad_amount_names_the_column(tmp_path: Path, hasher) -> None:
    row = penalty_rows()[0]
    row[list(SamrPenaltyConnector.columns).index("罚款金额(万元)")] = "两万"
    [bad] = _parse(SamrPenaltyConnector(hasher), tmp_path, [row])
    assert bad.reason_code == "bad_number" and bad.column == "罚款金额(万元)"


def test_a_rectification_deadline_ahead_is_kept_and_a_finding_ahead_is_not(tmp_path: Path, hasher) -> None:
    """Issue 32: a 整改期限 30 days after the export was rejected as in the
    future, and the whole inspection, its 不符合 finding included, was lost."""
    header = list(SamrInspectionConnector.columns)
    row = list(inspection_rows()[0])
    row[header.index("检查日期")] = "2026-10-30"
    row[header.index("整改期限")] = "2026-12-01"  # 30 days after NOW
    too_far = list(row)
    too_far[header.index("整改期限")] = "2028-01-01"  # beyond max_deadline_ahead_days: a typo
    found_ahead = list(row)
    found_ahead[header.index("检查日期")] = "2026-11-20"  # an inspection 19 days from now did not happen yet
    kept, typo, future = _parse(SamrInspectionConnector(hasher), tmp_path, [row, too_far, found_ahead])
    assert kept[0]["adverse"] and kept[0]["detail"][1]["rectify_by"] == dt.date(2026, 12, 1)
    assert isinstance(typo, RowRejected) and typo.reason_code == "date_out_of_range" and typo.column == "整改期限"
    assert isinstance(future, RowRejected) and future.reason_code == "date_out_of_range" and future.column == "检查日期"


def test_inspection_results(tmp_path: Path, hasher) -> None:
    first, _second, _noodle, pork, bad = _parse(SamrInspectionConnector(hasher), tmp_path, inspection_rows())
    assert first[0]["adverse"] and first[0]["detail"][1]["result"] == "NON_COMPLIANT"
    assert first[0]["detail"][1]["handling"] == "RECTIFY_BY_DEADLINE"
    assert first[0]["detail"][1]["rectify_by"] == dt.date(2026, 4, 30)
    assert first[0]["business"]["licence_number"] == CONDIMENT.licence
    assert not pork[0]["adverse"]
    assert "刘洋" not in repr(first)
    assert isinstance(bad, RowRejected) and bad.reason_code == "unknown_value" and bad.column == "检查结果"


def test_police_case_masks_suspects_everywhere(tmp_path: Path, hasher) -> None:
    fushun, liquor = _parse(PoliceCaseConnector(hasher), tmp_path, police_rows())
    event = liquor[0]
    assert event["event_id"] == "police.case:A1407032026080031:FILED"
    assert event["business"]["business_id"] == LIQUOR.uscc
    assert event["value_yuan"] == Decimal("86500.00")
    assert event["occurred_on"] == dt.date(2026, 8, 15)
    text = repr(fushun) + repr(liquor)
    for secret in (SUSPECT_NAME, SUSPECT_ID, SUSPECT2_NAME, SUSPECT2_ID):
        assert secret not in text
    assert event["detail"][1]["case_name"] == f"{hasher.token(SUSPECT_NAME)}等生产、销售伪劣产品案"
    assert set(event["person_refs"]) == {hasher.ref(v) for v in (SUSPECT_NAME, SUSPECT2_NAME, SUSPECT_ID, SUSPECT2_ID)}


def test_withdrawn_case_is_not_adverse(tmp_path: Path, hasher) -> None:
    row = police_rows()[0]
    row[list(PoliceCaseConnector.columns).index("案件状态")] = "撤案"
    [[event]] = _parse(PoliceCaseConnector(hasher), tmp_path, [row])
    assert not event["adverse"] and event["event_id"].endswith(":WITHDRAWN")


def test_agri_sampling(tmp_path: Path, hasher) -> None:
    carbofuran, procymidone, pork, bad = _parse(AgriSamplingConnector(hasher), tmp_path, agri_rows())
    event = carbofuran[0]
    assert event["adverse"] and event["business"]["business_id"] == VEG_BASE.uscc
    assert event["findings"] == [
        {"item": "克百威", "result": "0.12mg/kg", "value": 0.12, "unit": "mg/kg", "limit": "0.02mg/kg", "failed": True}
    ]
    assert event["event_id"] == "agri.sampling:NY2026-AY-0087:克百威"
    assert not procymidone[0]["adverse"]
    assert pork[0]["business"]["business_id"] == PORK.uscc
    assert isinstance(bad, RowRejected) and bad.reason_code == "bad_date" and bad.column == "抽样日期"


def test_dead_letter_copy_of_a_row_hides_people(tmp_path: Path, hasher) -> None:
    connector = PoliceCaseConnector(hasher)
    row = _rows(connector, tmp_path, police_rows())[1]
    redacted = connector.redacted_original(row)
    text = repr(redacted)
    for secret in (SUSPECT_NAME, SUSPECT_ID, SUSPECT2_NAME, SUSPECT2_ID):
        assert secret not in text
    assert redacted["犯罪嫌疑人姓名"] == f"{hasher.ref(SUSPECT_NAME)};{hasher.ref(SUSPECT2_NAME)}"
    assert redacted["案件名称"] == f"{hasher.token(SUSPECT_NAME)}等生产、销售伪劣产品案"


def test_registry_entries_teach_names_licences_and_old_numbers(tmp_path: Path, hasher) -> None:
    rows = [
        [
            CONDIMENT.uscc,
            CONDIMENT.name,
            CONDIMENT.address,
            f"{CONDIMENT.licence}； jy14105030012345",
            "410503000012345",
            "2015-03-02",
            "安阳市北关区市场监督管理局",
        ],
        ["", "无代码饭店", "", "", "", "", ""],
        [PORK.uscc, PORK.name, "", "SC123", "", "", ""],
    ]
    condiment, no_uscc, bad_licence = _parse(BusinessRegistryConnector(hasher), tmp_path, rows)
    [entry] = condiment
    assert entry["kind"] == "REGISTRATION" and entry["adverse"] is False and entry["findings"] == []
    assert entry["business"]["business_id"] == CONDIMENT.uscc and entry["business"]["region_code"] == "410503"
    assert entry["business"]["registration_number"] == "410503000012345"
    assert entry["detail"][1]["licences"] == [CONDIMENT.licence, "JY14105030012345"]  # (record name, fields)
    assert entry["occurred_on"] == dt.date(2015, 3, 2)
    assert isinstance(no_uscc, RowRejected) and no_uscc.reason_code == "missing_value"
    assert (
        isinstance(bad_licence, RowRejected)
        and bad_licence.reason_code == "invalid_licence"
        and bad_licence.column == "许可证编号"
    )


def test_a_file_is_named_without_its_folders_and_its_numbers_as_tokens(tmp_path: Path, hasher) -> None:
    """Attack (a careless clerk): an export named after a person, in a folder
    named after another. Events, rows and file-level errors name the file by
    its name alone, the ID and telephone numbers in it as keyed tokens."""
    from connectors.tabular import FileFormatError

    folder = tmp_path / f"案卷-{LEGAL_REP_ID}"
    folder.mkdir()
    connector = SamrPenaltyConnector(hasher)
    path = write_csv(folder / f"罚款-{SUSPECT_ID}-139 1234 5678.csv", list(connector.columns), penalty_rows(), "gbk")
    shown = f"罚款-{hasher.token(SUSPECT_ID)}-{hasher.token('13912345678')}.csv"
    assert connector.shown_name(path) == shown
    rows = list(connector.read(path))
    events = []
    for row in rows:
        with contextlib.suppress(RowRejected):  # penalty_rows holds rows made to be rejected
            events += connector.events(row, NOW)
    assert events and {row.file for row in rows} == {e["source"]["file"] for e in events} == {shown}
    unsupported = path.rename(folder / f"罚款-{SUSPECT_ID}.{SUSPECT_ID}")
    with pytest.raises(FileFormatError) as refused:
        list(connector.read(unsupported))
    assert SUSPECT_ID not in str(refused.value) and LEGAL_REP_ID not in str(refused.value)


def test_a_spaced_id_number_is_one_value_and_the_rest_of_its_row_arrives_intact(tmp_path: Path, hasher) -> None:
    """Issue 31: `4105 0219 8001 0100 38` in the complainant's ID column was
    split as five "people", and every cell of the row had those fragments
    replaced: the complaint's 所属行政区划 410506 became `[pii:…]06`, and
    the row was rejected (invalid_region), lost."""
    from connectors.samr_complaint import SamrComplaintConnector
    from hub.devtools.signal_samples import complaint_rows

    header = list(SamrComplaintConnector.columns)
    row = list(complaint_rows()[0])
    row[header.index("所属行政区划")] = "410506"
    row[header.index("诉求人证件号码")] = "4105 0219 8001 0100 38"
    row[header.index("诉求人联系电话")] = ""
    row[header.index("诉求人姓名")] = "王建国"
    row[header.index("涉及商品或服务")] = "蛋糕2019个，金额8001.38元，0100批次"
    row[header.index("问题描述")] = "2026-11-02购买，身份证4105 0219 8001 0100 38，金额8001.38元"
    [[event]] = _parse(SamrComplaintConnector(hasher), tmp_path, [row])
    assert event["detail"][1]["complainant_ref"] == hasher.ref("410502198001010038")  # the whole ID, canonical
    assert event["detail"][1]["subject_matter"] == "蛋糕2019个，金额8001.38元，0100批次"  # no fragment scrubbed
    assert "410502198001010038" not in repr(event) and "4105 0219 8001 0100 38" not in repr(event)


def _penalty(subject, decision: str, violation: str, facts: str, fine_wan: str) -> list[str]:
    values = {
        "行政相对人名称": subject.name,
        "行政相对人类别": "法人及非法人组织",
        "行政相对人代码_1(统一社会信用代码)": subject.uscc,
        "处罚决定书文号": decision,
        "违法行为类型": violation,
        "违法事实": facts,
        "处罚类别": "罚款",
        "处罚内容": f"罚款{fine_wan}万元",
        "罚款金额(万元)": fine_wan,
        "处罚决定日期": "2026-10-20",
        "处罚机关": "晋中市太谷区市场监督管理局",
    }
    return [values.get(c, "") for c in _headers(SamrPenaltyConnector)]


def test_a_penalty_is_referred_on_the_sales_it_states_never_on_its_fine(tmp_path: Path) -> None:
    """Issue 32, item 2, through a worker's flow: 6.2万 of sales fined 3万 goes
    to the police; a 12万 fine on 8 000 元 of goods does not; a record that
    states no figure says so on the evidence."""
    from hub.testing.bus import Bus

    path = write_csv(
        tmp_path / "行政处罚.csv",
        _headers(SamrPenaltyConnector),
        [
            _penalty(
                LIQUOR, "晋太市监罚〔2026〕401号", "以假充真销售白酒", "当事人以假充真销售白酒，销售金额6.2万元", "3"
            ),
            _penalty(FUSHUN, "晋榆市监罚〔2026〕402号", "生产销售伪劣月饼", "当事人以次充好，货值金额8000元", "12"),
            _penalty(CONDIMENT, "安北市监罚〔2026〕403号", "销售伪劣酱油", "当事人销售伪劣酱油", "12"),
        ],
        "gbk",
    )
    bus = Bus(clock=lambda: NOW.timestamp())
    bus.publish_file("samr.penalty", path)
    bus.run()
    by_business = {lead["business_id"]: lead for lead in bus.leads.values()}
    assert by_business[LIQUOR.uscc]["rules"] == ["CRIMINAL_REFERRAL"]
    assert set(by_business) == {LIQUOR.uscc}  # a fine alone refers nobody
    silent = next(
        e
        for e in _parse(
            SamrPenaltyConnector(PersonalDataHasher("k")),
            tmp_path,
            [_penalty(CONDIMENT, "安北市监罚〔2026〕403号", "销售伪劣酱油", "当事人销售伪劣酱油", "12")],
        )[0]
    )
    assert "涉案销售金额、货值金额未载明" in silent["summary"]
