"""Poison for the tests: genuine records, and the bad ones a careless clerk
or a hostile sender would put beside them."""
from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.samr_penalty import SamrPenaltyConnector
from hub.domain.events import Agency, Event
from hub.domain.pii import PersonalDataHasher
from hub.devtools.samples import LIQUOR, _headers, write_csv
from hub.kafka.serde import Serde
from hub.settings import Settings
from hub.flow.topics import events_topic

PENALTY_HEADER = _headers(SamrPenaltyConnector)
# Stands in for personal data in bad records: no dead letter may carry it.
SECRET = "王建国410502197805173018"


def penalty_row(decision: str = "晋太市监罚〔2026〕9号", *, date: str = "2026-10-20", fine_wan: str = "6",
                violation: str = "生产销售伪劣白酒", uscc: str = LIQUOR.uscc, name: str = LIQUOR.name,
                **cells: str) -> list[str]:
    """One 双公示 penalty row; by default a 伪劣 case with 60 000 yuan of sales (fined 6万): a CRITICAL referral."""
    values = dict.fromkeys(PENALTY_HEADER, "")
    values.update({
        "行政相对人名称": name, "行政相对人类别": "法人及非法人组织", "行政相对人代码_1(统一社会信用代码)": uscc,
        "处罚决定书文号": decision, "违法行为类型": violation, "违法事实": "当事人销售伪劣白酒，销售金额6万元",
        "处罚类别": "罚款", "罚款金额(万元)": fine_wan, "处罚决定日期": date, "处罚机关": "晋中市太谷区市场监督管理局",
    })
    values.update(cells)
    return [values[c] for c in PENALTY_HEADER]


def critical_event(tmp_path: Path, received_at: dt.datetime, decision: str = "晋太市监罚〔2026〕9号") -> Event:
    """A genuine CRITICAL penalty event, as the connector publishes it."""
    connector = SamrPenaltyConnector(PersonalDataHasher("poison-test-key"))
    path = write_csv(tmp_path / f"{abs(hash(decision))}.csv", PENALTY_HEADER, [penalty_row(decision)])
    [row] = list(connector.read(path))
    [event] = connector.events(row, received_at)
    return event


def spoiled(event: Event, decision: str, **changes: Any) -> Event:
    """A copy of ``event`` under another source ID, with ``changes``; it names SECRET in its summary."""
    bad = copy.deepcopy(event)
    bad["event_id"] = f"samr.penalty:{decision}"
    bad["source_record_id"] = decision
    bad["summary"] = f"{bad['summary']} {SECRET}"
    for name, value in changes.items():
        if name == "business_id":
            bad["business"] = {**bad["business"], "business_id": value}
        else:
            bad[name] = value
    return bad


def bad_events(event: Event) -> dict[str, Event]:
    """Well-formed Avro, implausible content: reason code -> event."""
    return {
        "year_one": spoiled(event, "y1", occurred_on=dt.date(1, 1, 1)),
        "year_2062": spoiled(event, "y2062", occurred_on=dt.date(2062, 10, 20)),
        "year_9999": spoiled(event, "y9999", occurred_on=dt.date(9999, 12, 31)),
        "nul_in_id": spoiled(event, "nul\x00id"),
        "negative_amount": spoiled(event, "neg", value_yuan=Decimal("-99999999.99")),
        "nan_measure": spoiled(event, "nan", findings=[{"item": "甲醇", "result": None, "value": float("nan"),
                                                        "unit": None, "limit": None, "failed": True}]),
        "oversized_field": spoiled(event, "big", summary="伪" * 5000 + SECRET),
    }


BAD_EVENT_CODES = {"year_one": "date_out_of_range", "year_2062": "date_out_of_range",
                   "year_9999": "date_out_of_range", "nul_in_id": "control_character",
                   "negative_amount": "amount_out_of_range", "nan_measure": "number_out_of_range",
                   "oversized_field": "oversized_field"}


def encoded(settings: Settings, event: Event) -> bytes:
    return Serde(settings).encoder(events_topic(Agency(event["agency"])), "event")(event)
