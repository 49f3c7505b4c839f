"""The whole pipeline on the embedded broker: connectors, workers, leads."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from hub.samples import (CONDIMENT, FUSHUN, LEGAL_REP, LEGAL_REP_ID, LIQUOR, PORK, SUSPECT2_ID, SUSPECT2_NAME,
                         SUSPECT_ID, SUSPECT_NAME, VEG_BASE, write_scenario)
from tests.conftest import TEST_PII_KEY
from tests.helpers import hub as run_hub

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


def hub(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_hub(*args, cwd=cwd, env={"HUB_PII_KEY": TEST_PII_KEY, **(env or {})})


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


def test_status_reports_what_a_backfill_left_on_a_broker(broker, tmp_path: Path) -> None:
    files = write_scenario(tmp_path / "exports")
    sources = [f"--source={kind}={path}" for kind, path in files.items()]
    env = {"HUB_APP_ID": "hub-status-test"}
    done = hub("--broker", broker.bootstrap, "backfill", *sources, "--leads-out", str(tmp_path / "l.jsonl"),
               cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    result = hub("--broker", broker.bootstrap, "status", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"broker      {broker.bootstrap} (1 broker)" in out
    assert "hub.events.samr                            4 partitions" in out
    for topic in ("hub.events.samr", "hub.events.police", "hub.events.agri"):
        assert re.search(rf"^  {re.escape(topic)}\s+0$", out, re.M), out  # all processed
    for connector in ("samr.sampling", "samr.penalty", "samr.inspection", "police.case", "agri.sampling"):
        assert re.search(rf"^  {re.escape(connector)}\s+20\d\d-", out, re.M), out
    assert "dead letters (4)" in out and re.search(r"samr\.penalty\s+invalid_business_id\s+1", out)
    assert "open leads (6)" in out and re.search(r"CRITICAL\s+CRIMINAL_REFERRAL\s+4", out)
