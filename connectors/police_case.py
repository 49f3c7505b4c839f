"""Police food and drug criminal cases (食药环侦 刑事案件).

The most sensitive feed on the bus: suspects' names and ID numbers become
keyed hashes here and are masked out of the case name. Each status change
(受案, 立案, ...) is an event of its own, so the status is part of its identity.
"""
from __future__ import annotations

import datetime as dt

from connectors.sdk import Connector, Row, business
from hub.domain.events import Agency, Event, EventKind, make_event
from hub.domain.pii import scrub

STATUSES = {"受案": "ACCEPTED", "立案": "FILED", "侦查终结": "INVESTIGATION_CLOSED",
            "移送审查起诉": "REFERRED_FOR_PROSECUTION", "移送起诉": "REFERRED_FOR_PROSECUTION",
            "撤案": "WITHDRAWN"}


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
        people = self.people(row.source)
        case_no = row.required("case_no")
        status = row.choice("status", STATUSES)
        assert status is not None
        accepted_on = row.date("accepted_on")
        filed_on = row.date("filed_on", required=False)
        assert accepted_on is not None
        cause = row.required("cause")
        case_name = scrub(row.text("case_name") or cause, people) or cause
        amount = row.decimal("amount")
        summary = f"公安{row.required('status')}: {cause}" + (f", 涉案金额{amount}元" if amount else "")
        return [make_event(
            connector=self.name, agency=self.agency, kind=EventKind.POLICE_CASE,
            source_record_id=case_no, file=row.source.file, row=row.source.number,
            occurred_on=filed_on or accepted_on, received_at=received_at,
            business=business(row.required("name"), business_id=row.uscc("uscc")),
            adverse=status != "WITHDRAWN", summary=summary, offence=cause, value_yuan=amount,
            person_refs=[self.hasher.ref(p) for p in people],
            detail=("cn.supervision.hub.PoliceCaseDetail",
                    {"case_name": case_name, "status": status, "accepted_on": accepted_on,
                     "filed_on": filed_on, "handling_unit": row.text("unit"),
                     "clue_source": row.text("clue_source")}),
            id_suffix=f":{status}")]
