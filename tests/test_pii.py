"""Keyed tokens and scrubbing by form (no broker)."""
from __future__ import annotations

import datetime as dt
import re
import unicodedata

import pytest
from stdnum.cn import ric

from connectors.police_case import clue_source
from hub.domain.pii import PersonalDataHasher, describe, split_people
from hub.devtools.samples import CONDIMENT, FUSHUN, LIQUOR, VEG_BASE, YUXIANG, make_resident_id

HASHER = PersonalDataHasher("pii-test-key")


@pytest.mark.parametrize("division", ["410502", "140702", "140703", "410505", "110105"])
def test_sample_ids_have_right_check_digits(division: str) -> None:
    number = make_resident_id(division, dt.date(1980, 2, 29), "123")
    assert number[-1] == ric.calc_check_digit(number)


VALID = make_resident_id("140703", dt.date(1978, 5, 17), "301")


@pytest.mark.parametrize("written", [
    VALID,                                                   # valid, from a division stdnum's table lacks
    make_resident_id("410505", dt.date(1990, 1, 1), "022"),   # ...another (and an X check, maybe)
    VALID[:-1] + ("0" if VALID[-1] != "0" else "1"),         # a checksum typo
    "410502780517301",                                       # 15 digits
    f"{VALID[:6]} {VALID[6:14]} {VALID[14:]}",               # spaced
    "-".join([VALID[:6], VALID[6:14], VALID[14:]]),          # hyphens
    VALID.translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"}),  # full-width
    "13912345678", "139 1234 5678", "+86 139-1234-5678", "０３５４－６２３１２３４", "0354-6231234", "(0354)6231234",
])
def test_ids_and_phones_are_found_by_form(written: str) -> None:
    text = f"当事人（{written}）称"
    scrubbed = HASHER.scrub(text)
    assert scrubbed is not None and written not in scrubbed and scrubbed.startswith("当事人（[pii:")


def test_one_person_one_token_however_typed() -> None:
    spaced = f"{VALID[:6]} {VALID[6:14]} {VALID[14:]}"
    full = VALID.translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})
    assert HASHER.scrub(spaced) == HASHER.scrub(full) == HASHER.scrub(VALID) == f"[{HASHER.ref(VALID)}]"
    assert HASHER.ref("+86 139-1234-5678") == HASHER.ref("13912345678")
    assert PersonalDataHasher("another-key").ref(VALID) != HASHER.ref(VALID)


@pytest.mark.parametrize("text", ["金额60000元", "日期2026-10-20", "晋榆市监罚〔2026〕58号", "91410502MA3XK1Q2Y8",
                                  "SC11014050200123", "抽样编号GC26410500410230101", "0.52μg/kg"])
def test_what_is_not_personal_stays(text: str) -> None:
    assert HASHER.scrub(text) == text


def test_names_of_the_row_wherever_they_recur_and_feedback_by_token() -> None:
    people = ["王建国", "欧阳建华"]
    assert HASHER.scrub("王建国、欧阳建华等生产伪劣产品案", people) == \
        f"{HASHER.token('王建国')}、{HASHER.token('欧阳建华')}等生产伪劣产品案"
    known = {HASHER.ref(p) for p in people}
    note = "已将王建国移送，欧阳建华取保候审，王建国的电话13912345678"
    assert HASHER.names_in(note, known) == ["王建国", "欧阳建华", "王建国"]
    scrubbed = HASHER.scrub_feedback(note, known)
    assert scrubbed is not None and not any(p in scrubbed for p in people) and "13912345678" not in scrubbed
    assert HASHER.scrub_feedback("已立案侦查，移送审查起诉", known) == "已立案侦查，移送审查起诉"
    assert HASHER.desk("王建国") == HASHER.token("王建国") and HASHER.desk(HASHER.desk("王建国")) == HASHER.desk(
        "王建国"
    )


@pytest.mark.parametrize(
    "written, kept",
    [
        ("群众举报", "群众举报"),
        ("市场监管部门移送", "市场监管部门移送"),
        ("晋中市市场监督管理局移送", "晋中市市场监督管理局移送"),
        ("群众举报（刘红梅 13912345678）", "群众举报"),
        ("刘红梅举报", "举报"),
        ("不明来源刘红梅", ""),
    ],
)
def test_the_informant_leaves_the_clue_source(written: str, kept: str) -> None:
    result = clue_source(written, HASHER)
    assert result is not None and "刘红梅" not in result and "13912345678" not in result and kept in result


def test_an_exception_is_described_without_its_message() -> None:
    try:
        {}["王建国"]
    except KeyError as exc:
        described = describe(exc)
    assert described.startswith("KeyError at test_pii.py:") and "王建国" not in described


# Issue 31, item 3: numbers in the forms the scrubber missed.
ODD_ID = make_resident_id("410502", dt.date(1977, 3, 3), "341")


def _clear_digits(scrubbed: str) -> str:
    """What is left of digits once the tokens are out: a number in clear shows here whatever its separators."""
    return "".join(
        c
        for c in unicodedata.normalize("NFKC", re.sub(r"\[pii:[0-9a-f]{24}\]", "|", scrubbed))
        if c.isdigit() or c in "X|"
    )


@pytest.mark.parametrize(
    "written, number",
    [
        (f"{ODD_ID[:6]}  {ODD_ID[6:]}", ODD_ID),  # two spaces
        (f"{ODD_ID[:6]}\u00a0{ODD_ID[6:14]}\u00a0{ODD_ID[14:]}", ODD_ID),  # no-break spaces
        (f"{ODD_ID[:6]}.{ODD_ID[6:14]}.{ODD_ID[14:]}", ODD_ID),  # dots
        ("139.8765.4322", "13987654322"),
        (f"ID{ODD_ID[:-1]}X", f"{ODD_ID[:-1]}X"),  # a letter touching it
        ("Tel13987654321", "13987654321"),
        ("13987654324abc", "13987654324"),
        ("0354 - 3019876", "03543019876"),
        ("1398765432113912345678", "13987654321"),  # two run together
        (f"{ODD_ID}13912345678", ODD_ID),
        ("4105 0219 8001 0100 38", "410502198001010038"),
        ("1 3 9 8 7 6 5 4 3 2 1", "13987654321"),  # a digit at a time
    ],
)
def test_numbers_in_odd_forms_are_found(written: str, number: str) -> None:
    for text in (written, f"当事人{written}称", f"电话：{written}。"):
        scrubbed = HASHER.scrub(text)
        assert scrubbed is not None and number not in _clear_digits(scrubbed), scrubbed
    assert HASHER.scrub(written) is not None and HASHER.token(number) in HASHER.scrub(written)  # type: ignore[operator]


def test_two_numbers_run_together_are_two_people() -> None:
    assert HASHER.scrub("1398765432113912345678") == HASHER.token("13987654321") + HASHER.token("13912345678")


def test_an_id_in_a_files_name_after_a_letter() -> None:
    scrubbed = HASHER.scrub(f"刑事案件_ID{ODD_ID}.csv")
    assert scrubbed == f"刑事案件_ID{HASHER.token(ODD_ID)}.csv"


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-15",
        "2026.03.15-2026.04.15",
        "2026 03 15",
        "检查日期2026-03-15，整改期限2026-03-29",
        "销售金额6.2万元",
        "罚款120000元，没收违法所得8000元",
        "JC2026-0412-001",
        "SP202603150001234",
        "A1407032026080031",
        "所属行政区划410506",
        "晋榆市监罚〔2026〕302号",
        "91140100MA0L2K3X4Y",
        "SC11514070300777",
        "批号20260801-03",
        "第3、4、5项",
        "菌落总数5000CFU/g（≤1000CFU/g）",
        "2026年第40号",
    ],
)
def test_dates_amounts_and_codes_beside_numbers_stay(text: str) -> None:
    assert HASHER.scrub(text) == text


def test_a_date_beside_a_number_stays_and_the_number_goes() -> None:
    assert HASHER.scrub("2026-03-15 13987654321") == f"2026-03-15 {HASHER.token('13987654321')}"
    assert HASHER.scrub("2026.03.15 139 8765 4321") == f"2026.03.15 {HASHER.token('13987654321')}"


@pytest.mark.parametrize(
    "cell, names",
    [
        ("猪八戒（法人）", ["猪八戒"]),
        ("王建国（男，45岁）", ["王建国"]),
        ("孙悟空(经营者)", ["孙悟空"]),
        ("法人：猪八戒", ["猪八戒"]),
        ("王建国（男，45岁）、李秀英（女）", ["王建国", "李秀英"]),
    ],
)
def test_a_name_in_a_personal_column_is_the_person_without_the_clerks_note(cell: str, names: list[str]) -> None:
    assert split_people(cell) == names


@pytest.mark.parametrize(
    "text, name",
    [
        ("经办人钱多多", "钱多多"),
        ("民警郑小虎到场", "郑小虎"),
        ("检测员孙丽娜称", "孙丽娜"),
        ("负责人郑小虎", "郑小虎"),
        ("举报人王秀兰反映", "王秀兰"),
        ("联系人：赵四", "赵四"),
        ("当事人李强对违法事实无异议", "李强"),
        ("负责人为郑小虎", "郑小虎"),
        ("法定代表人欧阳建华", "欧阳建华"),
        ("执法人员刘洋、陈静现场检查", "陈静"),
    ],
)
def test_names_introduced_by_a_role_word_are_found_wherever_they_recur(text: str, name: str) -> None:
    scrubbed = HASHER.scrub(f"{text}。后经核实，{name}确有此事")
    assert scrubbed is not None and name not in scrubbed and HASHER.token(name) in scrubbed


# Free text where a role word is followed by no name, and business names: all kept word for word.
KEPT = [
    "负责人未到场",
    "当事人对违法事实无异议",
    "负责人手机号未登记",
    "经营者应当建立进货查验记录",
    "联系人不详",
    "当事人于2026年3月15日",
    "执法人员现场检查",
    "民警已出警",
    "当事人已整改",
    "举报人要求保密",
    "法人及非法人组织",
    "负责人签字确认",
    "检测员在场",
    *(b.name for b in (FUSHUN, LIQUOR, VEG_BASE, YUXIANG, CONDIMENT)),
    "太谷区老王家小卖部",
    "晋中市榆次区张三烧烤店",
    "山西杏花村汾酒厂股份有限公司",
    "平遥县牛肉集团有限公司",
    "安阳市文峰区惠民生鲜超市",
    "北京同仁堂（太原）药店有限责任公司",
]


@pytest.mark.parametrize("text", KEPT)
def test_no_name_is_found_where_a_role_word_has_none_and_business_names_keep_their_words(text: str) -> None:
    assert HASHER.scrub(text) == text
