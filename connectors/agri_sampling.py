"""Agriculture farm-product quality sampling (农产品质量安全监督抽查).

One row per sample and test item, so the item is part of the record's identity.
"""
from __future__ import annotations

import datetime as dt

from connectors.sdk import Connector, Row, business, parse_measure
from hub.domain.events import Agency, Event, EventKind, TestResult, make_event

VERDICTS = {"合格": False, "不合格": True}


class AgriSamplingConnector(Connector):
    name = "agri.sampling"
    agency = Agency.AGRI
    description = "Agriculture farm-product sampling and residue findings (农产品质量安全监督抽查)"
    columns = {
        "样品编号": "sample_no", "样品名称": "sample_name", "受检单位名称": "name",
        "统一社会信用代码": "uscc", "抽样地点": "place_type", "抽样日期": "sampled_on",
        "检测项目": "item", "检测值": "value", "限量值": "limit", "单位": "unit",
        "判定结果": "verdict", "检测机构": "laboratory",
    }
    optional_columns = frozenset({"检测机构"})

    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        sample_no = row.required("sample_no")
        sample_name = row.required("sample_name")
        item = row.required("item")
        failed = row.choice("verdict", {k: k for k in VERDICTS}) == "不合格"
        sampled_on = row.date("sampled_on")
        assert sampled_on is not None
        limit = row.text("limit")
        finding = _finding(item, row.text("value"), row.text("unit"), limit, failed)
        verdict = "不合格" if failed else "合格"
        return [make_event(
            connector=self.name, agency=self.agency, kind=EventKind.FARM_SAMPLING,
            source_record_id=sample_no, file=row.source.file, row=row.source.number,
            occurred_on=sampled_on, received_at=received_at,
            business=business(row.business_name("name"), business_id=row.uscc("uscc")),
            adverse=failed,
            summary=_summary(verdict, sample_name, item, finding["result"], limit),
            findings=[finding],
            detail=("cn.supervision.hub.FarmSamplingDetail",
                    {"sample_name": sample_name, "place_type": row.text("place_type"),
                     "laboratory": row.text("laboratory")}),
            id_suffix=f":{item}")]


def _finding(item: str, raw_value: str | None, unit: str | None, limit: str | None, failed: bool) -> TestResult:
    """The item's test result; the unit from its column, else from the value's cell."""
    value, unit_in_value = parse_measure(raw_value)
    unit = unit or unit_in_value
    result = f"{raw_value}{unit or ''}" if raw_value else None
    return {"item": item, "result": result, "value": value, "unit": unit,
            "limit": f"{limit}{unit or ''}" if limit else None, "failed": failed}


def _summary(verdict: str, sample_name: str, item: str, result: str | None, limit: str | None) -> str:
    return (f"农产品抽检{verdict}: {sample_name} {item}" + (f" {result}" if result else "")
            + (f" (限量{limit})" if limit else ""))
