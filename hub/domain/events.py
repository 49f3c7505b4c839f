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


Event = dict[str, Any]
"""An ``EnforcementEvent`` record (see the schema for its fields)."""

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
