"""The periodic report (通报): what a provincial office circulates and uses for
约谈 (summoning a lagging desk), from what the hub published.

Two tables, each row computed by plain functions from lead records, events
and dead letters (``build``); ``collect`` reads those from the topics (only
records a worker or connector of the hub signed count), ``write_xlsx`` and
``write_markdown`` write them out.

- Per team and county: of the leads the team received that were first
  published in the period, how many were acknowledged in time, went overdue
  (escalated for a missed acknowledgement or closure), were transferred to
  the police, filed by the police (a 受案 or 立案 linked), closed, reopened,
  and flagged for oversight; the re-checks (回头看) of those leads done on
  evidence and overdue; for market-supervision desks, the county's
  rectifications still open, or overdue, at the period's end.
- Per agency and connector: the records that arrived in the period, the
  rejected ones (dead letters), the median and 90th-percentile reporting
  delay (days from a record's own date to its arrival) and the late ones.
"""
from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from hub.domain.events import CST, Agency, Event, EventKind, event_key, reporting_delay_s
from hub.domain.identifiers import region as division
from hub.domain.followup import RectificationStatus, rectifications
from hub.domain.lifecycle import Escalation, LeadStatus, LinkKind
from hub.domain.rules import to_fact
from hub.domain.teams import Team
from hub.settings import LifecycleSettings, RuleSettings, Settings

TEAM_COLUMNS = ("team", "county", "county_name", "opened", "acknowledged_in_time", "overdue", "transferred",
                "filed_by_police", "closed", "reopened", "flagged_for_oversight", "rectifications_open",
                "rectifications_overdue", "rechecks_done", "rechecks_overdue")
SOURCE_COLUMNS = ("agency", "connector", "records", "rejects", "median_delay_days", "p90_delay_days",
                  "late_reports")
WORKER = "(worker)"  # records the workers refused, by the agency of their topic


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # inclusive

    def holds(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    def holds_instant(self, at: dt.datetime) -> bool:
        return self.holds(at.astimezone(CST).date())


@dataclass
class Report:
    period: Period
    teams: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)


def _escalated(lead: Mapping[str, Any], *levels: Escalation) -> bool:
    return bool({f"ESCALATED_{level}" for level in levels} & {h["status"] for h in lead["history"]})


def _acknowledged_in_time(lead: Mapping[str, Any], lifecycle: LifecycleSettings) -> bool:
    first = next((h["at"] for h in lead["history"] if h["team"] is not None), None)
    limit = lead["first_seen"] + dt.timedelta(milliseconds=lifecycle.acknowledge_ms(lead["severity"]))
    return first is not None and first <= limit


def lead_figures(leads: Iterable[Mapping[str, Any]], lifecycle: LifecycleSettings) -> Counter[str]:
    """The lead columns of a row, over these leads."""
    out: Counter[str] = Counter()
    for lead in leads:
        statuses = {h["status"] for h in lead["history"]}
        links = {k["kind"] for k in lead.get("links") or []}
        out["opened"] += 1
        out["acknowledged_in_time"] += _acknowledged_in_time(lead, lifecycle)
        out["overdue"] += _escalated(lead, Escalation.ACKNOWLEDGE_OVERDUE, Escalation.CLOSE_OVERDUE)
        out["transferred"] += LeadStatus.TRANSFERRED in statuses
        out["filed_by_police"] += bool({LinkKind.POLICE_ACCEPTED, LinkKind.POLICE_FILED} & links)
        out["closed"] += lead["status"] in (LeadStatus.CLOSED, LeadStatus.RECHECKED)
        out["reopened"] += lead["reopened"] > 0
        out["flagged_for_oversight"] += bool(lead.get("oversight"))
        out["rechecks_done"] += LinkKind.RECHECKED in links
        out["rechecks_overdue"] += lead["status"] == LeadStatus.CLOSED and _escalated(lead, Escalation.RECHECK_OVERDUE)
    return out


def rectification_figures(events: Iterable[Event], period: Period, rules: RuleSettings,
                          lifecycle: LifecycleSettings) -> dict[str, Counter[str]]:
    """County code -> the rectifications ordered by the period's end that are
    still open, or overdue, at its end: what a 通报 lists as outstanding."""
    by_business: dict[str, list[Any]] = defaultdict(list)
    county: dict[str, str] = {}
    for event in events:
        key = event_key(event)
        by_business[key].append(to_fact(event, rules))
        county[key] = event["business"]["region_code"] or ""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for key, facts in by_business.items():
        for found in rectifications(facts):
            if found.start.occurred_on > period.end:
                continue
            status = found.status(period.end, lifecycle.rectification_grace_days)
            out[county[key]]["rectifications_open"] += status is RectificationStatus.OPEN
            out[county[key]]["rectifications_overdue"] += status is RectificationStatus.OVERDUE
    return out


def source_figures(events: Iterable[Event], dead_letters: Iterable[Mapping[str, Any]],
                   connectors: Mapping[str, str], period: Period, lifecycle: LifecycleSettings) -> list[dict[str, Any]]:
    """One row per agency and connector (``connectors``: name -> agency)."""
    delays: dict[tuple[str, str], list[float]] = defaultdict(list)
    counts: Counter[tuple[str, str]] = Counter()
    for event in events:
        if period.holds_instant(event["received_at"]):
            source = event["agency"], event["source"]["connector"]
            counts[source] += 1
            if event["kind"] != EventKind.REGISTRATION.value:  # a registry entry reports no finding: no delay
                delays[source].append(reporting_delay_s(event) / 86_400)
    rejects: Counter[tuple[str, str]] = Counter()
    for letter in dead_letters:
        if not period.holds_instant(letter["failed_at"]):
            continue
        if letter["stage"] == "worker":
            topic = letter["original"].get("topic", "")
            agency = next((a.value for a in Agency if topic == f"hub.events.{a.value.lower()}"), None)
            if agency is not None:
                rejects[agency, WORKER] += 1
        elif letter["stage"] in connectors:
            rejects[connectors[letter["stage"]], letter["stage"]] += 1
    rows = []
    for agency, connector in sorted(set(counts) | set(rejects)):
        days = sorted(delays.get((agency, connector), []))
        rows.append({"agency": agency, "connector": connector, "records": counts[agency, connector],
                     "rejects": rejects[agency, connector],
                     "median_delay_days": round(statistics.median(days), 1) if days else None,
                     "p90_delay_days": round(_percentile(days, 0.9), 1) if days else None,
                     # whole days, as a lead counts them (reported_after_days)
                     "late_reports": sum(int(d) > lifecycle.late_report_days for d in days)})
    return rows


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def build(received: Mapping[str, Iterable[Mapping[str, Any]]], events: list[Event],
          dead_letters: Iterable[Mapping[str, Any]], teams: Mapping[str, Team], connectors: Mapping[str, str],
          period: Period, rules: RuleSettings, lifecycle: LifecycleSettings, team: str | None = None,
          region: str | None = None) -> Report:
    """``received``: team name -> the latest record of each lead on its topic."""
    report = Report(period)
    rectified = rectification_figures(events, period, rules, lifecycle)
    for name in sorted(teams):
        if team is not None and name != team:
            continue
        by_county: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for lead in received.get(name, ()):
            code = lead["region"]["code"] or ""
            if period.holds_instant(lead["first_seen"]) and code.startswith(region or ""):
                by_county[code].append(lead)
        desk = teams[name].agency == Agency.SAMR.value and not teams[name].oversees  # 整改 is market supervision's
        rectifying = {c for c in rectified if desk and c.startswith(region or "") and teams[name].receives(
            {"region": {"code": c}, "rules": ["RECTIFICATION_OVERDUE"], "categories": [], "severity": "LOW"})}
        for code in sorted(set(by_county) | rectifying):
            place = division(code) if code else None
            row: dict[str, Any] = {column: 0 for column in TEAM_COLUMNS}
            row.update(lead_figures(by_county.get(code, []), lifecycle))
            if code in rectifying:
                row.update(rectified[code])
            row.update({"team": name, "county": code, "county_name": place.name if place else ""})
            report.teams.append(row)
    report.sources = source_figures(events, dead_letters, connectors, period, lifecycle)
    return report


def write_xlsx(report: Report, path: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "teams"
    for title, columns, rows in (("teams", TEAM_COLUMNS, report.teams), ("sources", SOURCE_COLUMNS, report.sources)):
        if title != "teams":
            sheet = book.create_sheet(title)
        sheet.append([f"通报 {report.period.start} .. {report.period.end}"])
        sheet.append(list(columns))
        for row in rows:
            sheet.append([row[c] for c in columns])
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def write_markdown(report: Report, path: Path) -> Path:
    lines = [f"# 通报 {report.period.start} .. {report.period.end}", ""]
    for title, columns, rows in (("Teams and counties", TEAM_COLUMNS, report.teams),
                                 ("Agencies and connectors", SOURCE_COLUMNS, report.sources)):
        lines += [f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        lines += ["| " + " | ".join("" if row[c] is None else str(row[c]) for c in columns) + " |" for row in rows]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def collect(settings: Settings, teams: Mapping[str, Team], period: Period) -> tuple[
        dict[str, list[dict[str, Any]]], list[Event], list[dict[str, Any]]]:
    """From the topics: each team's received leads (their latest records), the
    events the period needs (those that arrived in it, and every inspection,
    for the rectifications), the dead letters. Only what the hub's own
    identities signed counts, a connector's records only under its own name."""
    from hub.flow.topics import events_topic
    from hub.leadview import SignedReader, dead_letters, final_leads
    from hub.topics import read_to_end
    from hub.trust import Role

    received = {name: list(final_leads(settings, team.topic).values()) for name, team in teams.items()}
    events: dict[str, Event] = {}  # a record sent twice counts once
    read_event = SignedReader(settings, "event", frozenset({Role.CONNECTOR}))
    for agency in Agency:
        for message in read_to_end(settings, events_topic(agency)):
            signed = read_event.signed(message)
            if signed is None:
                continue
            signer, event = signed
            # a connector's figures hold what it signed itself, not another's key's records under its name
            if event["source"]["connector"] == signer.name and (
                    event["kind"] == EventKind.INSPECTION.value or period.holds_instant(event["received_at"])):
                events.setdefault(event["event_id"], event)
    return received, list(events.values()), dead_letters(settings)
