"""Market supervision daily inspections (日常监督检查)."""
from __future__ import annotations

import datetime as dt

from connectors.sdk import Connector, Row, business
from hub.domain.events import Agency, Event, EventKind, make_event

RESULTS = {"符合": "COMPLIANT", "基本符合": "BASICALLY_COMPLIANT", "不符合": "NON_COMPLIANT"}
HANDLING = {"通过": "PASSED", "书面限期整改": "RECTIFY_BY_DEADLINE", "限期整改": "RECTIFY_BY_DEADLINE",
            "立即停止食品生产经营活动": "STOP_OPERATIONS"}


class SamrInspectionConnector(Connector):
    name = "samr.inspection"
    agency = Agency.SAMR
    description = "SAMR daily supervision inspections (日常监督检查)"
    columns = {
        "检查编号": "inspection_no", "被检查单位名称": "name", "统一社会信用代码": "uscc",
        "许可证编号": "licence", "检查日期": "inspected_on", "检查人员": "inspectors",
        "检查结果": "result", "结果处理": "handling", "发现问题": "problems", "整改期限": "rectify_by",
    }
    optional_columns = frozenset({"检查人员", "整改期限"})
    # Inspectors are officials, but no lead needs their names: they stay at the agency.
    personal_fields = frozenset({"inspectors"})

    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        inspection_no = row.required("inspection_no")
        inspected_on = row.date("inspected_on")
        assert inspected_on is not None
        result = row.choice("result", RESULTS)
        handling = row.choice("handling", HANDLING, required=False)
        problems = row.text("problems")
        verdict = row.required("result")
        summary = f"日常监督检查{verdict}" + (f": {problems}" if problems else "")
        if row.text("handling"):
            summary += f"; {row.text('handling')}"
        return [make_event(
            connector=self.name, agency=self.agency, kind=EventKind.INSPECTION,
            source_record_id=inspection_no, file=row.source.file, row=row.source.number,
            occurred_on=inspected_on, received_at=received_at,
            business=business(row.business_name("name"), business_id=row.uscc("uscc"),
                              licence_number=row.licence("licence")),
            adverse=result == "NON_COMPLIANT", summary=summary, offence=problems,
            detail=("cn.supervision.hub.InspectionDetail",
                    {"result": result, "handling": handling, "problems": problems,
                     "rectify_by": row.date("rectify_by", required=False)}))]
