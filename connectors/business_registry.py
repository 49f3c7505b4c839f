"""A business registry reference list (企业登记信息): the optional connector
that teaches the hub businesses before any enforcement record names them.

Each row becomes a REGISTRATION event: no finding, no lead, only what entity
resolution learns (names, address, licence numbers, old registration number)
and, when the optional columns are there, the legal representative as a keyed
hash of the ID number (the related-party rule's link).
"""
from __future__ import annotations

import datetime as dt
import re

from connectors.sdk import Connector, Row, RowRejected, business
from hub.domain.events import Agency, Event, EventKind, make_event
from hub.domain.identifiers import InvalidIdentifier, validate_licence

_LIST_SEPARATORS = re.compile(r"[；;、,，\s]+")


class BusinessRegistryConnector(Connector):
    name = "registry.business"
    agency = Agency.SAMR
    description = "business registry reference list (企业登记信息): USCC, name, address, licences; raises no lead"
    columns = {
        "统一社会信用代码": "uscc", "企业名称": "name", "住所": "address", "许可证编号": "licences",
        "注册号": "registration_no", "成立日期": "established_on", "登记机关": "authority",
        "法定代表人": "representative", "法定代表人证件号码": "representative_id",
    }
    optional_columns = frozenset({"许可证编号", "注册号", "成立日期", "登记机关", "法定代表人", "法定代表人证件号码"})
    # The legal representative is known downstream only by a keyed hash of the ID number.
    personal_fields = frozenset({"representative", "representative_id"})

    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        uscc = row.uscc("uscc")
        if uscc is None:
            raise RowRejected("missing_value", "a registry entry needs its USCC", "统一社会信用代码")
        licences = _licences(row)
        name = row.business_name("name")
        return [make_event(
            connector=self.name, agency=self.agency, kind=EventKind.REGISTRATION,
            source_record_id=uscc, file=row.source.file, row=row.source.number,
            occurred_on=row.date("established_on", required=False) or received_at.date(), received_at=received_at,
            business=business(name, business_id=uscc, address=row.text("address"),
                              licence_number=licences[0] if licences else None,
                              registration_number=row.registration_number("registration_no")),
            adverse=False, summary=f"登记信息: {name}",
            detail=("cn.supervision.hub.RegistrationDetail",
                    {"licences": licences, "registry": row.source.file,
                     "legal_representative_ref": row.first_ref("representative_id", required=False)}))]


def _licences(row: Row) -> list[str]:
    """The licence numbers (许可证编号) the entry lists, each validated."""
    licences = []
    for raw in _LIST_SEPARATORS.split(row.text("licences") or ""):
        if raw:
            try:
                licences.append(validate_licence(raw))
            except InvalidIdentifier as exc:
                raise RowRejected("invalid_licence", str(exc), "许可证编号") from None
    return licences
