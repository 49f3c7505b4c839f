"""The report's (通报) figures as plain functions over lead records, events
and dead letters; ``test_follow_through`` runs `hub report` on the broker."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from openpyxl import load_workbook

from hub.domain.events import CST, Agency
from hub.domain.teams import parse_teams
from hub.report import (SOURCE_COLUMNS, TEAM_COLUMNS, Period, build, lead_figures, source_figures, write_markdown,
                        write_xlsx)
from hub.settings import LifecycleSettings, RuleSettings
from tests.test_followup import inspection, police
from tests.test_rules import event

LIFE = LifecycleSettings()
PERIOD = Period(dt.date(2026, 11, 1), dt.date(2026, 11, 30))
AT = dt.datetime(2026, 11, 10, 2, tzinfo=CST)


def lead(n: int, *history: tuple[float, str, str | None], status: str = "OPEN", region: str = "410502",
         links: tuple[str, ...] = (), oversight: bool = False, reopened: int = 0, first_seen: dt.datetime = AT,
         severity: str = "CRITICAL") -> dict:
    return {"lead_id": f"lead-{n}", "status": status, "severity": severity, "first_seen": first_seen,
            "region": {"code": region, "name": None}, "reopened": reopened, "oversight": oversight,
            "links": [{"kind": k} for k in links],
            "history": [{"at": first_seen + dt.timedelta(hours=h), "status": s, "team": t, "note": None}
                        for h, s, t in (((0, "OPEN", None),) + history)]}


def test_lead_figures_count_what_became_of_the_leads() -> None:
    leads = [
        lead(1, (2, "ACKNOWLEDGED", "t"), (30, "TRANSFERRED", "t"), status="TRANSFERRED", links=("POLICE_FILED",)),
        lead(2, (25, "ESCALATED_ACKNOWLEDGE_OVERDUE", None), (26, "ACKNOWLEDGED", "t")),  # 24 h for CRITICAL
        lead(3, (5, "CLOSED", "t"), (5, "ESCALATED_NOT_TRANSFERRED", None), status="CLOSED", oversight=True),
        lead(4, (5, "CLOSED", "t"), (900, "ESCALATED_RECHECK_OVERDUE", None), status="CLOSED", reopened=1),
        lead(5, (5, "CLOSED", "t"), status="RECHECKED", links=("RECHECKED",)),
    ]
    assert dict(lead_figures(leads, LIFE)) == {
        "opened": 5, "acknowledged_in_time": 4, "overdue": 1, "transferred": 1, "filed_by_police": 1, "closed": 3,
        "reopened": 1, "flagged_for_oversight": 1, "rechecks_done": 1, "rechecks_overdue": 1}


def test_source_figures_count_records_rejects_and_delays_per_connector() -> None:
    received = dt.datetime(2026, 11, 10, tzinfo=dt.timezone.utc)
    events = []
    for days, n in ((1, "a"), (2, "b"), (3, "c"), (10, "d"), (40, "e")):
        e = event(n, received.date() - dt.timedelta(days=days))
        e["received_at"] = received
        events.append(e)
    outside = event("z", dt.date(2026, 10, 1))
    outside["received_at"] = dt.datetime(2026, 10, 2, tzinfo=dt.timezone.utc)  # before the period
    dead = [{"stage": "test", "failed_at": received, "original": {}},
            {"stage": "worker", "failed_at": received, "original": {"topic": "hub.events.samr"}},
            {"stage": "test", "failed_at": dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc), "original": {}}]
    [samr_worker, test] = source_figures([*events, outside], dead, {"test": Agency.SAMR.value}, PERIOD, LIFE)
    assert samr_worker == {"agency": "SAMR", "connector": "(worker)", "records": 0, "rejects": 1,
                           "median_delay_days": None, "p90_delay_days": None, "late_reports": 0}
    # delays from the start of each record's own day (CST) to arrival at 08:00 CST: d + 1/3 day
    assert (test["records"], test["rejects"], test["late_reports"]) == (5, 1, 2)
    assert (test["median_delay_days"], test["p90_delay_days"]) == (3.3, 40.3)


def test_a_report_per_team_and_county_with_rectifications_writes_a_workbook(tmp_path: Path) -> None:
    teams = parse_teams({"teams": [
        {"name": "samr-anyang", "agency": "SAMR", "jurisdiction": ["4105"]},
        {"name": "police-anyang", "agency": "POLICE", "jurisdiction": ["4105"]}]})
    order = inspection("r1", dt.date(2026, 9, 1), "NON_COMPLIANT", rectify_by=dt.date(2026, 9, 10))  # overdue
    fresh = inspection("r2", dt.date(2026, 11, 25), "NON_COMPLIANT", rectify_by=dt.date(2026, 12, 20))  # open
    fresh["business"] = {**fresh["business"], "business_id": "92410503MA45RTT0QQ", "region_code": "410503"}
    case = police("FILED", dt.date(2026, 11, 5))
    for e in (order, fresh, case):
        e["received_at"] = dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc)
    received = {"samr-anyang": [lead(1), lead(2, first_seen=dt.datetime(2026, 10, 1, tzinfo=CST))],
                "police-anyang": [lead(1)]}
    report = build(received, [order, fresh, case], [], teams, {"test": "SAMR"}, PERIOD, RuleSettings(), LIFE)
    rows = {(r["team"], r["county"]): r for r in report.teams}
    assert set(rows) == {("samr-anyang", "410502"), ("samr-anyang", "410503"), ("police-anyang", "410502")}
    assert rows["samr-anyang", "410502"]["opened"] == 1  # the lead first published in October is not counted
    assert rows["samr-anyang", "410502"]["rectifications_overdue"] == 1
    assert rows["samr-anyang", "410503"]["rectifications_open"] == 1 and rows["samr-anyang", "410503"]["opened"] == 0
    assert rows["police-anyang", "410502"]["rectifications_overdue"] == 0  # 整改 is market supervision's
    assert rows["samr-anyang", "410503"]["county_name"] == "河南省安阳市北关区"
    assert [r["team"] for r in build(received, [], [], teams, {}, PERIOD, RuleSettings(), LIFE,
                                     team="police-anyang").teams] == ["police-anyang"]
    book = load_workbook(write_xlsx(report, tmp_path / "r.xlsx"), read_only=True)
    assert list(book["teams"].iter_rows(values_only=True))[1] == TEAM_COLUMNS
    assert list(book["sources"].iter_rows(values_only=True))[1] == SOURCE_COLUMNS
    assert "| samr-anyang | 410503 |" in write_markdown(report, tmp_path / "r.md").read_text(encoding="utf-8")
