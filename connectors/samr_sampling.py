"""Market supervision sampling failures (不合格产品信息), the SAMR announcement layout.

No USCC column: each row names two businesses, the nominal producer
(标称生产企业) and the sampled seller (被抽样单位). Each becomes an event of
its own (roles PRODUCER and SELLER) so each business collects its history.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from connectors.sdk import Connector, Row, RowRejected, business, parse_measure
from hub.domain.events import Agency, BusinessRole, Event, EventKind, TestResult, make_event
from hub.domain.identifiers import region_of_address

_ITEM_SEPARATORS = re.compile(r"[\r\n；;]+")
_FIELD_SEPARATOR = re.compile(r"‖|\|\|")


def parse_failures(cell: str) -> list[TestResult]:
    """'克伦特罗‖0.52μg/kg‖不得检出；铅(以Pb计)‖0.8mg/kg‖≤0.5mg/kg' -> test results."""
    results: list[TestResult] = []
    for chunk in _ITEM_SEPARATORS.split(cell):
        if not chunk.strip():
            continue
        parts = [p.strip() for p in _FIELD_SEPARATOR.split(chunk)]
        if not parts[0]:
            raise RowRejected("bad_failure_item", "a failure item without its name")
        results.append(_failure(parts))
    return results


def _failure(parts: list[str]) -> TestResult:
    """One failed item: its name, result (and the measure in it) and the standard's limit."""
    result = _part(parts, 1)
    value, unit = parse_measure(result)
    return {"item": parts[0], "result": result, "value": value, "unit": unit, "limit": _part(parts, 2),
            "failed": True}


def _part(parts: list[str], i: int) -> str | None:
    return parts[i] if len(parts) > i and parts[i] else None


class SamrSamplingConnector(Connector):
    name = "samr.sampling"
    agency = Agency.SAMR
    description = "SAMR food sampling failures (不合格产品信息); no USCC, two businesses per row"
    columns = {
        "序号": "seq", "抽样编号": "sample_no", "标称生产企业名称": "producer_name",
        "标称生产企业地址": "producer_address", "被抽样单位名称": "seller_name",
        "被抽样单位地址": "seller_address", "食品名称": "product", "规格型号": "specification",
        "商标": "brand", "生产日期/批号": "batch", "不合格项目‖检验结果‖标准值": "failures",
        "分类": "category", "公告号": "announcement_no", "公告日期": "announced_on",
        "检验机构": "laboratory", "备注": "remarks",
    }
    optional_columns = frozenset({"序号", "备注", "规格型号", "商标"})

    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        sample_no = row.required("sample_no")
        product = row.required("product")
        seller = row.business_name("seller_name")
        findings = _findings(row)
        announced_on = row.date("announced_on")
        assert announced_on is not None
        producer = row.business_name("producer_name", required=False)
        items = "、".join(f["item"] + (f"({f['result']})" if f["result"] else "") for f in findings)
        seller_address, producer_address = row.text("seller_address"), row.text("producer_address")
        events = []
        for role, name, address, counterpart, counterpart_address in _parties(seller, seller_address, producer,
                                                                              producer_address):
            detail = _detail(row, product, announced_on, counterpart, counterpart_address)
            events.append(make_event(
                connector=self.name, agency=self.agency, kind=EventKind.SAMPLING_FAILURE,
                source_record_id=sample_no, file=row.source.file, row=row.source.number,
                occurred_on=announced_on, received_at=received_at,
                business=business(name, address=address, role=role), adverse=True,
                summary=f"抽检不合格: {product} {items}", findings=findings,
                detail=("cn.supervision.hub.SamplingFailureDetail", detail),
                id_suffix=f":{role.value.lower()}"))
        return events


def _findings(row: Row) -> list[TestResult]:
    """The failed items (不合格项目‖检验结果‖标准值); at least one."""
    try:
        findings = parse_failures(row.required("failures"))
    except RowRejected as exc:
        raise RowRejected(exc.reason_code, str(exc), "不合格项目‖检验结果‖标准值") from None
    if not findings:
        raise RowRejected("missing_value", "no failure item", "不合格项目‖检验结果‖标准值")
    return findings


_Party = tuple[BusinessRole, str, str | None, str | None, str | None]


def _parties(seller: str, seller_address: str | None, producer: str | None,
             producer_address: str | None) -> list[_Party]:
    """The row's businesses, each with its counterpart: the seller, and the
    nominal producer when the row names another business."""
    parties: list[_Party] = [(BusinessRole.SELLER, seller, seller_address, producer, producer_address)]
    if producer and producer != seller:
        parties.append((BusinessRole.PRODUCER, producer, producer_address, seller, seller_address))
    return parties


def _detail(row: Row, product: str, announced_on: dt.date, counterpart: str | None,
            counterpart_address: str | None) -> dict[str, Any]:
    return {
        "product": product, "specification": row.text("specification"),
        "brand": row.text("brand"), "batch": row.text("batch"),
        "category": row.text("category"), "announcement_no": row.text("announcement_no"),
        "announced_on": announced_on, "laboratory": row.text("laboratory"),
        "counterpart_name": counterpart, "remarks": row.text("remarks"),
        # batch trace tells the seller's county of a producer's batch
        "counterpart_region": counterpart and (region_of_address(counterpart_address or "")
                                               or region_of_address(counterpart)),
    }
