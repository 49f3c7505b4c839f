"""Operations files: Prometheus config and alert rules checked by promtool,
alert unit tests, and a real Prometheus scraping a running worker and connector."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from hub.trust import ensure_keys, trust_env
from hub.kafka.broker import free_port
from hub.edge.metrics import Metrics
from hub.devtools.samples import write_scenario
from hub.settings import REPO_ROOT, load_settings
from hub.kafka.topics import create_topics

OPS = REPO_ROOT / "ops"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")


def promtool(*args: str, cwd: Path = OPS) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL, "promtool not found: apt-get install prometheus (see .ci/run)"
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load((OPS / "alerts.yml").read_text())["groups"] for rule in group["rules"]]


def _exported_metric_names() -> set[str]:
    """What a worker serves: its metrics and its lead board's gauges."""
    from hub.apps.board import BoardCollector, LeadBoard
    from hub.domain.teams import load_teams

    registry = Metrics().registry
    registry.register(BoardCollector(LeadBoard(load_teams(OPS / "teams.toml"))))
    names = set()
    for metric in registry.collect():
        for sample in metric.samples:
            names.add(sample.name)
        names.add(metric.name)
        names.update(f"{metric.name}{suffix}" for suffix in ("_bucket", "_count", "_sum", "_total"))
    return names


def test_promtool_checks_config_and_rules() -> None:
    config = promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    rules = promtool("check", "rules", "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_alert_unit_tests_pass() -> None:
    result = promtool("test", "rules", "tests/alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_complete_and_has_a_runbook_section() -> None:
    runbook = (OPS / "runbook.md").read_text()
    tested = (OPS / "tests" / "alerts_test.yml").read_text()
    for rule in _rules():
        name = rule["alert"]
        assert "for" in rule and rule["labels"]["severity"] in {"warning", "critical"}, name
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name
        assert f"## {name}\n" in runbook, name
        assert rule["annotations"]["runbook"] == f"ops/runbook.md#{name.lower()}"
        assert f"alertname: {name}" in tested, f"{name} has no promtool unit test"


def test_alerts_name_only_metrics_the_hub_exports() -> None:
    exported = _exported_metric_names() | {"up"}
    for rule in _rules():
        for name in re.findall(r"\b(hub_[a-z_]+|up)\b", rule["expr"]):
            assert name in exported, (rule["alert"], name)


def _query(port: int, promql: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.mark.broker
def test_real_prometheus_scrapes_a_worker_and_a_connector(broker, tmp_path: Path, make_clients) -> None:
    assert PROMETHEUS, "prometheus not found: apt-get install prometheus (see .ci/run)"
    exports = tmp_path / "exports"
    exports.mkdir()
    worker_port, connector_port, prom_port = free_port(), free_port(), free_port()
    env = {**os.environ, "HUB_BROKER_URL": broker.bootstrap, "HUB_PII_KEY": "ops-test-key",
           "HUB_APP_ID": "hub-ops-test"}
    settings = load_settings(environ=env).with_overrides(state_dir=tmp_path / ".hub-state", provision_keys=True)
    clients = make_clients(settings)
    create_topics(clients)  # the stack's one-shot topic job
    ensure_keys(settings)  # and its keys
    env.update(trust_env(settings))
    processes = [
        subprocess.Popen([sys.executable, "-m", "hub.cli", "worker"], cwd=tmp_path,
                         env={**env, "HUB_METRICS_PORT": str(worker_port)},
                         stdout=subprocess.DEVNULL,
                         stderr=open(tmp_path / "worker.log", "w")),  # noqa: SIM115 (open as long as the process)
        subprocess.Popen([sys.executable, "-m", "hub.cli", "connector", "run", "samr.penalty", "--follow",
                          "--interval", "0.5", "--path", str(exports)], cwd=tmp_path,
                         env={**env, "HUB_METRICS_PORT": str(connector_port)},
                         stdout=subprocess.DEVNULL,
                         stderr=open(tmp_path / "connector.log", "w")),  # noqa: SIM115 (open as long as the process)
    ]
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(OPS / "alerts.yml")],
        "scrape_configs": [
            {"job_name": "hub-worker", "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}]},
            {"job_name": "hub-connector", "static_configs": [{"targets": [f"127.0.0.1:{connector_port}"]}]},
        ]}))
    processes.append(subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        files = write_scenario(tmp_path / "scenario")
        shutil.copy(files["samr.penalty"], exports / "行政处罚.csv")
        deadline = time.monotonic() + 90
        read = processed = []
        while time.monotonic() < deadline:
            try:
                read = _query(prom_port, 'hub_connector_records_read_total{job="hub-connector"}')
                processed = _query(prom_port, 'sum(hub_worker_events_processed_total{job="hub-worker"})')
            except OSError:
                read = processed = []
            if read and processed and float(processed[0]["value"][1]) >= 3:
                break
            time.sleep(1)
        logs = {name: (tmp_path / name).read_text()[-2000:] for name in ("worker.log", "connector.log")}
        assert read and float(read[0]["value"][1]) == 4, (read, logs)
        assert processed and float(processed[0]["value"][1]) == 3, processed
        up = {r["metric"]["job"]: r["value"][1] for r in _query(prom_port, "up")}
        assert up == {"hub-worker": "1", "hub-connector": "1"}
        rejected = _query(prom_port, 'hub_connector_records_rejected_total{reason="invalid_business_id"}')
        assert float(rejected[0]["value"][1]) == 1
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def test_every_dashboard_panel_queries_metrics_the_hub_exports() -> None:
    exported = _exported_metric_names() | {"up"}
    dashboards = list((OPS / "grafana" / "dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["panels"]
        for panel in dashboard["panels"]:
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                names = re.findall(r"\b(hub_[a-z_]+|up)\b", target["expr"])
                assert names, (panel["title"], target["expr"])
                for name in names:
                    assert name in exported, (path.name, panel["title"], name)
            # the provisioned datasource is the one the panels name
            assert panel["datasource"]["uid"] == "prometheus"
    datasource = yaml.safe_load((OPS / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["uid"] == "prometheus"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each panel's query as a recording rule."""
    rules = [{"record": f"hub:panel_{i}", "expr": target["expr"]}
             for i, target in enumerate(t for p in json.loads((OPS / "grafana" / "dashboards" / "hub.json")
                                                                .read_text())["panels"] for t in p["targets"])]
    (tmp_path / "panels.yml").write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = promtool("check", "rules", str(tmp_path / "panels.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
