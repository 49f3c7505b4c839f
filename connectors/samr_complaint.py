"""Market supervision complaints and tip-offs (投诉举报), a 12315 platform export.

The complainant is protected by law (市场监督管理投诉举报处理暂行办法, art.
33): name, telephone and ID number never leave this connector. Each becomes
a token wherever it recurs in the row's text, and the complainant is known
downstream only by a keyed hash of the first of them the row holds (ID
number, else telephone, else name), enough to count distinct complainants
and to spot a serial filer. The 问题描述 stays here: complainants write about
the shop's staff, owners and other customers, people no column names, whom
no scrubbing can find; no rule needs the text. A complaint (投诉) and a tip-off (举报) are
events of their own kinds; each processing status is an event of its own,
so a complaint later judged 不予受理 stops counting.
"""
from __future__ import annotations

import datetime as dt

from connectors.sdk import Connector, Row, RowRejected, business
from hub.domain.events import Agency, Event, EventKind, make_event
from hub.domain.identifiers import region

KINDS = {"投诉": EventKind.COMPLAINT.value, "举报": EventKind.TIP_OFF.value}
STATUSES = {"待受理": "PENDING", "已受理": "ACCEPTED", "不予受理": "NOT_ACCEPTED", "已立案": "CASE_OPENED",
            "已办结": "CONCLUDED"}


class SamrComplaintConnector(Connector):
    name = "samr.complaint"
    agency = Agency.SAMR
    description = "12315 complaints and tip-offs (投诉举报); complainants only as keyed hashes"
    columns = {
        "登记编号": "registration_no", "登记日期": "registered_on", "诉求类型": "kind",
        "被投诉举报对象名称": "name", "被投诉举报对象统一社会信用代码": "uscc", "被投诉举报对象地址": "address",
        "所属行政区划": "division", "涉及商品或服务": "subject_matter", "问题描述": "description",
        "诉求人姓名": "complainant_name", "诉求人联系电话": "complainant_phone",
        "诉求人证件号码": "complainant_id", "处理单位": "handling_unit", "处理状态": "status",
        "办结日期": "concluded_on",
    }
    optional_columns = frozenset({"被投诉举报对象统一社会信用代码", "被投诉举报对象地址", "所属行政区划",
                                  "涉及商品或服务", "问题描述", "诉求人联系电话", "诉求人证件号码", "处理单位",
                                  "办结日期"})
    personal_fields = frozenset({"complainant_name", "complainant_phone", "complainant_id"})

    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        number = row.required("registration_no")
        registered_on = row.date("registered_on")
        assert registered_on is not None
        kind = row.choice("kind", KINDS)
        status = row.choice("status", STATUSES)
        assert kind is not None and status is not None
        complainant = row.first_ref("complainant_id", "complainant_phone", "complainant_name")
        found = business(row.business_name("name"), business_id=row.uscc("uscc"), address=row.text("address"))
        division = row.text("division")
        if division is not None:
            if region(division) is None:
                raise RowRejected("invalid_region", "not a GB/T 2260 division code", "所属行政区划")
            if not found["business_id"]:  # the USCC's own region stands; else the platform's division
                found["region_code"] = division
        subject_matter = row.text("subject_matter")
        summary = f"{row.required('kind')}({row.required('status')})" + \
            (f": {subject_matter}" if subject_matter else "")
        return [make_event(
            connector=self.name, agency=self.agency, kind=EventKind(kind),
            source_record_id=number, file=row.source.file, row=row.source.number,
            occurred_on=registered_on, received_at=received_at, business=found, adverse=False, summary=summary,
            detail=("cn.supervision.hub.ComplaintDetail",
                    {"complainant_ref": complainant, "status": status, "subject_matter": subject_matter,
                     "handling_unit": row.text("handling_unit"),
                     "concluded_on": row.date("concluded_on", required=False)}),
            id_suffix=f":{status}")]
