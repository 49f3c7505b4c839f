"""docker-compose.yml, validated by a real Compose binary (no Docker engine here)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import compose
import pytest
import yaml

from connectors.discovery import available
from hub.settings import REPO_ROOT, load_settings

# the binary itself: the package's wrapper script always exits 0
COMPOSE = Path(compose.__file__).parent / "docker-compose"
HUB_SERVICES = {"topics", "worker-1", "worker-2"} | {f"connector-{n.replace('.', '-')}" for n in available()}


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(COMPOSE), "-f", str(REPO_ROOT / "docker-compose.yml"), "config", "--format", "json"],
                          capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
                          env={k: v for k, v in {**os.environ, **env}.items() if k != "HUB_PII_KEY" or "HUB_PII_KEY" in env})


@pytest.fixture(scope="module")
def stack() -> dict:
    result = compose_config(HUB_PII_KEY="compose-test-key")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_stack_has_every_service(stack: dict) -> None:
    assert set(stack["services"]) == HUB_SERVICES | {"kafka", "schema-registry", "prometheus", "grafana"}
    kafka = stack["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert "schema-registry" in stack["services"]["schema-registry"]["image"]


def test_hub_services_are_configured_for_kafka(stack: dict) -> None:
    for name in HUB_SERVICES:
        env = stack["services"][name]["environment"]
        settings = load_settings(environ=env)  # every variable is a real setting
        assert settings.broker_url == "kafka:9092" and not settings.embedded
        assert settings.schema_registry_url == "http://schema-registry:8081"
        assert settings.pii_key == "compose-test-key"
        assert settings.session_timeout_s >= 6 and not settings.changelog_sentinels
        assert settings.metrics_host == "0.0.0.0" and settings.metrics_port == 9400


def test_connectors_watch_their_mounted_folders(stack: dict) -> None:
    for name in available():
        service = stack["services"][f"connector-{name.replace('.', '-')}"]
        assert service["command"] == ["connector", "run", name, "--follow", "--path", f"/exports/{name}"]
        assert any(v["target"] == "/exports" for v in service["volumes"])


def test_set_up_job_runs_before_the_workers(stack: dict) -> None:
    assert "hub topics create && hub schemas register" in " ".join(stack["services"]["topics"]["entrypoint"])
    for name in HUB_SERVICES - {"topics"}:
        assert stack["services"][name]["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_prometheus_and_grafana_use_the_ops_files(stack: dict) -> None:
    mounts = {v["target"]: Path(v["source"]) for s in ("prometheus", "grafana")
              for v in stack["services"][s]["volumes"] if v["type"] == "bind"}
    assert mounts["/etc/prometheus/prometheus.yml"] == REPO_ROOT / "ops" / "prometheus.yml"
    assert mounts["/etc/prometheus/alerts.yml"] == REPO_ROOT / "ops" / "alerts.yml"
    assert mounts["/etc/grafana/provisioning"] == REPO_ROOT / "ops" / "grafana" / "provisioning"
    assert all(path.exists() for path in mounts.values())
    scrape = yaml.safe_load((REPO_ROOT / "ops" / "prometheus.yml").read_text())
    targets = {t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert targets == {f"{name}:9400" for name in HUB_SERVICES - {"topics"}}
    published = {p["published"] for s in ("prometheus", "grafana", "schema-registry")
                 for p in stack["services"][s]["ports"]}
    assert published == {"9090", "3000", "8081"}


def test_the_pii_key_is_required() -> None:
    result = compose_config()
    assert result.returncode != 0 and "HUB_PII_KEY" in result.stderr
