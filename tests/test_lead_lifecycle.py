"""The lifecycle's wiring on the embedded broker: a real `hub worker`, the
`hub leads` CLI, the lead board in headless Chromium and the metrics
endpoint. The logic itself (routing, feedback, escalation, reopening) is
tested on the in-memory bus in `test_flow`. Time reaches the lifecycle only through clock ticks, which the
test publishes (`hub leads tick --at`), so it runs days ahead in seconds."""
from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


from hub.domain.teams import load_teams
from hub.edge.feedback import feedback
from hub.kafka.readers import final_leads, find_lead
from hub.devtools.samples import FUSHUN, LIQUOR
from hub.kafka.serde import Serde
from hub.kafka.clients import KafkaClients
from hub.settings import Settings
from hub.kafka.topics import read_to_end
from hub.flow.topics import LEADS_TOPIC
from hub.trust import Role, trust_env
from hub.trust.keys import TrustStore, board_token, key_file, load_key
from tests.conftest import TEST_PII_KEY
from tests.helpers import hub, scenario_on_broker, wait_for, worker_process

pytestmark = pytest.mark.broker

POLICE_TEAM, COUNTY_TEAM = "police-jinzhong-food-crime", "samr-taigu"
CASE_NO = "A1407032026080031"  # the liquor maker's police case: police details


def _team_topic(team: str) -> str:
    return f"hub.team.{team}"


def _copies(clients: KafkaClients, lead_id: str) -> dict[str, dict]:
    """The latest record of a lead on the operators' topic and on every team topic."""
    topics = [LEADS_TOPIC, *(t.topic for t in load_teams(clients.settings.teams_file).values())]
    return {topic: leads[lead_id] for topic in topics if lead_id in (leads := final_leads(clients, topic))}


def _copies_once(clients: KafkaClients, lead_id: str, what: str, ok: Callable[[dict[str, dict]], bool]) -> dict:
    return wait_for(what, lambda: copies if ok(copies := _copies(clients, lead_id)) else None)


@pytest.fixture(scope="module")
def running(broker, tmp_path_factory) -> Iterator[tuple[KafkaClients, int, int, Path]]:
    """The scenario's events on the broker and a worker with its metrics and board ports."""
    tmp = tmp_path_factory.mktemp("lifecycle")
    settings = scenario_on_broker(broker.bootstrap, tmp, "hub-lifecycle")
    worker, ports = worker_process(settings, tmp, HUB_AUDIT_FILE=str(tmp / "audit.jsonl"))
    try:
        with KafkaClients(settings) as clients:  # the module's, for every test of the scenario
            yield clients, ports["metrics"], ports["lead board"], tmp
    finally:
        worker.terminate()
        worker.wait(30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,900")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _hub_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "HUB_METRICS_PORT": "0", **trust_env(settings), "HUB_BROKER_URL": settings.broker_url,
            "HUB_PII_KEY": TEST_PII_KEY}


def _hub_argv() -> list[str]:
    return [sys.executable, "-m", "hub.cli"]


def _hub(settings: Settings, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return hub(*args, cwd=cwd, env=_hub_env(settings))


def _key(settings: Settings, team: str) -> str:
    return str(key_file(settings.keys_path, Role.TEAM, team))


def _shots(tmp: Path) -> Path:
    """Where screenshots go to be looked at: HUB_SCREENSHOT_DIR, or the test's folder."""
    folder = Path(os.environ.get("HUB_SCREENSHOT_DIR") or tmp)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _token(settings: Settings, team: str) -> str:
    return board_token(
        load_key(key_file(settings.keys_path, Role.TEAM, team), TrustStore.load(settings.trust_path)).private
    )


def _lead_of(clients: KafkaClients, uscc: str, rule: str) -> dict:
    return wait_for(
        f"the {rule} lead on {uscc}",
        lambda: next(
            (
                lead
                for lead in final_leads(clients).values()
                if lead["business_id"] == uscc and lead["rules"] == [rule]
            ),
            None,
        ),
    )


def _metric(port: int, name: str, labels: str = "") -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    found = re.search(rf"^{re.escape(name)}{re.escape('{' + labels + '}') if labels else ''} (\S+)$", text, re.M)
    assert found, f"{name}{{{labels}}} not exported"
    return float(found.group(1))


def _row(driver: webdriver.Chrome, lead_id: str, status: str) -> Any:
    return WebDriverWait(driver, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-lead-id="{lead_id}"][data-status="{status}"]')
    )[0]


def test_ack_and_close_from_the_cli_change_the_lead_everywhere_live(running, browser) -> None:
    clients, metrics_port, board_port, tmp = running
    settings = clients.settings
    lead_id = _lead_of(clients, LIQUOR.uscc, "CRIMINAL_REFERRAL")["lead_id"]
    board = f"http://127.0.0.1:{board_port}"
    browser.get(f"{board}/teams/{COUNTY_TEAM}")  # no credential: the login form, nothing else
    assert browser.find_elements(By.ID, "token") and "leads" not in browser.find_element(By.TAG_NAME, "body").text
    browser.find_element(By.ID, "token").send_keys(_token(settings, COUNTY_TEAM))
    browser.find_element(By.ID, "login").click()
    row = _row(browser, lead_id, "OPEN")
    assert browser.current_url == f"{board}/teams/{COUNTY_TEAM}"
    browser.get(f"{board}/teams/{POLICE_TEAM}/leads.json")  # the police's page: refused, whatever the desk tries
    assert "403" in browser.page_source and CASE_NO not in browser.page_source
    browser.get(f"{board}/teams/{COUNTY_TEAM}")
    row = _row(browser, lead_id, "OPEN")
    assert "详情不予显示" in row.text and CASE_NO not in browser.page_source
    # issue 32: the desk's board in Chinese, Beijing time to the minute, its action and chart, no overflow
    assert "涉嫌犯罪移送" in row.text and "待签收" in row.text and "移送公安机关" in row.text
    assert re.search(r"签收期限 \d{4}-\d\d-\d\d \d\d:\d\d(?!:)", row.text), row.text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart rect")) == 8  # open and overdue, per severity
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    browser.save_screenshot(str(_shots(tmp) / "board-county-desk.png"))

    # A forged answer, produced straight onto the police team's topic by a client without its key.
    lead = find_lead(clients, lead_id)
    assert lead is not None
    forged_topic = f"hub.feedback.{POLICE_TEAM}"
    producer = clients.producer()
    producer.produce(
        forged_topic,
        key=lead["business_key"].encode(),
        value=Serde(settings).encoder(forged_topic, "feedback")(
            feedback(lead, "REJECTED", POLICE_TEAM, "假线索", None, time.time())
        ),
    )
    assert producer.flush(30) == 0
    ack = _hub(
        settings, tmp, "leads", "ack", lead_id, "--key", _key(settings, POLICE_TEAM), "--by", "太谷分局食药环侦大队"
    )
    assert ack.returncode == 0, ack.stderr
    wait_for(
        "ACKNOWLEDGED everywhere",
        lambda: all(c["status"] == "ACKNOWLEDGED" for c in _copies(clients, lead_id).values()),
    )
    _row(browser, lead_id, "ACKNOWLEDGED")  # the open page follows without a reload

    close = _hub(
        settings,
        tmp,
        "leads",
        "close",
        lead_id,
        "--key",
        _key(settings, POLICE_TEAM),
        "--outcome",
        "已立案侦查，移送审查起诉",
    )
    assert close.returncode == 0, close.stderr
    copies = _copies_once(
        clients, lead_id, "CLOSED everywhere", lambda c: all(x["status"] == "CLOSED" for x in c.values())
    )
    history = copies[LEADS_TOPIC]["history"]
    assert [(h["status"], h["team"]) for h in history] == [
        ("OPEN", None),
        ("ACKNOWLEDGED", POLICE_TEAM),
        ("CLOSED", POLICE_TEAM),
    ]
    # The county desk sees that the police closed it, not the police's note.
    assert copies[_team_topic(COUNTY_TEAM)]["history"][-1]["note"] is None
    assert copies[_team_topic("samr-jinzhong")]["history"][-1]["status"] == "CLOSED"
    wait_for(
        "the lead to leave the board's open list",
        lambda: not browser.find_elements(By.CSS_SELECTOR, f'#leads tr[data-lead-id="{lead_id}"]'),
    )
    # closed, its 回头看 still due: on the follow-through tab
    browser.find_element(By.ID, "show-followup").click()
    followed = WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f'#followups tr[data-lead-id="{lead_id}"][data-status="CLOSED"]')
    )[0]
    assert "已办结" in followed.text and "回头看日期" in followed.text
    browser.save_screenshot(str(_shots(tmp) / "board-follow-through.png"))
    browser.find_element(By.ID, "show-open").click()

    # The outcome goes back to the agency whose evidence raised the lead.
    decode = Serde(settings).decoder("feedback")
    outcomes = [decode(m.value()) for m in read_to_end(clients, "hub.outcomes.police")]
    assert [(o["lead_id"], o["action"]) for o in outcomes] == [(lead_id, "ACKNOWLEDGED"), (lead_id, "CLOSED")]
    assert read_to_end(clients, "hub.outcomes.samr") == []

    again = _hub(settings, tmp, "leads", "close", lead_id, "--key", _key(settings, POLICE_TEAM), "--outcome", "x")
    assert again.returncode == 1 and "cannot become CLOSED" in again.stderr
    stranger = _hub(settings, tmp, "leads", "ack", lead_id, "--key", _key(settings, "samr-anyang"))
    assert stranger.returncode == 1 and "does not receive" in stranger.stderr
    impostor = _hub(settings, tmp, "leads", "ack", lead_id, "--team", POLICE_TEAM)  # no such flag any more
    assert impostor.returncode == 2 and "--team" in impostor.stderr
    wait_for(
        "the metric",
        lambda: _metric(metrics_port, "hub_lead_time_to_acknowledge_seconds_count", 'severity="CRITICAL"') == 1,
        timeout=20,
    )

    # The audit trail tells the whole story, and verifies.
    trail = wait_for(
        "the audit trail",
        lambda: (
            t
            if "FEEDBACK_APPLIED" in (t := _hub(settings, tmp, "audit", "trail", lead_id).stdout) and "CLOSED" in t
            else None
        ),
        timeout=30,
    )
    lines = trail.splitlines()
    assert any("EVENT_ACCEPTED" in lead and "connector:police.case" in lead for lead in lines)
    assert any("LEAD_PUBLISHED" in lead and POLICE_TEAM in lead for lead in lines)
    assert any("RECORD_REFUSED" in lead and "unproven" in lead and "reason: unsigned" in lead for lead in lines)
    assert any("BOARD_VIEW" in lead and f"team:{COUNTY_TEAM}" in lead for lead in lines)
    assert any("BOARD_DENIED" in lead and f"team:{COUNTY_TEAM}" in lead and "not_your_team" in lead for lead in lines)
    assert any(
        "FEEDBACK_APPLIED" in lead and f"team:{POLICE_TEAM}" in lead and "ACKNOWLEDGED" in lead for lead in lines
    )
    assert any("FEEDBACK_APPLIED" in lead and "CLOSED" in lead for lead in lines)
    assert "假线索" not in trail  # what a refused record says is never repeated
    verified = _hub(settings, tmp, "audit", "verify")
    assert verified.returncode == 0 and "trail intact" in verified.stdout, verified.stdout + verified.stderr
    # the worker's local mirror of its chain (HUB_AUDIT_FILE) verifies on its own, and tells the same story
    mirrored = _hub(settings, tmp, "audit", "verify", "--file", str(tmp / "audit.jsonl"))
    assert mirrored.returncode == 0 and "in 1 chains" in mirrored.stdout, mirrored.stdout + mirrored.stderr
    from_mirror = _hub(settings, tmp, "audit", "trail", lead_id, "--file", str(tmp / "audit.jsonl")).stdout
    assert "FEEDBACK_APPLIED" in from_mirror and "RECORD_REFUSED" in from_mirror
    wait_for(
        "the metric",
        lambda: _metric(metrics_port, "hub_lead_time_to_close_seconds_count", 'severity="CRITICAL"') == 1,
        timeout=20,
    )


def test_a_tick_from_the_cli_escalates_an_overdue_lead_to_the_parent(running) -> None:
    clients, metrics_port, _, tmp = running
    settings = clients.settings
    cross = _lead_of(clients, FUSHUN.uscc, "CROSS_AGENCY")
    assert "police-shanxi-food-crime" not in set(_copies(clients, cross["lead_id"]))
    in_49_hours = dt.datetime.now(dt.UTC) + dt.timedelta(hours=49)  # HIGH: acknowledge within 48 h
    assert _hub(settings, tmp, "leads", "tick", "--at", in_49_hours.isoformat()).returncode == 0
    # The topics are read one after another: wait until every copy is the escalated one
    # (the parent's copy can be read before another topic's arrives).
    copies = _copies_once(
        clients,
        cross["lead_id"],
        "the escalation",
        lambda c: _team_topic("police-shanxi-food-crime") in c and all(x["escalation"] for x in c.values()),
    )
    assert {c["escalation"] for c in copies.values()} == {"ACKNOWLEDGE_OVERDUE"}
    wait_for("the metric", lambda: _metric(metrics_port, "hub_leads_overdue", 'team="samr-yuci"') == 1, timeout=20)
    wait_for(
        "the metric",
        lambda: _metric(metrics_port, "hub_leads_open", 'severity="HIGH",team="samr-yuci"') == 1,
        timeout=20,
    )


def _latest_raw(clients: KafkaClients, topic: str, lead_id: str) -> Any:
    """The last record of a lead on a topic, as bytes and headers: what an attacker copies."""
    return [m for m in read_to_end(clients, topic) if m.key() == lead_id.encode()][-1]


def _replay(clients: KafkaClients, records: dict[str, Any]) -> None:
    """Copy genuine, worker-signed records back onto their topics, byte for byte."""
    producer = clients.producer()
    for topic, message in records.items():
        producer.produce(topic, key=message.key(), value=message.value(), headers=message.headers())
    assert producer.flush(30) == 0


def test_a_replayed_lead_record_undoes_nothing(running) -> None:
    """After ``test_ack_and_close…`` (CLOSED by the police): new evidence
    reopens the CRITICAL referral, then its genuine CLOSED record is copied
    back onto the operators' topic and the police team's; later, closed
    again, its genuine OPEN record is copied back. Every reader keeps the
    newer record, and says what it left out."""
    clients, metrics_port, _board_port, tmp = running
    settings = clients.settings
    lead_id = _lead_of(clients, LIQUOR.uscc, "CRIMINAL_REFERRAL")["lead_id"]
    topics = (LEADS_TOPIC, _team_topic(POLICE_TEAM))
    closed = {t: _latest_raw(clients, t, lead_id) for t in topics}
    decode = Serde(settings).decoder("lead")
    assert {decode(m.value())["status"] for m in closed.values()} == {"CLOSED"}

    from hub.devtools.samples import write_recheck_failure

    run = _hub(
        settings, tmp, "connector", "run", "samr.inspection", "--path", str(write_recheck_failure(tmp / "recheck"))
    )
    assert run.returncode == 0, run.stderr
    _copies_once(clients, lead_id, "the lead reopened", lambda c: all(c[t]["status"] == "OPEN" for t in topics))
    wait_for(
        "the board's gauge",
        lambda: _metric(metrics_port, "hub_leads_open", f'severity="CRITICAL",team="{POLICE_TEAM}"') == 1,
        timeout=20,
    )
    reopened = {t: _latest_raw(clients, t, lead_id) for t in topics}

    tail_err = tmp / "tail.err"
    with tail_err.open("w") as err:
        tail = subprocess.Popen(
            [*_hub_argv(), "leads", "tail", "--team", POLICE_TEAM],
            cwd=tmp,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=_hub_env(settings),
        )
    try:
        time.sleep(3)  # any time will do: the tail reads what the topic holds before it shows what arrives
        _replay(clients, closed)
        wait_for(
            "the board to count the replay",
            lambda: _metric(metrics_port, "hub_board_stale_lead_records") == 1,
            timeout=30,
        )
        wait_for("the tail to leave the replay out", lambda: "stale_version" in tail_err.read_text(), timeout=30)
    finally:
        tail.terminate()
        printed = tail.communicate(timeout=30)[0]
    assert lead_id not in printed  # the replayed CLOSED record is not shown as news
    for topic in topics:
        assert final_leads(clients, topic)[lead_id]["status"] == "OPEN"
        assert find_lead(clients, lead_id, topic)["status"] == "OPEN"  # type: ignore[index]
    assert _metric(metrics_port, "hub_leads_open", f'severity="CRITICAL",team="{POLICE_TEAM}"') == 1
    ack = _hub(settings, tmp, "leads", "ack", lead_id, "--key", _key(settings, POLICE_TEAM))
    assert ack.returncode == 0, ack.stderr

    close = _hub(
        settings, tmp, "leads", "close", lead_id, "--key", _key(settings, POLICE_TEAM), "--outcome", "并案侦查"
    )
    assert close.returncode == 0, close.stderr
    _copies_once(clients, lead_id, "CLOSED again", lambda c: all(c[t]["status"] == "CLOSED" for t in topics))
    wait_for(
        "the board's gauge",
        lambda: _metric(metrics_port, "hub_leads_open", f'severity="CRITICAL",team="{POLICE_TEAM}"') == 0,
        timeout=20,
    )
    _replay(clients, reopened)  # the other way: a closed lead shown as open
    wait_for(
        "the board to count the replay", lambda: _metric(metrics_port, "hub_board_stale_lead_records") == 2, timeout=30
    )
    for topic in topics:
        assert find_lead(clients, lead_id, topic)["status"] == "CLOSED"  # type: ignore[index]
    assert _metric(metrics_port, "hub_leads_open", f'severity="CRITICAL",team="{POLICE_TEAM}"') == 0
    again = _hub(settings, tmp, "leads", "ack", lead_id, "--key", _key(settings, POLICE_TEAM))
    assert again.returncode == 1 and "cannot become ACKNOWLEDGED" in again.stderr
