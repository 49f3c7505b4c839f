"""The records the hub publishes besides events, typed as their contracts
define them (``schemas/lead.v6.avsc``, ``schemas/feedback.v1.avsc``): a lead
(执法线索) and a team's answer on it (反馈). Values are as the codecs write
and read them: dates and datetimes, enum values as strings."""
from __future__ import annotations

import datetime as dt
from typing import TypedDict


class Region(TypedDict):
    code: str | None  # GB/T 2260
    name: str | None


class Evidence(TypedDict):
    agency: str
    kind: str
    event_id: str
    source_record_id: str
    occurred_on: dt.date
    finding: str  # "" when the team's clearance withholds it
    also_reported_as: list[str]
    resolution: str | None
    category: str | None
    chained: bool
    reported_after_days: int


class StatusChange(TypedDict):
    at: dt.datetime
    status: str
    team: str | None
    note: str | None


class FollowUp(TypedDict):
    kind: str
    event_id: str | None
    lead_id: str | None
    agency: str | None
    occurred_on: dt.date


class LeadParty(TypedDict):
    role: str
    business_key: str
    name: str
    business_id: str | None
    region_code: str | None
    link: str | None


class CreditFields(TypedDict):
    """A lead's standing on the serious-violation list (严重违法失信名单)."""

    credit_status: str | None  # LISTED, REMOVED, or None: never listed
    credit_listed_on: dt.date | None
    credit_reason: str | None
    credit_authority: str | None
    credit_removed_on: dt.date | None


class Lead(TypedDict):
    """A lead record (执法线索) on ``hub.leads`` and, redacted, on the teams' topics."""

    lead_id: str
    business_id: str | None
    business_key: str
    business_name: str
    region: Region
    rules: list[str]
    severity: str
    agencies: list[str]
    evidence: list[Evidence]
    recommended_action: str
    status: str
    superseded_by: str | None
    categories: list[str]
    history: list[StatusChange]
    acknowledge_by: dt.datetime | None
    close_by: dt.datetime | None
    recheck_on: dt.datetime | None
    escalation: str | None
    escalations: list[str]
    transfer_by: dt.datetime | None
    police_filing_by: dt.datetime | None
    links: list[FollowUp]
    oversight: bool
    credit_status: str | None
    credit_listed_on: dt.date | None
    credit_reason: str | None
    credit_authority: str | None
    credit_removed_on: dt.date | None
    parties: list[LeadParty]
    also_regions: list[str]
    reported_late_days: int | None
    reopened: int
    team: str | None
    withheld: list[str]
    person_refs: list[str]
    window_start: dt.date
    window_end: dt.date
    first_seen: dt.datetime
    updated_at: dt.datetime
    version: int
    triggered_by_received_at: dt.datetime


class Feedback(TypedDict):
    """A team's answer on a lead (反馈) on its feedback topic, or a clock tick (``action`` TICK)."""

    lead_id: str
    business_key: str
    action: str  # an Action value
    team: str | None
    note: str | None
    by: str | None
    at: dt.datetime
