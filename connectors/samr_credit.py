"""The serious-violation and dishonesty list (严重违法失信名单, 黑名单).

Each row is a listing (列入) and, once 移出日期 is filled, its removal: two
events of one listing, so a removal sent later supersedes the listing. The
legal representative is kept only as a keyed hash of the ID number
(法定代表人证件号码): a listed business's representative may not represent
another, which the related-party rule checks.
"""
from __future__ import annotations

import datetime as dt

from connectors.sdk import Connector, Row, RowRejected, business
from hub.domain.events import Agency, Event, EventKind, make_event


class SamrCreditConnector(Connector):
    name = "samr.credit"
    agency = Agency.SAMR
    description = "serious-violation list (严重违法失信名单): listings and removals"
    columns = {
        "主体名称": "name", "统一社会信用代码": "uscc", "法定代表人": "representative",
        "法定代表人证件号码": "representative_id", "列入日期": "listed_on", "列入事由": "reason",
        "作出决定机关": "authority", "移出日期": "removed_on", "移出事由": "removal_reason",
    }
    optional_columns = frozenset({"法定代表人", "法定代表人证件号码", "移出日期", "移出事由"})
    personal_fields = frozenset({"representative", "representative_id"})

    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        uscc = row.uscc("uscc")
        if uscc is None:
            raise RowRejected("missing_value", "a listing needs its USCC", "统一社会信用代码")
        listed_on = row.date("listed_on")
        assert listed_on is not None
        removed_on = _removed_on(row, listed_on)
        reason, removal = row.text("reason"), row.text("removal_reason")
        summary = _summary(removed_on, reason, removal)
        representative = row.first_ref("representative_id", required=False)
        return [make_event(
            connector=self.name, agency=self.agency, kind=EventKind.CREDIT_LISTING,
            source_record_id=f"{uscc}:{listed_on.isoformat()}", file=row.source.file, row=row.source.number,
            occurred_on=removed_on or listed_on, received_at=received_at,
            business=business(row.business_name("name"), business_id=uscc), adverse=False, summary=summary,
            detail=("cn.supervision.hub.CreditListingDetail",
                    {"listed_on": listed_on, "reason": reason, "authority": row.text("authority"),
                     "removed_on": removed_on, "removal_reason": removal,
                     "legal_representative_ref": representative}),
            id_suffix=":removed" if removed_on else ":listed")]


def _removed_on(row: Row, listed_on: dt.date) -> dt.date | None:
    """移出日期, if the listing was removed: not before it was listed."""
    removed_on = row.date("removed_on", required=False)
    if removed_on is not None and removed_on < listed_on:
        raise RowRejected("bad_date", "removed before it was listed", "移出日期")
    return removed_on


def _summary(removed_on: dt.date | None, reason: str | None, removal: str | None) -> str:
    return f"移出严重违法失信名单: {removal or '—'}" if removed_on else f"列入严重违法失信名单: {reason or '—'}"
