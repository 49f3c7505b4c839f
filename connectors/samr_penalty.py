"""Market supervision administrative penalties (行政处罚), the national 双公示 layout.

Amounts are published in 万元 (10 000 yuan). The legal representative's name
and ID number are personal data: only keyed hashes leave the connector. A
natural person as the penalised party (行政相对人类别 自然人) is personal data too.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from connectors.sdk import Connector, Row, RowRejected, SourceRow, business
from hub.domain.events import Agency, Event, EventKind, make_event
from hub.domain.rules import missing_figure_note

_LICENCE_IN_TEXT = re.compile(r"(?:SC|JY)\d{14}")
_SPLIT_KINDS = re.compile(r"[;；、,，]+")
TEN_THOUSAND = 10_000


class SamrPenaltyConnector(Connector):
    name = "samr.penalty"
    agency = Agency.SAMR
    description = "SAMR administrative penalty decisions (行政处罚, 双公示 layout); amounts in 万元"
    columns = {
        "行政相对人名称": "subject_name", "行政相对人类别": "subject_category",
        "行政相对人代码_1(统一社会信用代码)": "uscc", "行政相对人代码_2(工商注册号)": "registration_no",
        "法定代表人": "legal_rep", "法定代表人证件号码": "legal_rep_id",
        "处罚决定书文号": "decision_no", "违法行为类型": "violation_type", "违法事实": "facts",
        "处罚依据": "legal_basis", "处罚类别": "penalty_kinds", "处罚内容": "penalty_content",
        "罚款金额(万元)": "fine_wan", "没收违法所得、没收非法财物的金额(万元)": "confiscated_wan",
        "暂扣或吊销证照名称及编号": "licence_action", "处罚决定日期": "decided_on",
        "处罚机关": "authority", "处罚机关统一社会信用代码": "authority_id",
        "数据来源单位": "data_source", "备注": "remarks",
    }
    optional_columns = frozenset({"备注", "数据来源单位", "处罚机关统一社会信用代码"})
    personal_fields = frozenset({"legal_rep", "legal_rep_id"})

    def people(self, row: SourceRow) -> list[str]:
        """A natural person penalised is a person: their name is personal wherever it recurs."""
        party = [row.cells.get("subject_name", "").strip()] if _natural_person(row) else []
        return [*super().people(row), *filter(None, party)]

    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        people = row.people
        decision_no = row.required("decision_no")
        category = row.text("subject_category")
        name = _party_name(row)
        uscc = row.uscc("uscc")
        registration_no = row.registration_number("registration_no")
        decided_on = row.date("decided_on")
        assert decided_on is not None
        fine, confiscated, value = _amounts(row)
        licence_action = row.text("licence_action")
        licence = _LICENCE_IN_TEXT.search(licence_action or "")
        violation = row.text("violation_type")
        facts = row.text("facts")
        kinds = _penalty_kinds(row)
        detail = {
            "subject_category": category, "violation_facts": facts,
            "legal_basis": row.text("legal_basis"), "penalty_kinds": kinds,
            "penalty_content": row.text("penalty_content"),
            "fine_yuan": fine, "confiscated_yuan": confiscated, "licence_action": licence_action,
            "authority": row.required("authority"), "authority_id": row.text("authority_id"),
            "data_source": row.text("data_source"), "remarks": row.text("remarks"),
        }
        return [make_event(
            connector=self.name, agency=self.agency, kind=EventKind.PENALTY,
            source_record_id=decision_no, file=row.source.file, row=row.source.number,
            occurred_on=decided_on, received_at=received_at,
            business=business(name, business_id=uscc, registration_number=registration_no,
                              licence_number=licence.group() if licence else None),
            adverse=True,
            summary=_summary(decision_no, violation, facts, kinds, value),
            offence=violation or facts, value_yuan=value,
            person_refs=[self.hasher.ref(p) for p in people],
            detail=("cn.supervision.hub.PenaltyDetail", detail))]


def _natural_person(row: SourceRow) -> bool:
    return "自然人" in row.cells.get("subject_category", "")


def _party_name(row: Row) -> str:
    """The penalised party: a business by its name, a natural person (自然人) by a keyed reference."""
    return f"自然人 {row.ref('subject_name')}" if _natural_person(row.source) else row.business_name("subject_name")


def _amounts(row: Row) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """The fine, the confiscation and their sum (None when neither is given), in yuan."""
    fine = row.decimal("fine_wan", TEN_THOUSAND)
    confiscated = row.decimal("confiscated_wan", TEN_THOUSAND)
    if fine is None and confiscated is None:
        return fine, confiscated, None
    return fine, confiscated, (fine or Decimal(0)) + (confiscated or Decimal(0))


def _penalty_kinds(row: Row) -> list[str]:
    """处罚类别, one or more kinds of penalty; required."""
    kinds = [k for k in _SPLIT_KINDS.split(row.text("penalty_kinds") or "") if k]
    if not kinds:
        raise RowRejected("missing_value", "required value is empty", "处罚类别")
    return kinds


def _summary(decision_no: str, violation: str | None, facts: str | None, kinds: list[str],
             value: Decimal | None) -> str:
    money = f", 罚没{value}元" if value else ""
    missing = missing_figure_note(violation or facts or "", facts or "")
    return f"行政处罚 {decision_no}: {violation or '、'.join(kinds)}{money}{'；' + missing if missing else ''}"
