"""The hub command as a user runs it."""
from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.devtools.samples import write_scenario
from tests.helpers import hub, start_hub_broker

pytestmark = pytest.mark.broker


def test_every_command_has_help(tmp_path: Path) -> None:
    for args in (["--help"], ["broker", "--help"], ["topics", "--help"], ["topics", "create", "--help"],
                 ["schemas", "check", "--help"], ["connector", "run", "--help"], ["connector", "list", "--help"]):
        result = hub(*args, cwd=tmp_path)
        assert result.returncode == 0 and "Usage:" in result.stdout, args


def test_connector_run_on_a_gbk_file_prints_a_summary(tmp_path: Path) -> None:
    files = write_scenario(tmp_path)
    result = hub("connector", "run", "samr.penalty", "--path", str(files["samr.penalty"]), cwd=tmp_path)
    assert result.returncode == 3, result.stderr  # finished, with a row rejected: scripts can tell
    assert "4 rows read, 3 events published, 1 rejected (invalid_business_id=1)" in result.stdout
    assert "metrics: http://127.0.0.1:" in result.stdout


def test_unknown_connector_is_a_usage_error(tmp_path: Path) -> None:
    result = hub("connector", "run", "samr.nope", "--path", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "no connector 'samr.nope'" in result.stderr


def test_development_pii_key_is_refused_on_a_configured_broker(tmp_path: Path) -> None:
    files = write_scenario(tmp_path)
    result = hub("--broker", "127.0.0.1:1", "connector", "run", "samr.penalty", "--path",
                 str(files["samr.penalty"]), cwd=tmp_path)
    assert result.returncode == 2 and "HUB_PII_KEY" in result.stderr


def test_demo_refuses_a_configured_broker(tmp_path: Path) -> None:
    """Its sample CRITICAL leads and development key never reach a real cluster."""
    result = hub("--broker", "127.0.0.1:1", "demo", cwd=tmp_path, env={"HUB_PII_KEY": "a-real-secret"})
    assert result.returncode == 2 and "its own embedded broker" in result.stderr


def test_demo_shows_leads_of_all_three_rules(tmp_path: Path) -> None:
    result = hub("demo", "--data-dir", str(tmp_path / "exports"), cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    for rule in ("CRIMINAL_REFERRAL", "CROSS_AGENCY", "REPEAT_OFFENDER"):
        assert rule in result.stdout
    superseded = [line for line in result.stdout.splitlines() if "[SUPERSEDED" in line]
    assert superseded and not any("None" in line for line in superseded), superseded
    assert "metrics: http://127.0.0.1:" in result.stdout
    assert "3 duplicates suppressed" in result.stdout  # the resent penalty file
    assert "invalid_business_id=2" in result.stdout
    audit = next(line for line in result.stdout.splitlines() if line.startswith("audit trail:"))
    assert "trail intact" in audit and " 0 signed heads" not in audit, audit  # signed on the worker's stop
    # every Kafka client closed before the embedded broker stopped: none left to log its lost connection
    # (the worker's timer once kept the shared admin client, the worker its producer)
    assert "|FAIL|rdkafka" not in result.stderr, result.stderr


def test_leads_tail_filters_by_region_and_severity(tmp_path: Path) -> None:
    from confluent_kafka import Producer

    from hub.kafka.serde import Serde
    from hub.settings import load_settings
    from hub.trust import Role, signer

    proc, record = start_hub_broker(tmp_path)
    try:
        bootstrap = str(record["bootstrap"])
        settings = load_settings(environ={}).on_embedded(bootstrap, state_dir=tmp_path / ".hub-state")
        worker = signer(settings, Role.WORKER, "worker")  # the CLI shows only what the hub's workers signed
        encode = Serde(settings).encoder("hub.leads", "lead")
        now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        day = dt.date(2026, 10, 1)

        def lead(lead_id: str, code: str, severity: str) -> bytes:
            return encode({
                "lead_id": lead_id, "business_id": None, "business_key": "k", "business_name": "某公司",
                "region": {"code": code, "name": None}, "rules": ["REPEAT_OFFENDER"], "severity": severity,
                "agencies": ["SAMR"], "evidence": [{"agency": "SAMR", "kind": "PENALTY", "event_id": "e",
                                                    "source_record_id": "s", "occurred_on": day, "finding": "f"}],
                "recommended_action": "a", "status": "OPEN", "superseded_by": None, "window_start": day,
                "window_end": day, "first_seen": now, "updated_at": now, "triggered_by_received_at": now})

        producer = Producer({"bootstrap.servers": bootstrap})
        for lead_id, code, severity in [("lead-a", "410502", "CRITICAL"), ("lead-b", "140702", "CRITICAL"),
                                        ("lead-c", "410503", "MEDIUM")]:
            value = lead(lead_id, code, severity)
            producer.produce("hub.leads", key=lead_id.encode(), value=value,
                             headers=worker.headers("hub.leads", lead_id.encode(), value))
        # a forged lead: anyone's client, unsigned; and one signed by a connector
        producer.produce("hub.leads", key=b"lead-x", value=lead("lead-x", "410502", "CRITICAL"))
        value = lead("lead-y", "410502", "CRITICAL")
        producer.produce("hub.leads", key=b"lead-y", value=value, headers=signer(
            settings, Role.CONNECTOR, "samr.penalty").headers("hub.leads", b"lead-y", value))
        producer.flush()
        tail = subprocess.Popen([sys.executable, "-m", "hub.cli", "leads", "tail", "--from-beginning", "--json",
                                 "--region", "4105", "--severity", "high"], cwd=tmp_path, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(6)
        tail.send_signal(signal.SIGTERM)
        out, _ = tail.communicate(timeout=15)
        shown = [json.loads(line)["lead_id"] for line in out.splitlines() if line.startswith("{")]
        assert shown == ["lead-a"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)


def test_schemas_check_passes_on_the_shipped_contracts(tmp_path: Path) -> None:
    result = hub("schemas", "check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ok event: v3 (id 13)" in result.stdout and "ok lead: v6 (id 16)" in result.stdout \
        and "ok resolution: v2 (id 14)" in result.stdout


def test_schemas_check_fails_on_an_edited_release(tmp_path: Path) -> None:
    import shutil

    from hub.settings import REPO_ROOT

    shutil.copytree(REPO_ROOT / "schemas", tmp_path / "schemas")
    lead = tmp_path / "schemas" / "lead.v1.avsc"
    lead.write_text(lead.read_text().replace('"OPEN", "SUPERSEDED"', '"OPEN", "SUPERSEDED", "CLOSED"'))
    result = hub("schemas", "check", cwd=tmp_path, env={"HUB_SCHEMA_DIR": str(tmp_path / "schemas")})
    assert result.returncode == 1 and "FAIL lead v1" in result.stderr and "edited" in result.stderr


def test_topics_create_is_idempotent(tmp_path: Path) -> None:
    proc, _ = start_hub_broker(tmp_path)
    try:
        first = hub("topics", "create", cwd=tmp_path)  # `hub broker` created them already
        assert first.returncode == 0, first.stderr
        assert all(line.split()[-1] == "exists" for line in first.stdout.splitlines()), first.stdout
        listing = hub("topics", "list", cwd=tmp_path)
        assert "hub.connector-offsets.police.case          1 partitions  connector police.case's cursors" in \
            listing.stdout
        assert "supervision-hub-businesses-changelog       4 partitions" in listing.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)


def test_teams_lists_what_each_team_receives_and_prints_acls(tmp_path: Path) -> None:
    listed = hub("teams", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "samr-taigu  (SAMR)  -> hub.team.samr-taigu  parent: samr-jinzhong" in listed.stdout
    assert "POLICE evidence arrives without details" in listed.stdout
    acls = hub("acls", cwd=tmp_path)
    assert "ALLOW User:team-samr-taigu" in acls.stdout and "PREFIXED" not in acls.stdout.upper()
    bad = tmp_path / "teams.toml"
    bad.write_text('[[teams]]\nname = "x"\nagency = "SAMR"\nparent = "nobody"\n')
    refused = hub("teams", cwd=tmp_path, env={"HUB_TEAMS_FILE": str(bad)})
    assert refused.returncode == 1 and "parent 'nobody' is not a team" in refused.stderr


def test_a_drill_is_refused_on_a_configured_cluster_before_anything_is_sent(tmp_path: Path) -> None:
    """Issue 31: `hub leads tick --at` a week ahead on a configured cluster;
    the workers refuse such a tick, and now the command says so first."""
    ahead = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).isoformat()
    refused = hub("--broker", "127.0.0.1:1", "leads", "tick", "--at", ahead, cwd=tmp_path)
    assert refused.returncode == 2 and "is a drill" in refused.stderr and "HUB_ALLOW_DRILLS" in refused.stderr
