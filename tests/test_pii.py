"""Keyed tokens and scrubbing by form (no broker)."""
from __future__ import annotations

import datetime as dt

import pytest
from stdnum.cn import ric

from connectors.police_case import clue_source
from hub.domain.pii import PersonalDataHasher, describe
from hub.samples import make_resident_id

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
    assert HASHER.desk("王建国") == HASHER.token("王建国") and HASHER.desk(HASHER.desk("王建国")) == HASHER.desk("王建国")


@pytest.mark.parametrize("written, kept", [
    ("群众举报", "群众举报"), ("市场监管部门移送", "市场监管部门移送"), ("晋中市市场监督管理局移送", "晋中市市场监督管理局移送"),
    ("群众举报（刘红梅 13912345678）", "群众举报"), ("刘红梅举报", "举报"), ("不明来源刘红梅", ""),
])
def test_the_informant_leaves_the_clue_source(written: str, kept: str) -> None:
    result = clue_source(written, HASHER)
    assert result is not None and "刘红梅" not in result and "13912345678" not in result and kept in result


def test_an_exception_is_described_without_its_message() -> None:
    try:
        {}["王建国"]
    except KeyError as exc:
        described = describe(exc)
    assert described.startswith("KeyError at test_pii.py:") and "王建国" not in described
