"""Police food and drug criminal cases (食药环侦 刑事案件).

The most sensitive feed on the bus: suspects' names and ID numbers become
keyed hashes here and tokens wherever they recur in the row's text (案由,
案件名称, 办案单位, 线索来源); an informant named in 线索来源 keeps only the
kind of source (群众举报, …). Each status change
(受案, 立案, ...) is an event of its own, so the status is part of its identity.
"""
from __future__ import annotations

import datetime as dt
import re

from connectors.sdk import Connector, Row, business
from hub.domain.pii import PersonalDataHasher, is_token
from hub.domain.events import Agency, Event, EventKind, make_event

STATUSES = {"受案": "ACCEPTED", "立案": "FILED", "侦查终结": "INVESTIGATION_CLOSED",
            "移送审查起诉": "REFERRED_FOR_PROSECUTION", "移送起诉": "REFERRED_FOR_PROSECUTION",
            "撤案": "WITHDRAWN"}


# How a case came to the police (线索来源). Around the kind, a clerk may
# write an informant's name or number: personal, so it becomes a token; an
# agency named before the kind stays.
CLUE_SOURCES = ("群众举报", "举报投诉", "举报", "上级交办", "行政执法移送", "移送",
                "自行发现", "侦查发现", "网络巡查", "工作中发现", "报案", "自首", "其他")
_AGENCY = re.compile(r"[\u4e00-\u9fff]*(?:局|部门|机关|中心|委员会|政府|检察院|法院)")
_EDGES = " ：:，,。;；()（）[]【】"


def clue_source(text: str | None, hasher: PersonalDataHasher) -> str | None:
    """The kind of source (and an agency before it); a token for anything else the clerk wrote."""
    if not text:
        return text
    found = [(text.find(k), k) for k in CLUE_SOURCES if k in text]
    if not found:
        return hasher.token(text)
    start, kind = min(found, key=lambda f: (f[0], -len(f[1])))
    before, after = text[:start].strip(_EDGES), text[start + len(kind):].strip(_EDGES)
    return _before_kind(before, hasher) + kind + _after_kind(after, hasher)


def _before_kind(before: str, hasher: PersonalDataHasher) -> str:
    """What the clerk wrote before the kind: an agency stays, anything else becomes a token."""
    return before if _AGENCY.fullmatch(before) or is_token(before) else hasher.token(before) if before else ""


def _after_kind(after: str, hasher: PersonalDataHasher) -> str:
    """What the clerk wrote after the kind (an informant's name or number): a token."""
    return hasher.token(after) if after and not is_token(after) else after


class PoliceCaseConnector(Connector):
    name = "police.case"
    agency = Agency.POLICE
    description = "Police food and drug criminal cases and their status changes"
    columns = {
        "案件编号": "case_no", "案件名称": "case_name", "案由": "cause", "受案时间": "accepted_on",
        "立案时间": "filed_on", "案件状态": "status", "涉案单位名称": "name",
        "涉案单位统一社会信用代码": "uscc", "犯罪嫌疑人姓名": "suspects",
        "犯罪嫌疑人身份证号": "suspect_ids", "涉案金额(元)": "amount", "办案单位": "unit",
        "线索来源": "clue_source",
    }
    optional_columns = frozenset({"线索来源", "犯罪嫌疑人身份证号", "犯罪嫌疑人姓名"})
    personal_fields = frozenset({"suspects", "suspect_ids"})

    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        people = row.people
        case_no = row.required("case_no")
        status = row.choice("status", STATUSES)
        assert status is not None
        accepted_on = row.date("accepted_on")
        filed_on = row.date("filed_on", required=False)
        assert accepted_on is not None
        cause = row.required("cause")
        case_name = row.text("case_name") or cause
        amount = row.decimal("amount")
        summary = f"公安{row.required('status')}: {cause}" + (f", 涉案金额{amount}元" if amount else "")
        return [make_event(
            connector=self.name, agency=self.agency, kind=EventKind.POLICE_CASE,
            source_record_id=case_no, file=row.source.file, row=row.source.number,
            occurred_on=filed_on or accepted_on, received_at=received_at,
            business=business(row.business_name("name"), business_id=row.uscc("uscc")),
            adverse=status != "WITHDRAWN", summary=summary, offence=cause, value_yuan=amount,
            person_refs=[self.hasher.ref(p) for p in people],
            detail=("cn.supervision.hub.PoliceCaseDetail",
                    {"case_name": case_name, "status": status, "accepted_on": accepted_on,
                     "filed_on": filed_on, "handling_unit": row.text("unit"),
                     "clue_source": clue_source(row.text("clue_source"), self.hasher)}),
            id_suffix=f":{status}")]
