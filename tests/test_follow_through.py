"""Follow-through end to end on the embedded broker: a real `hub worker`, the
`hub leads` CLI, connectors over new exports, clock ticks days ahead
(`hub leads tick --at`), and `hub report`. The rules themselves are tested
without a broker in `test_followup`."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from collections.abc import Iterator

import pytest
from openpyxl import load_workbook

from connectors.police_case import PoliceCaseConnector
from connectors.samr_inspection import SamrInspectionConnector
from hub.kafka.clients import KafkaClients
from hub.domain.events import CST
from hub.kafka.readers import final_leads
from hub.edge.metrics import Metrics
from hub.apps.pipeline import run_connectors, wait_until_processed
from hub.apps.report import COUNTY_COLUMNS, HEADINGS, SOURCE_COLUMNS, TEAM_COLUMNS
from hub.devtools.samples import CONDIMENT, FUSHUN, LIQUOR, NOODLE, PORK, VEG_BASE, _headers, _inspection_row, write_csv
from hub.settings import Settings
from hub.flow.topics import LEADS_TOPIC
from tests.helpers import scenario_on_broker, wait_for, worker_process
from tests.test_lead_lifecycle import _copies, _copies_once, _hub, _key, _lead_of, _metric, _team_topic

pytestmark = pytest.mark.broker

OVERSIGHT = _team_topic("procuratorate-anyang")
TODAY = dt.datetime.now(CST).date()


@pytest.fixture(scope="module")
def running(broker, tmp_path_factory) -> Iterator[tuple[KafkaClients, int, Path]]:
    tmp = tmp_path_factory.mktemp("follow")
    settings = scenario_on_broker(broker.bootstrap, tmp, "hub-follow")
    worker, ports = worker_process(settings, tmp, HUB_WEB_PORT="-1")
    port = ports["metrics"]
    try:
        with KafkaClients(settings) as clients:  # the module's, for every test of the scenario
            yield clients, port, tmp
    finally:
        worker.terminate()
        worker.wait(30)


def _tick(settings: Settings, tmp: Path, port: int, hours_ahead: float) -> None:
    """A drill ``hours_ahead``, and wait until the worker took it on every partition."""
    before = _metric(port, "hub_worker_clock_ticks_total")
    at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours_ahead)
    assert _hub(settings, tmp, "leads", "tick", "--at", at.isoformat()).returncode == 0
    wait_for("the ticks", lambda: _metric(port, "hub_worker_clock_ticks_total") >= before + 4 or None, timeout=60)


def _publish(clients: KafkaClients, connector: str, path: Path) -> None:
    """An export through its connector, and wait until the workers processed it."""
    [run] = run_connectors(clients, [(connector, path)], Metrics())
    assert run.rows_rejected == 0, run.line()
    wait_until_processed(clients, 60)


def _police_row(case_no: str, business, status: str, accepted: dt.date, filed: dt.date | None) -> list[str]:
    values = {"案件编号": case_no, "案件名称": "生产、销售有毒、有害食品案", "案由": "生产、销售有毒、有害食品罪",
              "受案时间": accepted.isoformat(), "立案时间": filed.isoformat() if filed else "", "案件状态": status,
              "涉案单位名称": business.name, "涉案单位统一社会信用代码": business.uscc, "犯罪嫌疑人姓名": "",
              "犯罪嫌疑人身份证号": "", "涉案金额(元)": "", "办案单位": "安阳市公安局食药环侦支队",
              "线索来源": "行政执法移送"}
    return [values[c] for c in _headers(PoliceCaseConnector)]


def _has(lead: dict, kind: str) -> bool:
    return kind in {k["kind"] for k in lead["links"]}


def test_a_transfer_with_no_police_case_escalates_to_oversight_then_a_police_filing_links_to_it(running) -> None:
    clients, metrics_port, tmp = running
    settings = clients.settings
    pork = _lead_of(clients, PORK.uscc, "CRIMINAL_REFERRAL")
    # The clenbuterol finding was announced in July and reached the hub today: late (迟报), and by the 310
    # limits, which run from the finding, overdue on arrival: the oversight team has it from the start.
    assert pork["transfer_by"] < pork["first_seen"] and pork["escalation"] == "TRANSFER_OVERDUE"
    assert OVERSIGHT in _copies_once(clients, pork["lead_id"], "the oversight copy", lambda c: OVERSIGHT in c)
    assert pork["reported_late_days"] > 100 and pork["evidence"][0]["reported_after_days"] > 100
    assert _metric(metrics_port, "hub_late_critical_findings_total", 'connector="samr.sampling"') >= 1
    moved = _hub(settings, tmp, "leads", "transfer", pork["lead_id"], "--key", _key(settings, "samr-anyang"),
                 "--note", "移送安阳市公安局")
    assert moved.returncode == 0, moved.stderr
    _copies_once(clients, pork["lead_id"], "the transfer", lambda c: c[LEADS_TOPIC]["status"] == "TRANSFERRED")
    _tick(settings, tmp, metrics_port, 73)  # the police have 3 days to take it up
    # The topics are read one after another: wait until both copies are the escalated one.
    copies = _copies_once(clients, pork["lead_id"], "TRANSFER_UNFILED at the oversight team",
                          lambda c: c.get(OVERSIGHT, {}).get("escalation") == "TRANSFER_UNFILED"
                          and c[LEADS_TOPIC]["oversight"])
    assert copies[OVERSIGHT]["team"] == "procuratorate-anyang"
    filing = write_csv(tmp / "立案.csv", _headers(PoliceCaseConnector),
                       [_police_row("A4105022026110001", PORK, "立案", TODAY, TODAY)], "utf-8-sig")
    _publish(clients, "police.case", filing)
    linked = _copies_once(clients, pork["lead_id"], "the police filing linked",
                          lambda c: _has(c[LEADS_TOPIC], "POLICE_FILED"))[LEADS_TOPIC]
    assert linked["status"] == "TRANSFERRED" and linked["police_filing_by"] is None
    [link] = [k for k in linked["links"] if k["kind"] == "POLICE_FILED"]
    assert link["event_id"] == "police.case:A4105022026110001:FILED" and link["agency"] == "POLICE"


def test_a_referral_closed_without_transfer_is_flagged_to_oversight(running) -> None:
    clients, _, tmp = running
    settings = clients.settings
    chives = _lead_of(clients, VEG_BASE.uscc, "CRIMINAL_REFERRAL")
    closed = _hub(settings, tmp, "leads", "close", chives["lead_id"], "--key", _key(settings, "samr-anyang"),
                  "--outcome", "罚款2万元结案")
    assert closed.returncode == 0, closed.stderr
    copies = _copies_once(clients, chives["lead_id"], "NOT_TRANSFERRED at the oversight team",
                          lambda c: c.get(OVERSIGHT, {}).get("escalation") == "NOT_TRANSFERRED"
                          and c[LEADS_TOPIC]["escalation"] == "NOT_TRANSFERRED")
    assert copies[OVERSIGHT]["status"] == "CLOSED"
    assert [h["status"] for h in copies[LEADS_TOPIC]["history"]][-2:] == ["CLOSED", "ESCALATED_NOT_TRANSFERRED"]
    # Oversight reads and does not answer (the workers refuse it too: test_followup's bus test).
    refused = _hub(settings, tmp, "leads", "reject", chives["lead_id"], "--reason", "x",
                   "--key", _key(settings, "procuratorate-anyang"))
    assert refused.returncode != 0 and "oversight team" in refused.stderr


def test_a_dropped_case_opens_a_reverse_referral_for_the_county_desk(running) -> None:
    clients, _, tmp = running
    liquor = _lead_of(clients, LIQUOR.uscc, "CRIMINAL_REFERRAL")
    dropped = write_csv(tmp / "撤案.csv", _headers(PoliceCaseConnector),
                        [_police_row("A1407032026080031", LIQUOR, "撤案", dt.date(2026, 8, 11), dt.date(2026, 8, 15))],
                        "utf-8-sig")
    _publish(clients, "police.case", dropped)
    reverse = _lead_of(clients, LIQUOR.uscc, "REVERSE_REFERRAL")
    assert [(k["kind"], k["lead_id"]) for k in reverse["links"]] == [("REFERRAL", liquor["lead_id"])]
    copies = _copies_once(clients, reverse["lead_id"], "the county desk's and the procuratorate's copies",
                          lambda c: {_team_topic("samr-taigu"), _team_topic("procuratorate-shanxi")} <= set(c))
    # the county desk and the procuratorate that watches transfers both ways; not the police, nor the city (MEDIUM)
    assert set(copies) == {LEADS_TOPIC, _team_topic("samr-taigu"), _team_topic("procuratorate-shanxi")}
    assert "公安机关撤案：案件编号 A1407032026080031" in copies[_team_topic("samr-taigu")]["recommended_action"]
    original = _copies_once(clients, liquor["lead_id"], "the referral's link",
                            lambda c: _has(c[LEADS_TOPIC], "POLICE_DROPPED"))[LEADS_TOPIC]
    assert reverse["lead_id"] in {k["lead_id"] for k in original["links"]}


def test_an_overdue_rectification_escalates_and_a_compliant_inspection_confirms_another(running) -> None:
    clients, metrics_port, tmp = running
    settings = clients.settings
    inspections = write_csv(tmp / "日常监督检查-复查.csv", _headers(SamrInspectionConnector), [
        _inspection_row("JC-F-1", FUSHUN, (TODAY - dt.timedelta(days=20)).isoformat(), "不符合", "书面限期整改",
                        "冷库温度记录缺失", (TODAY - dt.timedelta(days=10)).isoformat()),
        _inspection_row("JC-F-2", FUSHUN, (TODAY - dt.timedelta(days=12)).isoformat(), "符合", "通过", ""),
        _inspection_row("JC-N-2", NOODLE, TODAY.isoformat(), "符合", "通过", "")])
    _publish(clients, "samr.inspection", inspections)
    _tick(settings, tmp, metrics_port, 74)  # again: the first tick opened the scenario's overdue rectifications
    condiment = _lead_of(clients, CONDIMENT.uscc, "RECTIFICATION_OVERDUE")
    assert condiment["history"][1]["status"] == "ESCALATED_RECTIFICATION_OVERDUE"
    assert len(condiment["evidence"]) == 2  # the order and the repeat with its own
    assert _team_topic("samr-anyang") in _copies(clients, condiment["lead_id"])
    noodle = _lead_of(clients, NOODLE.uscc, "RECTIFICATION_OVERDUE")
    noodle = _copies_once(clients, noodle["lead_id"], "the late confirmation",
                          lambda c: _has(c[LEADS_TOPIC], "RECTIFIED"))[LEADS_TOPIC]
    assert [k["event_id"] for k in noodle["links"]] == ["samr.inspection:JC-N-2"]
    assert not [lead for lead in final_leads(clients).values() if lead["business_id"] == FUSHUN.uscc
                and lead["rules"] == ["RECTIFICATION_OVERDUE"]]


def test_the_report_opens_with_openpyxl_and_its_figures_match_the_leads(running) -> None:
    clients, _, tmp = running
    settings = clients.settings
    out = tmp / "report"
    # Today as the report is asked for, not as the module was loaded: a run that crosses midnight in China
    # (16:00 UTC) opens leads on the next day, which a window ending on the module's TODAY would leave out.
    end = dt.datetime.now(CST).date()
    start = end - dt.timedelta(days=30)
    result = _hub(settings, tmp, "report", "--from", start.isoformat(), "--to", end.isoformat(), "--out", str(out))
    assert result.returncode == 0, result.stderr
    book = load_workbook(out / f"report-{start}-{end}.xlsx", read_only=True)
    teams_sheet = list(book["各队伍"].iter_rows(values_only=True))
    assert teams_sheet[1] == tuple(HEADINGS[c] for c in TEAM_COLUMNS)
    rows = {(r[0], r[2]): dict(zip(TEAM_COLUMNS, r, strict=False)) for r in teams_sheet[2:] if r[0] and r[2]}
    desk = final_leads(clients, _team_topic("samr-anyang"))
    for county in ("410502", "410503", "410523"):
        leads = [lead for lead in desk.values() if county in (lead["region"]["code"], *lead["also_regions"])
                 and lead["status"] != "SUPERSEDED"]
        row = rows["samr-anyang", county]
        assert row["opened"] == len(leads)
        assert row["transferred_in_time"] + row["transferred_late"] == sum(
            "TRANSFERRED" in {h["status"] for h in lead["history"]} for lead in leads)
        assert row["filed_by_police"] == sum(_has(lead, "POLICE_FILED") for lead in leads)
        assert row["closed"] == sum(lead["status"] == "CLOSED" for lead in leads)
        assert row["flagged_for_oversight"] == sum(lead["oversight"] for lead in leads)
    assert rows["samr-anyang", "410502"]["transferred_in_time"] + rows["samr-anyang", "410502"]["transferred_late"] == 1
    assert rows["samr-anyang", "410502"]["filed_by_police"] == 1
    assert rows["samr-anyang", "410503"]["rectifications_overdue"] == 1  # the condiment shop's
    oversight = [r for (team, _), r in rows.items() if team == "procuratorate-anyang"]
    assert sum(r["opened"] for r in oversight) == sum(r["flagged_for_oversight"] for r in oversight) >= 2
    rows = list(book["各区县"].iter_rows(values_only=True))[2:]
    counties = {r[0]: dict(zip(COUNTY_COLUMNS, r, strict=False)) for r in rows}
    every = [lead for lead in final_leads(clients).values() if lead["status"] != "SUPERSEDED"]
    assert counties["410502"]["opened"] == sum(
        "410502" in (lead["region"]["code"], *lead["also_regions"]) for lead in every
    )
    sources = list(book["数据报送"].iter_rows(values_only=True))
    assert sources[1] == tuple(HEADINGS[c] for c in SOURCE_COLUMNS)
    police = next(dict(zip(SOURCE_COLUMNS, r, strict=False)) for r in sources[2:] if r[1] == "police.case")
    assert police["export_rows"] == 4 and police["late_reports"] >= 2  # the scenario's 2 cases, the filing, the drop
    assert (out / f"report-{start}-{end}.md").read_text(encoding="utf-8").startswith("# 通报")
