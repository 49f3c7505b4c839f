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
from typing import TYPE_CHECKING, Any, cast
from collections.abc import Iterable, Mapping

from hub.domain.events import CST, Agency, Event, EventKind, event_key, reporting_delay_s
from hub.domain.identifiers import region as division
from hub.domain.followup import RectificationStatus, rectifications
from hub.domain import labels
from hub.domain.lifecycle import TAKEN_UP, Escalation, LeadStatus, LinkKind
from hub.domain.rules import RuleFamily, to_fact
from hub.domain.teams import Team
from hub.settings import LifecycleSettings, RuleSettings

if TYPE_CHECKING:
    from hub.kafka.clients import KafkaClients

# The figures of a row, in the order of the columns, with their headings.
LEAD_FIGURES = {
    "opened": "新发线索", "acknowledged_in_time": "按时签收", "overdue": "超期未签收或未办结",
    "transferred_in_time": "按时移送公安", "transferred_late": "超期移送公安", "transfer_overdue": "超期未移送",
    "transfer_unfiled": "移送后未立案", "not_transferred": "应移未移", "filed_by_police": "公安受案立案",
    "closed": "办结", "reopened": "重新打开", "flagged_for_oversight": "提请监督",
    "rectification_overdue_leads": "整改逾期线索", "rechecks_due": "回头看到期", "rechecks_done": "回头看完成",
}
RECTIFICATION_FIGURES = {"rectifications_ordered": "责令整改", "rectifications_open": "整改未到期",
                         "rectifications_overdue": "整改逾期未核实"}
LATE_FIGURES = {"export_rows": "报送记录（行）", "late_reports": "迟报（行）"}
COUNTY_KEYS = {"county": "区划代码", "county_name": "区县"}
COUNTY_COLUMNS = (*COUNTY_KEYS, *LEAD_FIGURES, *RECTIFICATION_FIGURES, *LATE_FIGURES)
TEAM_COLUMNS = ("team", "team_name", *COUNTY_KEYS, *LEAD_FIGURES, *RECTIFICATION_FIGURES)
SOURCE_COLUMNS = ("agency", "connector", "export_rows", "rejects", "median_delay_days", "p90_delay_days",
                  "late_reports")
HEADINGS = {**COUNTY_KEYS, **LEAD_FIGURES, **RECTIFICATION_FIGURES, **LATE_FIGURES, "team": "队伍",
            "team_name": "队伍名称", "agency": "部门", "connector": "数据接入", "rejects": "退回（死信）",
            "median_delay_days": "报送延时中位数（天）", "p90_delay_days": "报送延时90分位（天）"}
DELAY_BUCKETS = ((0, 1, "1天内"), (2, 3, "2-3天"), (4, 7, "4-7天"), (8, 15, "8-15天"), (16, 30, "16-30天"),
                 (31, None, "30天以上"))
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
    counties: list[dict[str, Any]] = field(default_factory=list)  # each lead once per county it acts in
    rules: list[dict[str, Any]] = field(default_factory=list)  # per county: leads raised per rule
    teams: list[dict[str, Any]] = field(default_factory=list)  # per team and county: what the team received
    sources: list[dict[str, Any]] = field(default_factory=list)  # per agency and connector
    delays: dict[str, int] = field(default_factory=dict)  # export rows per reporting delay bucket


def _raised(lead: Mapping[str, Any]) -> list[str]:
    return [h["status"] for h in lead["history"]]


def _escalated(lead: Mapping[str, Any], *levels: Escalation) -> bool:
    return bool({f"ESCALATED_{level}" for level in levels} & set(_raised(lead)))


def _acknowledged_in_time(lead: Mapping[str, Any], lifecycle: LifecycleSettings) -> bool:
    first = next((h["at"] for h in lead["history"] if h["team"] is not None), None)
    limit = lead["first_seen"] + dt.timedelta(milliseconds=lifecycle.acknowledge_ms(lead["severity"]))
    return first is not None and first <= limit


def _transfer(lead: Mapping[str, Any]) -> str:
    """"in_time", "late" (TRANSFER_OVERDUE raised before the transfer), or "" (not transferred)."""
    raised = _raised(lead)
    if LeadStatus.TRANSFERRED not in raised:
        return ""
    before = raised[:raised.index(LeadStatus.TRANSFERRED)]
    return "late" if f"ESCALATED_{Escalation.TRANSFER_OVERDUE}" in before else "in_time"


def counted(leads: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The leads a 通报 counts: a SUPERSEDED lead was re-drawn into another
    (or its evidence makes none any more), so it was never a lead of its own."""
    return [lead for lead in leads if lead["status"] != LeadStatus.SUPERSEDED]


def lead_figures(leads: Iterable[Mapping[str, Any]], lifecycle: LifecycleSettings) -> Counter[str]:
    """The lead columns of a row, over these leads (SUPERSEDED ones left out)."""
    out: Counter[str] = Counter(dict.fromkeys(LEAD_FIGURES, 0))
    for lead in counted(leads):
        raised = set(_raised(lead))
        links = {k["kind"] for k in lead.get("links") or []}
        transfer = _transfer(lead)
        out["opened"] += 1
        out["acknowledged_in_time"] += _acknowledged_in_time(lead, lifecycle)
        out["overdue"] += _escalated(lead, Escalation.ACKNOWLEDGE_OVERDUE, Escalation.CLOSE_OVERDUE)
        out["transferred_in_time"] += transfer == "in_time"
        out["transferred_late"] += transfer == "late"
        out["transfer_overdue"] += f"ESCALATED_{Escalation.TRANSFER_OVERDUE}" in raised
        out["transfer_unfiled"] += f"ESCALATED_{Escalation.TRANSFER_UNFILED}" in raised
        out["not_transferred"] += f"ESCALATED_{Escalation.NOT_TRANSFERRED}" in raised
        out["filed_by_police"] += bool(TAKEN_UP & links)
        out["closed"] += lead["status"] in (LeadStatus.CLOSED, LeadStatus.RECHECKED)
        out["reopened"] += lead["reopened"] > 0
        out["flagged_for_oversight"] += bool(lead.get("oversight"))
        out["rectification_overdue_leads"] += lead["rules"][0] == RuleFamily.RECTIFICATION_OVERDUE
        out["rechecks_due"] += _escalated(lead, Escalation.RECHECK_DUE)
        out["rechecks_done"] += LinkKind.RECHECKED in links
    return out


def _counties(lead: Mapping[str, Any]) -> list[str]:
    """Where a lead acts: its business's county, and the further ones it
    reaches (a batch trace: the sellers' counties), each once."""
    return list(dict.fromkeys([lead["region"]["code"] or "", *(lead.get("also_regions") or [])]))


def rectification_figures(events: Iterable[Event], period: Period, rules: RuleSettings,
                          lifecycle: LifecycleSettings) -> dict[str, Counter[str]]:
    """County code -> the rectifications ordered in the period, and those
    ordered by its end still open, or overdue, at its end: what a 通报 lists
    as outstanding."""
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
            out[county[key]]["rectifications_ordered"] += period.holds(found.start.occurred_on)
            out[county[key]]["rectifications_open"] += status is RectificationStatus.OPEN
            out[county[key]]["rectifications_overdue"] += status is RectificationStatus.OVERDUE
    return out


def _export_rows(events: Iterable[Event], period: Period) -> dict[tuple[str, str, int], Event]:
    """The export rows that arrived in the period, each once (a sampling row
    gives its producer's and its seller's event; a farm sample, one per
    item): 迟报 is the clerk's, counted per row."""
    rows: dict[tuple[str, str, int], Event] = {}
    for event in events:
        if period.holds_instant(event["received_at"]):
            source = event["source"]
            rows.setdefault((source["connector"], source["file"], source["row"]), event)
    return rows


def _delay_days(event: Event) -> float | None:
    """Days from the record's own date to its arrival; None for a registry
    entry, which reports no finding."""
    return None if event["kind"] == EventKind.REGISTRATION.value else reporting_delay_s(event) / 86_400


def late_figures(events: Iterable[Event], period: Period, lifecycle: LifecycleSettings) -> dict[str, Counter[str]]:
    """County code -> export rows that arrived in the period and the late ones (迟报)."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for event in _export_rows(events, period).values():
        county = event["business"]["region_code"] or ""
        days = _delay_days(event)
        out[county]["export_rows"] += 1
        out[county]["late_reports"] += days is not None and int(days) > lifecycle.late_report_days
    return out


def delay_distribution(events: Iterable[Event], period: Period) -> dict[str, int]:
    """Export rows per reporting delay, in whole days."""
    out = {label: 0 for _, _, label in DELAY_BUCKETS}
    for event in _export_rows(events, period).values():
        days = _delay_days(event)
        if days is None:
            continue
        label = next(label for low, high, label in DELAY_BUCKETS if high is None or int(days) <= high)
        out[label] += 1
    return out


def _worker_agency(topic: str) -> str | None:
    """The agency whose events topic this is (a record the workers refused)."""
    return next((a.value for a in Agency if topic == f"hub.events.{a.value.lower()}"), None)


def _rejects(dead_letters: Iterable[Mapping[str, Any]], connectors: Mapping[str, str],
             period: Period) -> Counter[tuple[str, str]]:
    """(agency, connector) -> the dead letters of the period: a connector's
    rejects under its name, the workers' under their topic's agency."""
    rejects: Counter[tuple[str, str]] = Counter()
    for letter in dead_letters:
        if not period.holds_instant(letter["failed_at"]):
            continue
        if letter["stage"] == "worker":
            agency = _worker_agency(letter["original"].get("topic", ""))
            if agency is not None:
                rejects[agency, WORKER] += 1
        elif letter["stage"] in connectors:
            rejects[connectors[letter["stage"]], letter["stage"]] += 1
    return rejects


def _source_row(agency: str, connector: str, export_rows: int, rejects: int, delays: list[float],
                lifecycle: LifecycleSettings) -> dict[str, Any]:
    """A row of the sources' table; ``delays``: its rows' reporting delays in days."""
    days = sorted(delays)
    return {"agency": agency, "connector": connector, "export_rows": export_rows, "rejects": rejects,
            "median_delay_days": round(statistics.median(days), 1) if days else None,
            "p90_delay_days": round(_percentile(days, 0.9), 1) if days else None,
            # whole days, as a lead counts them (reported_after_days)
            "late_reports": sum(int(d) > lifecycle.late_report_days for d in days)}


def source_figures(events: Iterable[Event], dead_letters: Iterable[Mapping[str, Any]],
                   connectors: Mapping[str, str], period: Period, lifecycle: LifecycleSettings) -> list[dict[str, Any]]:
    """One row per agency and connector (``connectors``: name -> agency):
    export rows, rejects and reporting delays, per export row."""
    delays: dict[tuple[str, str], list[float]] = defaultdict(list)
    counts: Counter[tuple[str, str]] = Counter()
    for event in _export_rows(events, period).values():
        source = event["agency"], event["source"]["connector"]
        counts[source] += 1
        if (delay := _delay_days(event)) is not None:
            delays[source].append(delay)
    rejects = _rejects(dead_letters, connectors, period)
    return [_source_row(agency, connector, counts[agency, connector], rejects[agency, connector],
                        delays.get((agency, connector), []), lifecycle)
            for agency, connector in sorted(set(counts) | set(rejects))]


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _county_name(code: str) -> str:
    place = division(code) if code else None
    return place.name if place else "（区划不明）"


def _leads_by_county(leads: Iterable[Mapping[str, Any]], period: Period,
                     prefix: str) -> dict[str, list[Mapping[str, Any]]]:
    """County code (under ``prefix``) -> the counted leads first published in
    the period that act there."""
    by_county: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for lead in counted(leads):
        if not period.holds_instant(lead["first_seen"]):
            continue
        for code in _counties(lead):
            if code.startswith(prefix):
                by_county[code].append(lead)
    return by_county


def _county_row(code: str, leads: list[Mapping[str, Any]], rectified: Mapping[str, Counter[str]],
                late: Mapping[str, Counter[str]], lifecycle: LifecycleSettings) -> dict[str, Any]:
    """A row of the counties' table: its leads', rectifications' and late reports' figures."""
    row: dict[str, Any] = {"county": code, "county_name": _county_name(code)}
    row.update(lead_figures(leads, lifecycle))
    row.update({k: rectified.get(code, Counter())[k] for k in RECTIFICATION_FIGURES})
    row.update({k: late.get(code, Counter())[k] for k in LATE_FIGURES})
    return row


def _rule_row(code: str, county_name: str, leads: list[Mapping[str, Any]]) -> dict[str, Any]:
    """A row of the rules' table: a county's new leads per rule."""
    per_rule = Counter(lead["rules"][0] for lead in leads)
    return {"county": code, "county_name": county_name, **{r.value: per_rule[r.value] for r in RuleFamily}}


def _add_counties(report: Report, by_county: Mapping[str, list[Mapping[str, Any]]],
                  rectified: Mapping[str, Counter[str]], late: Mapping[str, Counter[str]], prefix: str,
                  lifecycle: LifecycleSettings) -> None:
    """The counties' and the rules' tables: a row per county (under
    ``prefix``) with leads, rectifications or export rows."""
    for code in sorted(c for c in {*by_county, *rectified, *late} if c.startswith(prefix)):
        row = _county_row(code, by_county.get(code, []), rectified, late, lifecycle)
        report.counties.append(row)
        report.rules.append(_rule_row(code, row["county_name"], by_county.get(code, [])))


def _team_leads(team: Team, received: Iterable[Mapping[str, Any]], period: Period,
                prefix: str) -> dict[str, list[Mapping[str, Any]]]:
    """County code -> the leads the team received, first published in the
    period, that act in that county within the team's reach."""
    mine: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for lead in counted(received):
        if not period.holds_instant(lead["first_seen"]):
            continue
        for code in _counties(lead):
            if code.startswith(prefix) and team.receives({**lead, "also_regions": [], "region": {"code": code}}):
                mine[code].append(lead)
    return mine


def _rectifying_counties(team: Team, rectified: Iterable[str], prefix: str) -> set[str]:
    """The counties whose rectifications (整改) the team answers for: 整改 is
    market supervision's, a desk's and not an oversight team's."""
    if team.agency != Agency.SAMR.value or team.oversees:
        return set()
    return {c for c in rectified if c.startswith(prefix) and team.receives(
        {"region": {"code": c}, "rules": ["RECTIFICATION_OVERDUE"], "categories": [], "severity": "LOW"})}


def _team_rows(name: str, team: Team, received: Iterable[Mapping[str, Any]],
               rectified: Mapping[str, Counter[str]], period: Period, prefix: str,
               lifecycle: LifecycleSettings) -> list[dict[str, Any]]:
    """The team's rows, one per county it received leads in or answers for rectifications in."""
    mine = _team_leads(team, received, period, prefix)
    rectifying = _rectifying_counties(team, rectified, prefix)
    rows = []
    for code in sorted(set(mine) | rectifying):
        row = {"team": name, "team_name": team.description or name, "county": code,
               "county_name": _county_name(code), **lead_figures(mine.get(code, []), lifecycle)}
        row.update({k: rectified.get(code, Counter())[k] if code in rectifying else 0
                    for k in RECTIFICATION_FIGURES})
        rows.append(row)
    return rows


def build(leads: Iterable[Mapping[str, Any]], received: Mapping[str, Iterable[Mapping[str, Any]]],
          events: list[Event], dead_letters: Iterable[Mapping[str, Any]], teams: Mapping[str, Team],
          connectors: Mapping[str, str], period: Period, rules: RuleSettings, lifecycle: LifecycleSettings,
          team: str | None = None, region: str | None = None) -> Report:
    """``leads``: the latest record of each lead (the operators' topic);
    ``received``: team name -> the latest record of each lead on its topic.
    Counted: the leads first published in the period."""
    report = Report(period)
    prefix = region or ""
    by_county = _leads_by_county(leads, period, prefix)
    rectified = rectification_figures(events, period, rules, lifecycle)
    late = late_figures(events, period, lifecycle)
    _add_counties(report, by_county, rectified, late, prefix, lifecycle)
    for name in sorted(teams):
        if team is None or name == team:
            report.teams += _team_rows(name, teams[name], received.get(name, ()), rectified, period, prefix,
                                       lifecycle)
    report.sources = source_figures(events, dead_letters, connectors, period, lifecycle)
    report.delays = delay_distribution(events, period)
    return report


def totals(rows: list[dict[str, Any]], columns: Iterable[str]) -> dict[str, Any]:
    """The 合计 row of a table: each figure summed (a lead in two counties counts in each)."""
    return {c: sum(r[c] or 0 for r in rows) for c in columns}


def _tables(report: Report) -> list[tuple[str, str, tuple[str, ...], list[dict[str, Any]]]]:
    """(sheet, title, columns, rows) of the workbook, in order; each lead table ends with its 合计."""
    rule_columns = ("county", "county_name", *(r.value for r in RuleFamily))
    sources = [{**r, "agency": labels.agency(r["agency"]), "connector": "（工作进程拒收）" if r["connector"] == WORKER
                else r["connector"]} for r in report.sources]
    return [
        ("各区县", "各区县线索办理情况（每条线索在其作用的每个区县计一次）", COUNTY_COLUMNS, report.counties),
        ("按规则", "各区县新发线索（按规则）", rule_columns, report.rules),
        ("各队伍", "各执法队伍收到线索的办理情况", TEAM_COLUMNS, report.teams),
        ("数据报送", "各部门数据报送与迟报（按导出记录行计）", SOURCE_COLUMNS, sources),
    ]


def _width(text: str) -> float:
    """A text's width in Excel's units: a Chinese character is two."""
    return float(sum(2 if ord(ch) > 0x2E80 else 1 for ch in text))


def _heading(column: str) -> str:
    return HEADINGS.get(column) or labels.rule(column)


def _write_table(book: Any, report: Report, name: str, title: str, columns: tuple[str, ...],
                 rows: list[dict[str, Any]]) -> Any:
    """A sheet of the workbook: its title, Chinese headings, the rows and,
    under a lead table, its 合计 row; sized and set up for printing."""
    from openpyxl.styles import Alignment, Font

    bold = Font(bold=True)
    sheet = book.create_sheet(name)
    sheet.append([f"通报  {report.period.start} 至 {report.period.end}  {title}"])
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append([_heading(c) for c in columns])
    for cell in sheet[2]:
        cell.font, cell.alignment = bold, Alignment(wrap_text=True, vertical="center")
    for row in rows:
        sheet.append([row[c] for c in columns])
    if rows and name != "数据报送":
        _append_total(sheet, columns, rows)
    sheet.freeze_panes = "C3"
    _fit_columns(sheet, columns, rows)
    _set_up_printing(sheet)
    return sheet


def _append_total(sheet: Any, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """The 合计 row, in bold, under a table's figures."""
    from openpyxl.styles import Font

    figures = [c for c in columns if isinstance(rows[0][c], int) and c not in ("county",)]
    total = totals(rows, figures)
    sheet.append(["合计" if i == 0 else total.get(c, "") for i, c in enumerate(columns)])
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)


def _fit_columns(sheet: Any, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Column widths to fit the headings and values; a taller heading row."""
    from openpyxl.utils import get_column_letter

    for i, column in enumerate(columns, 1):
        # a heading wraps onto two lines; a value does not
        wide = max([_width(_heading(column)) / 2, *(_width(str(r[column])) for r in rows if r[column] is not None)])
        sheet.column_dimensions[get_column_letter(i)].width = min(max(6.0, wide + 2), 40)
    sheet.row_dimensions[2].height = 32


def _set_up_printing(sheet: Any) -> None:
    # printed as an office circulates it: A4 landscape, one page wide, the headings on every page
    sheet.page_setup.orientation, sheet.page_setup.paperSize = "landscape", sheet.PAPERSIZE_A4
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight = 1, 0
    sheet.print_title_rows = "1:2"


def _chart_rules(by_rule: Any, report: Report) -> None:
    """Leads per county by rule, stacked bars under the rules' table."""
    from openpyxl.chart import BarChart, Reference

    chart = BarChart()
    chart.type, chart.grouping, chart.overlap = "bar", "stacked", 100
    chart.title, chart.y_axis.title = "各区县新发线索（按规则）", "线索数"
    chart.add_data(Reference(by_rule, min_col=3, max_col=2 + len(RuleFamily), min_row=2,
                             max_row=2 + len(report.rules)), titles_from_data=True)
    chart.set_categories(Reference(by_rule, min_col=2, min_row=3, max_row=2 + len(report.rules)))
    chart.height, chart.width = min(12.0, 6 + len(report.rules) * 0.6), 22
    chart.y_axis.majorUnit, chart.y_axis.number_format = 1, "0"  # whole leads
    by_rule.add_chart(chart, f"A{len(report.rules) + 6}")


def _chart_team_overdue(teams: Any, report: Report) -> None:
    """Overdue leads per team, over its counties: the table the chart draws, and the chart."""
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Font

    bold = Font(bold=True)
    per_team: dict[str, Counter[str]] = defaultdict(Counter)
    for row in report.teams:
        per_team[row["team_name"]].update({k: row[k] for k in ("overdue", "transfer_overdue")})
    top = teams.max_row + 3
    for i, heading in enumerate(("队伍名称", HEADINGS["overdue"], HEADINGS["transfer_overdue"]), 1):
        teams.cell(top, i, heading).font = bold
    for r, (team_name, overdue_of) in enumerate(sorted(per_team.items()), top + 1):
        teams.cell(r, 1, team_name)
        teams.cell(r, 2, overdue_of["overdue"])
        teams.cell(r, 3, overdue_of["transfer_overdue"])
    overdue = BarChart()
    overdue.title, overdue.y_axis.title = "各队伍超期线索", "线索数"
    overdue.add_data(Reference(teams, min_col=2, max_col=3, min_row=top, max_row=top + len(per_team)),
                     titles_from_data=True)
    overdue.set_categories(Reference(teams, min_col=1, min_row=top + 1, max_row=top + len(per_team)))
    overdue.height, overdue.width = 9, 20
    overdue.y_axis.majorUnit, overdue.y_axis.number_format = 1, "0"
    teams.add_chart(overdue, f"E{top}")


def _chart_delays(sources: Any, report: Report) -> None:
    """The reporting delays' distribution: its table under the sources' table, and the chart."""
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Font

    bold = Font(bold=True)
    start = sources.max_row + 3
    sources.cell(start, 1, "报送延时分布（导出记录行）").font = bold
    sources.cell(start + 1, 1, "延时").font = bold
    sources.cell(start + 1, 2, "记录行").font = bold
    for i, (label, n) in enumerate(report.delays.items(), start + 2):
        sources.cell(i, 1, label)
        sources.cell(i, 2, n)
    delays = BarChart()
    delays.title, delays.y_axis.title, delays.x_axis.title = "报送延时分布", "记录行", "自记录日期至到达枢纽"
    delays.add_data(Reference(sources, min_col=2, min_row=start + 1, max_row=start + 1 + len(report.delays)),
                    titles_from_data=True)
    delays.set_categories(Reference(sources, min_col=1, min_row=start + 2, max_row=start + 1 + len(report.delays)))
    delays.legend, delays.height, delays.width = None, 8, 16
    delays.y_axis.number_format = "0"
    sources.add_chart(delays, f"D{start}")


def write_xlsx(report: Report, path: Path) -> Path:
    """The 通报 as a workbook: one sheet per table, Chinese headings, a 合计
    row, frozen headings, widths to fit, and native charts: leads per county
    by rule, overdue per team, the reporting delays."""
    from openpyxl import Workbook

    book = Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    sheets = {name: _write_table(book, report, name, title, columns, rows)
              for name, title, columns, rows in _tables(report)}
    if report.rules:
        _chart_rules(sheets["按规则"], report)
    if report.teams:
        _chart_team_overdue(sheets["各队伍"], report)
    _chart_delays(sheets["数据报送"], report)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def write_markdown(report: Report, path: Path) -> Path:
    lines = [f"# 通报 {report.period.start} 至 {report.period.end}", ""]
    for _, title, columns, rows in _tables(report):
        lines += [f"## {title}", "", "| " + " | ".join(_heading(c) for c in columns) + " |",
                  "|" + " --- |" * len(columns)]
        lines += ["| " + " | ".join("" if row[c] is None else str(row[c]) for c in columns) + " |" for row in rows]
        lines.append("")
    lines += ["## 报送延时分布（导出记录行）", "", "| 延时 | 记录行 |", "| --- | --- |",
              *(f"| {label} | {n} |" for label, n in report.delays.items()), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _counts_for(event: Event, signer: str, period: Period) -> bool:
    """Whether a signed event counts in the period's report: a connector's
    figures hold what it signed itself, not another's key's records under its
    name; every inspection (for the rectifications) and what arrived in the period."""
    return event["source"]["connector"] == signer and (
        event["kind"] == EventKind.INSPECTION.value or period.holds_instant(event["received_at"]))


def _signed_events(clients: KafkaClients, period: Period) -> list[Event]:
    """The events the period needs, from every agency's topic, as their connectors signed them."""
    from hub.flow.topics import events_topic
    from hub.kafka.readers import SignedReader
    from hub.kafka.topics import read_to_end
    from hub.trust import Role

    events: dict[str, Event] = {}  # a record sent twice counts once
    read_event = SignedReader(clients.settings, "event", frozenset({Role.CONNECTOR}))
    for agency in Agency:
        for message in read_to_end(clients, events_topic(agency)):
            signed = read_event.signed(message)
            if signed is None:
                continue
            signer, record = signed
            event = cast(Event, record)  # read with the event contract
            if _counts_for(event, signer.name, period):
                events.setdefault(event["event_id"], event)
    return list(events.values())


def collect(clients: KafkaClients, teams: Mapping[str, Team], period: Period) -> tuple[
        list[dict[str, Any]], dict[str, list[dict[str, Any]]], list[Event], list[dict[str, Any]]]:
    """From the topics: every lead (its latest record on the operators'
    topic), each team's received leads (their latest records), the
    events the period needs (those that arrived in it, and every inspection,
    for the rectifications), the dead letters. Only what the hub's own
    identities signed counts, a connector's records only under its own name."""
    from hub.kafka.readers import dead_letters, final_leads

    leads = list(final_leads(clients).values())
    received = {name: list(final_leads(clients, team.topic).values()) for name, team in teams.items()}
    return leads, received, _signed_events(clients, period), dead_letters(clients)
