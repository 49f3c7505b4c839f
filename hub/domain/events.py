"""Canonical enforcement events (执法事件) as the Avro ``EnforcementEvent`` dicts.

Events travel as plain dicts shaped by ``schemas/event.v1.avsc``: the worker
decodes thousands a second and the rules read a handful of fields, so a second
object model on top would only cost copies. This module names the shapes and
the helpers that read them.
"""
from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any, TypedDict

from hub.domain.names import normalise_name


class Agency(str, enum.Enum):
    SAMR = "SAMR"      # 市场监督管理局
    POLICE = "POLICE"  # 公安机关
    AGRI = "AGRI"      # 农业农村局


class EventKind(str, enum.Enum):
    SAMPLING_FAILURE = "SAMPLING_FAILURE"  # 食品抽检不合格
    INSPECTION = "INSPECTION"              # 日常监督检查
    PENALTY = "PENALTY"                    # 行政处罚
    POLICE_CASE = "POLICE_CASE"            # 刑事案件
    FARM_SAMPLING = "FARM_SAMPLING"        # 农产品质量安全监督抽查
    REGISTRATION = "REGISTRATION"          # 登记信息: a registry entry, teaches the hub a business; no lead
    COMPLAINT = "COMPLAINT"                # 投诉: a consumer's own dispute (12315)
    TIP_OFF = "TIP_OFF"                    # 举报: a report of a violation (12315)
    CREDIT_LISTING = "CREDIT_LISTING"      # 严重违法失信名单: a listing, or its removal; no finding


class BusinessRole(str, enum.Enum):
    SUBJECT = "SUBJECT"
    PRODUCER = "PRODUCER"  # 标称生产企业
    SELLER = "SELLER"      # 被抽样单位


class TestResult(TypedDict):
    item: str
    result: str | None
    value: float | None
    unit: str | None
    limit: str | None
    failed: bool


class Business(TypedDict):
    business_id: str | None
    name: str
    address: str | None
    region_code: str | None
    licence_number: str | None
    registration_number: str | None
    role: str


class SourceRef(TypedDict):
    """Where a record came from: the connector, its file and row."""

    connector: str
    file: str
    row: int


class Event(TypedDict):
    """An ``EnforcementEvent`` record (执法事件), as ``schemas/event.v3.avsc``
    defines it and the codecs read and write it."""

    event_id: str
    agency: str  # an Agency value
    kind: str  # an EventKind value
    source_record_id: str
    source: SourceRef
    occurred_on: dt.date
    received_at: dt.datetime
    business: Business
    adverse: bool
    summary: str
    findings: list[TestResult]
    offence: str | None
    value_yuan: Decimal | None  # 货值金额 or 销售金额, where the record gives one
    person_refs: list[str]
    # The kind's own record: (its record name, its fields) as written and as
    # read with named branches; its fields alone where a codec reads it so.
    detail: tuple[str, dict[str, Any]] | dict[str, Any]
    resolution: str | None


class Outcome(str, enum.Enum):
    """What a record says about what became of a finding (follow-through):
    the police took a case up or dropped it, an inspection found the business
    compliant or not, a farm sample passed. ``NONE``: nothing of the kind."""

    NONE = ""
    POLICE_ACCEPTED = "POLICE_ACCEPTED"  # 受案
    POLICE_FILED = "POLICE_FILED"  # 立案, and every later step of a filed case
    POLICE_DROPPED = "POLICE_DROPPED"  # 撤案
    COMPLIANT = "COMPLIANT"  # 符合 / 基本符合
    NON_COMPLIANT = "NON_COMPLIANT"  # 不符合
    PASSED = "PASSED"  # a farm sample 合格
    NOT_ACCEPTED = "NOT_ACCEPTED"  # a complaint or tip-off 不予受理: it counts for nothing
    RELATED = "RELATED"  # not a record: a link to another business through a shared legal representative


# The police taking a case up (受案 or 立案): what answers a transfer.
POLICE_TAKES_UP = frozenset({Outcome.POLICE_ACCEPTED.value, Outcome.POLICE_FILED.value})

_CASE_OUTCOMES = {"ACCEPTED": Outcome.POLICE_ACCEPTED, "FILED": Outcome.POLICE_FILED,
                  "INVESTIGATION_CLOSED": Outcome.POLICE_FILED, "REFERRED_FOR_PROSECUTION": Outcome.POLICE_FILED,
                  "WITHDRAWN": Outcome.POLICE_DROPPED}
_INSPECTION_OUTCOMES = {"COMPLIANT": Outcome.COMPLIANT, "BASICALLY_COMPLIANT": Outcome.COMPLIANT,
                        "NON_COMPLIANT": Outcome.NON_COMPLIANT}
# Dates are the agencies' own, in China Standard Time.
CST = dt.timezone(dt.timedelta(hours=8))


def detail_of(event: Event) -> dict[str, Any]:
    detail = event["detail"]
    return detail[1] if isinstance(detail, tuple) else detail


def outcome(event: Event) -> Outcome:
    kind, body = event["kind"], detail_of(event)
    if kind == EventKind.POLICE_CASE.value:
        return _CASE_OUTCOMES.get(str(body.get("status")), Outcome.NONE)
    if kind == EventKind.INSPECTION.value:
        return _INSPECTION_OUTCOMES.get(str(body.get("result")), Outcome.NONE)
    if kind == EventKind.FARM_SAMPLING.value and not event["adverse"]:
        return Outcome.PASSED
    if kind in COMPLAINT_KINDS and body.get("status") == "NOT_ACCEPTED":
        return Outcome.NOT_ACCEPTED
    return Outcome.NONE


COMPLAINT_KINDS = frozenset({EventKind.COMPLAINT.value, EventKind.TIP_OFF.value})


def reported_on(event: Event) -> dt.date:
    """The record's own date, from which its reporting delay (迟报) runs: the
    police 受案 date for a case, else the event's date (the announcement of a
    sample, the inspection, the penalty decision, the farm sampling)."""
    if event["kind"] == EventKind.POLICE_CASE.value:
        accepted = detail_of(event).get("accepted_on")
        if isinstance(accepted, dt.date):
            return accepted
    return event["occurred_on"]


def reporting_delay_s(event: Event) -> float:
    """Seconds from the start of the record's own day (CST) to its arrival at the hub; never negative."""
    start = dt.datetime.combine(reported_on(event), dt.time(), CST)
    received: dt.datetime = event["received_at"]
    return max(0.0, (received - start).total_seconds())


def cst_day(ms: int) -> dt.date:
    """The day (CST) of an epoch-ms instant: what the agencies' dates compare with."""
    return dt.datetime.fromtimestamp(ms / 1000, CST).date()


def cst_start_ms(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), CST).timestamp() * 1000)

UNRESOLVED_PREFIX = "unresolved:"


def business_key(business: Business) -> str:
    """The key events are partitioned and joined on: the USCC when known, else a
    provisional key from region and normalised name, so the same unidentified
    business still collects its own history."""
    if business["business_id"]:
        return business["business_id"]
    return f"{UNRESOLVED_PREFIX}{business['region_code'] or ''}:{normalise_name(business['name'])}"


def event_key(event: Event) -> str:
    return business_key(event["business"])



def make_event(*, connector: str, agency: Agency, kind: EventKind, source_record_id: str,
               file: str, row: int, occurred_on: dt.date, received_at: dt.datetime,
               business: Business, adverse: bool, summary: str, detail: tuple[str, dict[str, Any]],
               findings: list[TestResult] | None = None, offence: str | None = None,
               value_yuan: Decimal | None = None, person_refs: list[str] | None = None,
               id_suffix: str = "") -> Event:
    return {
        "event_id": f"{connector}:{source_record_id}{id_suffix}",
        "agency": agency.value,
        "kind": kind.value,
        "source_record_id": source_record_id,
        "source": {"connector": connector, "file": file, "row": row},
        "occurred_on": occurred_on,
        "received_at": received_at,
        "business": business,
        "adverse": adverse,
        "summary": summary,
        "findings": findings or [],
        "offence": offence,
        "value_yuan": value_yuan,
        "person_refs": person_refs or [],
        "detail": detail,
        "resolution": None,  # only the hub's resolver sets it
    }
