"""Leads for people: the terminal form, the filters, and JSON for scripts."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
_MARK = {"CRITICAL": "!!!", "HIGH": "!! ", "MEDIUM": "!  ", "LOW": "   "}


def render(lead: dict[str, Any]) -> str:
    region = lead["region"]
    where = f"{region['name']} ({region['code']})" if region["code"] else "region unknown"
    who = lead["business_id"] or "not identified yet"
    lines = [
        _heading(lead),
        f"    {lead['business_name']}  [{who}]  {where}",
        f"    agencies: {', '.join(lead['agencies'])}   window: {lead['window_start']} .. {lead['window_end']}",
        "    evidence:",
        *(f"      {e['occurred_on']}  {e['agency']:<6} {e['finding'] or e['kind'] + ' (details withheld)'}"
          for e in lead["evidence"]),
        *_follow_ups(lead),
        *([f"    reported late: {lead['reported_late_days']} days after its own date (迟报)"]
          if lead.get("reported_late_days") else []),
        f"    action: {lead['recommended_action']}",
    ]
    return "\n".join(lines)


def _heading(lead: dict[str, Any]) -> str:
    """Severity, rules, ID, and where the lead stands."""
    return (f"{_MARK[lead['severity']]} {lead['severity']:<8} {' + '.join(lead['rules'])}  {lead['lead_id']}"
            + {"OPEN": "", "SUPERSEDED": f"  [SUPERSEDED {_why_superseded(lead)}]"}.get(
                lead["status"], f"  [{lead['status']}]")
            + (f"  ESCALATED: {' > '.join(lead.get('escalations') or [lead['escalation']])}"
               if lead.get("escalation") else "")
            + (f"  reopened x{lead['reopened']}" if lead.get("reopened") else ""))


def _follow_ups(lead: dict[str, Any]) -> list[str]:
    return [f"    follow-up: {k['kind']} {k['occurred_on']} {k['event_id'] or ''} {k['lead_id'] or ''}".rstrip()
            for k in lead.get("links") or []]


def _why_superseded(lead: dict[str, Any]) -> str:
    """The lead that replaced it, or the note saying why none did."""
    if lead["superseded_by"]:
        return f"by {lead['superseded_by']}"
    note = next((h["note"] for h in reversed(lead["history"]) if h["status"] == "SUPERSEDED"), None)
    return f"({note})" if note else "(its evidence no longer makes a lead)"


def matches(lead: dict[str, Any], region_prefix: str | None, min_severity: str | None) -> bool:
    if region_prefix and not (lead["region"]["code"] or "").startswith(region_prefix):
        return False
    return not (min_severity and SEVERITIES.index(lead["severity"]) < SEVERITIES.index(min_severity))


def to_json_ready(value: Any) -> Any:
    """Avro values as JSON: dates and times in ISO 8601, decimals as strings."""
    if isinstance(value, dict):
        return {k: to_json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_ready(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
