"""The report's (通报) figures as plain functions over lead records, events
and dead letters, checked against a scenario counted by hand; the workbook
rendered by LibreOffice as an office would print it. ``test_follow_through``
runs `hub report` on the broker."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

from openpyxl import load_workbook

from hub.domain.events import CST, Agency
from hub.domain.teams import parse_teams
from hub.apps.report import (COUNTY_COLUMNS, HEADINGS, LEAD_FIGURES, Period, build, lead_figures, source_figures,
                        write_markdown, write_xlsx)
from hub.settings import LifecycleSettings, RuleSettings
from tests.test_followup import inspection
from tests.test_rules import event

LIFE = LifecycleSettings()
PERIOD = Period(dt.date(2026, 11, 1), dt.date(2026, 11, 30))
AT = dt.datetime(2026, 11, 10, 2, tzinfo=CST)


def lead(n: int, *history: tuple[float, str, str | None], status: str = "OPEN", region: str = "410502",
         links: tuple[str, ...] = (), oversight: bool = False, reopened: int = 0, first_seen: dt.datetime = AT,
         severity: str = "CRITICAL", rule: str = "CRIMINAL_REFERRAL", also: tuple[str, ...] = ()) -> dict:
    return {"lead_id": f"lead-{n}", "status": status, "severity": severity, "first_seen": first_seen,
            "rules": [rule], "region": {"code": region, "name": None}, "reopened": reopened, "oversight": oversight,
            "links": [{"kind": k} for k in links], "also_regions": list(also), "categories": [], "evidence": [],
            "history": [{"at": first_seen + dt.timedelta(hours=h), "status": s, "team": t, "note": None}
                        for h, s, t in (((0, "OPEN", None), *history))]}


# The scenario, counted by hand below.
L1 = lead(1, (2, "ACKNOWLEDGED", "t"), (30, "TRANSFERRED", "t"), status="TRANSFERRED", links=("POLICE_FILED",))
L2 = lead(2, (25, "ESCALATED_ACKNOWLEDGE_OVERDUE", None), (26, "ACKNOWLEDGED", "t"),
          (97, "ESCALATED_TRANSFER_OVERDUE", None), (100, "TRANSFERRED", "t"), status="TRANSFERRED", oversight=True)
L3 = lead(3, (5, "CLOSED", "t"), (5, "ESCALATED_NOT_TRANSFERRED", None), status="CLOSED", region="410503",
          oversight=True)
L4 = lead(4, (3, "SUPERSEDED", None), status="SUPERSEDED", rule="CROSS_AGENCY", severity="HIGH")  # never counted
L5 = lead(5, rule="BATCH_TRACE", severity="HIGH", region="410725", also=("410502", "410503"))  # acts in 3 counties
L6 = lead(6, (0, "ESCALATED_RECTIFICATION_OVERDUE", None), rule="RECTIFICATION_OVERDUE", severity="MEDIUM",
          region="410503")
L7 = lead(7, rule="REPEAT_OFFENDER", severity="MEDIUM", first_seen=dt.datetime(2026, 10, 1, tzinfo=CST))  # October
L8 = lead(8, (2, "ACKNOWLEDGED", "t"), (5, "CLOSED", "t"), (720, "ESCALATED_RECHECK_DUE", None),
          (730, "RECHECKED", None), status="RECHECKED", region="410505", links=("RECHECKED",), severity="LOW",
          rule="REPEAT_OFFENDER")
LEADS = [L1, L2, L3, L4, L5, L6, L7, L8]
TEAMS = parse_teams({"teams": [
    {"name": "samr-anyang", "agency": "SAMR", "jurisdiction": ["4105"], "description": "安阳市市场监督管理局"},
    {"name": "samr-wenfeng", "agency": "SAMR", "jurisdiction": ["410502"], "description": "文峰区市场监督管理局"},
    {"name": "police-anyang", "agency": "POLICE", "jurisdiction": ["4105"]}]})
ZEROS = dict.fromkeys(LEAD_FIGURES, 0)


def _events() -> list[dict]:
    """Rectification orders, and export rows arriving in November: one row gave two events (counted once)."""
    order = inspection("r1", dt.date(2026, 9, 1), "NON_COMPLIANT", rectify_by=dt.date(2026, 9, 10))  # overdue
    fresh = inspection("r2", dt.date(2026, 11, 25), "NON_COMPLIANT", rectify_by=dt.date(2026, 12, 20))  # open
    fresh["business"] = {**fresh["business"], "business_id": "92410503MA45RTT0QQ", "region_code": "410503"}
    late_a, late_b = event("s1", dt.date(2026, 10, 1)), event("s2", dt.date(2026, 10, 1))  # one sampling row
    prompt = event("s3", dt.date(2026, 11, 25))
    for n, e in enumerate((order, fresh, late_a, late_b, prompt)):
        e["received_at"] = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
        e["source"] = {**e["source"], "row": 7 if e in (late_a, late_b) else 10 + n}
    return [order, fresh, late_a, late_b, prompt]


def test_the_report_counts_a_scenario_as_counted_by_hand() -> None:
    received = {"samr-anyang": LEADS, "samr-wenfeng": [L1, L2, L5, L4], "police-anyang": [L1, L2, L3]}
    report = build(LEADS, received, _events(), [], TEAMS, {"test": "SAMR"}, PERIOD, RuleSettings(), LIFE)
    counties = {r["county"]: r for r in report.counties}
    assert set(counties) == {"410502", "410503", "410505", "410725"}
    assert counties["410502"] == {
        "county": "410502", "county_name": "河南省安阳市文峰区", **ZEROS,
        "opened": 3, "acknowledged_in_time": 1, "overdue": 1, "transferred_in_time": 1, "transferred_late": 1,
        "transfer_overdue": 1, "filed_by_police": 1, "flagged_for_oversight": 1,
        "rectifications_ordered": 0, "rectifications_open": 0, "rectifications_overdue": 1,
        "export_rows": 3, "late_reports": 2}  # the order (late), the sampling row (two events, late), a prompt one
    assert counties["410503"] == {
        "county": "410503",
        "county_name": "河南省安阳市北关区",
        **ZEROS,
        "opened": 3,
        "acknowledged_in_time": 1,
        "closed": 1,
        "not_transferred": 1,
        "flagged_for_oversight": 1,
        "rectification_overdue_leads": 1,
        "rectifications_ordered": 1,
        "rectifications_open": 1,
        "rectifications_overdue": 0,
        "export_rows": 1,
        "late_reports": 0,
    }
    assert counties["410725"]["opened"] == 1 and counties["410725"]["county_name"] == "河南省新乡市原阳县"
    assert {k: counties["410505"][k] for k in ("opened", "closed", "rechecks_due", "rechecks_done")} == {
        "opened": 1,
        "closed": 1,
        "rechecks_due": 1,
        "rechecks_done": 1,
    }
    rules = {r["county"]: r for r in report.rules}
    assert (rules["410502"]["CRIMINAL_REFERRAL"], rules["410502"]["BATCH_TRACE"], rules["410502"]["CROSS_AGENCY"]) == (
        2,
        1,
        0,
    )
    teams = {(r["team"], r["county"]): r for r in report.teams}
    assert set(teams) == {("samr-anyang", c) for c in ("410502", "410503", "410505")} | {
        ("samr-wenfeng", "410502"),
        ("police-anyang", "410502"),
        ("police-anyang", "410503"),
    }
    # a city desk, its county's desk and the county sheet agree on the county's leads
    for key in LEAD_FIGURES:
        assert teams["samr-anyang", "410502"][key] == teams["samr-wenfeng", "410502"][key] == counties["410502"][key]
    assert teams["samr-anyang", "410502"]["team_name"] == "安阳市市场监督管理局"
    assert teams["police-anyang", "410502"]["rectifications_overdue"] == 0  # 整改 is market supervision's
    assert report.delays == {"1天内": 2, "2-3天": 0, "4-7天": 0, "8-15天": 0, "16-30天": 0, "30天以上": 2}
    only = build(
        LEADS, received, [], [], TEAMS, {}, PERIOD, RuleSettings(), LIFE, team="police-anyang", region="410503"
    )
    assert [(r["team"], r["county"]) for r in only.teams] == [("police-anyang", "410503")]
    assert [r["county"] for r in only.counties] == ["410503"]


def test_lead_figures_leave_superseded_leads_out() -> None:
    assert lead_figures([L4], LIFE)["opened"] == 0 and lead_figures([L1, L4], LIFE)["opened"] == 1


def test_source_figures_count_export_rows_rejects_and_delays_per_connector() -> None:
    received = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
    events = []
    for days, n in ((1, "a"), (2, "b"), (3, "c"), (10, "d"), (40, "e")):
        e = event(n, received.date() - dt.timedelta(days=days))
        e["received_at"], e["source"] = received, {**e["source"], "row": days}
        events.append(e)
    twin = {**events[-1], "event_id": "test:e2"}  # the same export row's second event
    outside = event("z", dt.date(2026, 10, 1))
    outside["received_at"] = dt.datetime(2026, 10, 2, tzinfo=dt.UTC)  # before the period
    dead = [
        {"stage": "test", "failed_at": received, "original": {}},
        {"stage": "worker", "failed_at": received, "original": {"topic": "hub.events.samr"}},
        {"stage": "test", "failed_at": dt.datetime(2026, 12, 2, tzinfo=dt.UTC), "original": {}},
    ]
    [samr_worker, test] = source_figures([*events, twin, outside], dead, {"test": Agency.SAMR.value}, PERIOD, LIFE)
    assert samr_worker == {
        "agency": "SAMR",
        "connector": "(worker)",
        "export_rows": 0,
        "rejects": 1,
        "median_delay_days": None,
        "p90_delay_days": None,
        "late_reports": 0,
    }
    # delays from the start of each record's own day (CST) to arrival at 08:00 CST: d + 1/3 day
    assert (test["export_rows"], test["rejects"], test["late_reports"]) == (5, 1, 2)
    assert (test["median_delay_days"], test["p90_delay_days"]) == (3.3, 40.3)


def _report(tmp_path: Path) -> Path:
    received = {"samr-anyang": LEADS, "samr-wenfeng": [L1, L2, L5], "police-anyang": [L1, L2, L3]}
    report = build(LEADS, received, _events(), [], TEAMS, {"test": "SAMR"}, PERIOD, RuleSettings(), LIFE)
    write_markdown(report, tmp_path / "r.md")
    return write_xlsx(report, tmp_path / "r.xlsx")


def test_the_workbook_is_in_chinese_with_totals_frozen_headings_and_charts(tmp_path: Path) -> None:
    book = load_workbook(_report(tmp_path))
    assert book.sheetnames == ["各区县", "按规则", "各队伍", "数据报送"]
    counties = book["各区县"]
    rows = list(counties.iter_rows(values_only=True))
    assert rows[0][0] == "通报  2026-11-01 至 2026-11-30  各区县线索办理情况（每条线索在其作用的每个区县计一次）"
    assert rows[1] == tuple(HEADINGS[c] for c in COUNTY_COLUMNS) and rows[1][:4] == (
        "区划代码",
        "区县",
        "新发线索",
        "按时签收",
    )
    total = dict(zip(COUNTY_COLUMNS, rows[-1], strict=False))
    assert total["county"] == "合计" and total["opened"] == 3 + 3 + 1 + 1  # a lead in two counties counts in each
    assert counties.freeze_panes == "C3" and counties.column_dimensions["B"].width >= 18
    assert list(book["按规则"].iter_rows(values_only=True))[1][2:4] == ("涉嫌犯罪移送", "多部门交叉")
    assert len(book["按规则"]._charts) == 1 and len(book["各队伍"]._charts) == 1 and len(book["数据报送"]._charts) == 1
    teams = list(book["各队伍"].iter_rows(values_only=True))
    assert teams[1][:2] == ("队伍", "队伍名称") and "安阳市市场监督管理局" in {r[1] for r in teams[2:]}
    markdown = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert markdown.startswith("# 通报 2026-11-01 至 2026-11-30") and "| 区划代码 | 区县 | 新发线索 |" in markdown


def test_the_workbook_renders_as_an_office_prints_it(tmp_path: Path) -> None:
    """LibreOffice (headless) prints the workbook to PDF, pdftoppm makes the
    pictures to look at: every sheet's title, Chinese headings and 合计 are
    on the pages, in a CJK font."""
    book = _report(tmp_path)
    env = {**os.environ, "HOME": str(tmp_path)}
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation=file://{tmp_path}/lo",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(book),
        ],
        check=True,
        capture_output=True,
        timeout=180,
        env=env,
    )
    pdf = tmp_path / "r.pdf"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    for expected in (
        "各区县线索办理情况",
        "区划代码",
        "新发线索",
        "合计",
        "河南省安阳市文峰区",
        "涉嫌犯罪移送",
        "各执法队伍收到线索的办理情况",
        "安阳市市场监督管理局",
        "数据报送与迟报",
        "报送延时分布",
    ):
        assert expected in text, expected
    fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True).stdout
    assert any(cjk in fonts for cjk in ("CJK", "WenQuanYi", "Noto")), fonts  # not boxes
    subprocess.run(["pdftoppm", "-png", "-r", "70", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages and all(p.stat().st_size > 10_000 for p in pages)
    shots = os.environ.get("HUB_SCREENSHOT_DIR")
    if shots:  # to look at them
        for page in pages:
            (Path(shots) / f"report-{page.name}").write_bytes(page.read_bytes())
