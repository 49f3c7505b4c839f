"""The whole pipeline on the embedded broker: connectors, workers, leads."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.domain.events import Agency
from hub.domain.leads import BusinessState
from hub.pipeline import final_leads, wait_until_processed
from hub.samples import (CONDIMENT, FUSHUN, LEGAL_REP, LEGAL_REP_ID, LIQUOR, PORK, SUSPECT2_ID, SUSPECT2_NAME,
                         SUSPECT_ID, SUSPECT_NAME, VEG_BASE, synthetic_penalties, write_scenario)
from hub.serde import Serde
from hub.topics import changelog_topic, create_topics, events_topic, read_to_end
from tests.conftest import TEST_PII_KEY
from tests.helpers import raw_bytes_by_topic

pytestmark = pytest.mark.broker

EXPECTED = {
    (CONDIMENT.uscc, "REPEAT_OFFENDER"): {"samr.inspection:JC2026-0412-001", "samr.inspection:JC2026-0615-007",
                                          "samr.penalty:安北市监罚〔2026〕112号"},
    (FUSHUN.uscc, "CROSS_AGENCY"): {"samr.penalty:晋榆市监罚〔2026〕58号", "police.case:A1407022026090012:FILED"},
    (VEG_BASE.uscc, "CRIMINAL_REFERRAL"): {"agri.sampling:NY2026-AY-0087:克百威"},
    (LIQUOR.uscc, "CRIMINAL_REFERRAL"): {"police.case:A1407032026080031:FILED"},
    (f"unresolved::{PORK.name}", "CRIMINAL_REFERRAL"): {"samr.sampling:GC26410500410230101:producer"},
    ("unresolved::安阳市文峰区惠民生鲜超市", "CRIMINAL_REFERRAL"): {"samr.sampling:GC26410500410230101:seller"},
}


def hub(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "HUB_METRICS_PORT": "0", "HUB_PII_KEY": TEST_PII_KEY,
                                                **(env or {})})


def read_leads_file(path: Path) -> dict[tuple[str, str], dict]:
    leads = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {(l["business_key"], l["rules"][0]): l for l in leads if l["status"] == "OPEN"}


@pytest.fixture(scope="module")
def scenario_backfill(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str], Path]:
    folder = tmp_path_factory.mktemp("backfill")
    files = write_scenario(folder / "exports")
    sources = [f"--source={kind}={path}" for kind, path in files.items()]
    out = folder / "leads.jsonl"
    result = hub("backfill", *sources, "--leads-out", str(out), cwd=folder)
    return out, result, folder


def test_backfill_yields_exactly_the_expected_leads(scenario_backfill) -> None:
    out, result, _ = scenario_backfill
    assert result.returncode == 0, result.stderr
    leads = read_leads_file(out)
    assert {k: {e["event_id"] for e in l["evidence"]} for k, l in leads.items()} == EXPECTED
    cross = leads[(FUSHUN.uscc, "CROSS_AGENCY")]
    assert cross["severity"] == "HIGH" and cross["agencies"] == ["POLICE", "SAMR"]
    assert cross["region"] == {"code": "140702", "name": "山西省晋中市榆次区"}
    assert cross["window_start"] == "2026-08-20" and cross["window_end"] == "2026-09-05"
    assert leads[(VEG_BASE.uscc, "CRIMINAL_REFERRAL")]["recommended_action"].startswith("移送公安机关")
    assert "leads: 6 open (CRIMINAL_REFERRAL=4, CROSS_AGENCY=1, REPEAT_OFFENDER=1)" in result.stdout
    assert "records: 17 read, 13 accepted, 4 rejected (bad_date=1, invalid_business_id=1, missing_value=1, " \
           "unknown_value=1)" in result.stdout


def test_lone_minor_failures_make_no_lead(scenario_backfill) -> None:
    out, _, _ = scenario_backfill
    text = out.read_text(encoding="utf-8")
    assert "好味道面馆" not in text  # one 不符合 inspection
    assert "豫香酿造" not in text  # one minor sampling failure


def test_no_personal_data_in_the_leads(scenario_backfill) -> None:
    out, _, _ = scenario_backfill
    text = out.read_text(encoding="utf-8")
    for secret in (SUSPECT_NAME, SUSPECT_ID, SUSPECT2_NAME, SUSPECT2_ID, LEGAL_REP, LEGAL_REP_ID):
        assert secret not in text
    assert "pii:" not in text  # leads carry no person at all, not even hashed


def test_the_same_files_twice_and_a_resend_give_the_same_leads(scenario_backfill, tmp_path: Path) -> None:
    once, _, folder = scenario_backfill
    files = write_scenario(tmp_path)
    resend = tmp_path / "行政处罚-市级重报.csv"
    resend.write_bytes(files["samr.penalty"].read_bytes() + b"\r\n")  # different file, same records
    sources = [f"--source={kind}={path}" for kind, path in files.items()] * 2 + [f"--source=samr.penalty={resend}"]
    out = tmp_path / "leads.jsonl"
    result = hub("backfill", *sources, "--leads-out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 duplicates suppressed" in result.stdout
    twice = read_leads_file(out)
    first = read_leads_file(once)
    assert {k: [e["event_id"] for e in v["evidence"]] for k, v in twice.items()} == \
           {k: [e["event_id"] for e in v["evidence"]] for k, v in first.items()}
    assert {v["lead_id"] for v in twice.values()} == {v["lead_id"] for v in first.values()}


def test_bad_source_argument_is_a_usage_error(tmp_path: Path) -> None:
    result = hub("backfill", "--source", "samr.penalty", "--leads-out", str(tmp_path / "x"), cwd=tmp_path)
    assert result.returncode == 2 and "KIND=PATH" in result.stderr


# -- a worker killed mid-stream ----------------------------------------------------

def _expected_leads(settings) -> dict[str, frozenset[str]]:
    """What the rules imply for every event on the broker, computed without Faust."""
    decode = Serde(settings).decoder("event")
    states: dict[bytes, BusinessState] = {}
    for agency in Agency:
        for message in read_to_end(settings, events_topic(agency)):
            states.setdefault(message.key(), BusinessState()).accept(decode(message.value()), settings.rules)
    expected = {}
    for key, state in states.items():
        for lead in state.lead_updates(key.decode(), settings.rules, 0):
            expected[lead["lead_id"]] = frozenset(e["event_id"] for e in lead["evidence"])
    return expected


def _committed_total(settings) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.broker_url, "group.id": settings.app_id, "log_level": 3})
    try:
        tps = [TopicPartition(events_topic(Agency.SAMR), p) for p in range(settings.topic_partitions)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
    finally:
        consumer.close()


def test_a_killed_worker_restarted_loses_and_duplicates_nothing(broker, tmp_path: Path) -> None:
    from connectors.runner import ConnectorRunner
    from connectors.samr_penalty import SamrPenaltyConnector
    from hub.domain.pii import PersonalDataHasher
    from hub.metrics import Metrics
    from hub.settings import load_settings

    settings = load_settings(environ={}).with_overrides(broker_url=broker.bootstrap, app_id="hub-kill-test",
                                                        pii_key=TEST_PII_KEY)
    create_topics(settings)
    path = synthetic_penalties(tmp_path / "penalties.csv", rows=6000, businesses=1500)
    runner = ConnectorRunner(settings, SamrPenaltyConnector(PersonalDataHasher(TEST_PII_KEY)), Metrics())
    assert runner.run_file(path).events_published == 6000
    runner.close()
    expected = _expected_leads(settings)
    assert len(expected) > 300

    env = {**os.environ, "HUB_BROKER_URL": broker.bootstrap, "HUB_APP_ID": settings.app_id,
           "HUB_METRICS_PORT": "0", "HUB_WORKER_BATCH_SIZE": "20", "HUB_COMMIT_INTERVAL_S": "0.2"}

    def start_worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "hub.cli", "worker"], cwd=tmp_path, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    first = start_worker()
    deadline = time.monotonic() + 120
    while _committed_total(settings) < 1500 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.kill()  # SIGKILL: no graceful anything
    first.wait()
    done_before_kill = _committed_total(settings)
    assert 0 < done_before_kill < 6000, "the kill should land mid-stream"

    second = start_worker()
    try:
        wait_until_processed(settings, timeout_s=240)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)

    leads = final_leads(settings)
    got = {lid: frozenset(e["event_id"] for e in lead["evidence"])
           for lid, lead in leads.items() if lead["status"] == "OPEN"}
    assert got == expected
    assert all(len(lead["evidence"]) == len({e["event_id"] for e in lead["evidence"]}) for lead in leads.values())
    # the state survived in the changelog: it holds every business that has events
    assert len(read_to_end(settings, changelog_topic(settings))) > 0
