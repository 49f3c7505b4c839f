"""docker-compose.yml, validated by a real Compose binary (no Docker engine here)."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import compose
import pytest
import yaml

from connectors.discovery import available
from hub.settings import REPO_ROOT, load_settings

# the binary itself: the package's wrapper script always exits 0
COMPOSE = Path(compose.__file__).parent / "docker-compose"
HUB_SERVICES = {"setup", "worker-1", "worker-2"} | {f"connector-{n.replace('.', '-')}" for n in available()}


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
        assert settings.broker_url in ("kafka:9093", "kafka:9094") and not settings.embedded
        assert settings.schema_registry_url == "http://schema-registry:8081"
        assert settings.pii_key == "compose-test-key"
        assert settings.session_timeout_s >= 6
        assert settings.metrics_host == "0.0.0.0" and settings.metrics_port == 9400


def test_connectors_watch_their_mounted_folders(stack: dict) -> None:
    for name in available():
        service = stack["services"][f"connector-{name.replace('.', '-')}"]
        assert service["command"] == ["connector", "run", name, "--follow", "--path", f"/exports/{name}"]
        assert any(v["target"] == "/exports" for v in service["volumes"])


def test_set_up_job_runs_before_the_workers(stack: dict) -> None:
    assert "hub topics create && hub schemas register && hub acls --apply --scram-users" in \
        " ".join(stack["services"]["setup"]["entrypoint"])
    for name in HUB_SERVICES - {"setup"}:
        assert stack["services"][name]["depends_on"]["setup"]["condition"] == "service_completed_successfully"


def test_prometheus_and_grafana_use_the_ops_files(stack: dict) -> None:
    mounts = {v["target"]: Path(v["source"]) for s in ("prometheus", "grafana")
              for v in stack["services"][s]["volumes"] if v["type"] == "bind"}
    assert mounts["/etc/prometheus/prometheus.yml"] == REPO_ROOT / "ops" / "prometheus.yml"
    assert mounts["/etc/prometheus/alerts.yml"] == REPO_ROOT / "ops" / "alerts.yml"
    assert mounts["/etc/grafana/provisioning"] == REPO_ROOT / "ops" / "grafana" / "provisioning"
    assert all(path.exists() for path in mounts.values())
    scrape = yaml.safe_load((REPO_ROOT / "ops" / "prometheus.yml").read_text())
    targets = {t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert targets == {f"{name}:9400" for name in HUB_SERVICES - {"setup"}}


def test_the_pii_key_is_required() -> None:
    result = compose_config()
    assert result.returncode != 0 and "HUB_PII_KEY" in result.stderr


def test_kafka_authenticates_and_authorises_every_client(stack: dict) -> None:
    """Issue 15: PLAINTEXT listeners, no SASL, no TLS, no authorizer."""
    env = stack["services"]["kafka"]["environment"]
    protocols = dict(pair.split(":") for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = [l.split("://")[0] for l in env["KAFKA_ADVERTISED_LISTENERS"].split(",")]
    assert {protocols[l] for l in listeners} == {"SASL_SSL", "SSL"}  # no PLAINTEXT for any client
    assert env["KAFKA_LISTENER_NAME_ADMIN_SSL_CLIENT_AUTH"] == "required"
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert "ports" not in stack["services"]["kafka"]


def test_registry_prometheus_and_grafana_are_not_open_to_the_network(stack: dict) -> None:
    services = stack["services"]
    assert "ports" not in services["schema-registry"]  # the internal network only
    for name in ("prometheus", "grafana", "worker-1", "worker-2"):
        assert all(p.get("host_ip") == "127.0.0.1" for p in services[name].get("ports", [])), name
    grafana = services["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false" and "GF_SECURITY_ADMIN_PASSWORD__FILE" in grafana


def test_each_hub_process_is_its_own_principal_with_its_own_secrets(stack: dict) -> None:
    from hub.acls import bindings, principals
    from hub.domain.teams import load_teams

    known = principals(bindings(load_teams(REPO_ROOT / "ops" / "teams.toml"),
                                {n: c.agency for n, c in available().items()}, "supervision-hub", []))
    users = {}
    for name in HUB_SERVICES - {"setup"}:
        service = stack["services"][name]
        settings = load_settings(environ=service["environment"])
        assert settings.kafka_security_protocol == "SASL_SSL" and settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
        assert settings.kafka_sasl_username in known
        users[name] = settings.kafka_sasl_username
        mounted = {s["target"]: stack["secrets"][s["source"]]["file"] for s in service["secrets"]}
        assert set(mounted) == {"kafka-password", "signing-key"}
        assert Path(mounted["kafka-password"]).name == settings.kafka_sasl_username
        identity = settings.kafka_sasl_username.removeprefix("hub-").removeprefix("connector-")
        assert Path(mounted["signing-key"]).name.endswith(f"{identity}.pem")
    assert len(set(users.values())) == len(users) - 1  # the two workers share one principal, nobody else
    assert stack["services"]["setup"]["environment"]["HUB_KAFKA_SECURITY_PROTOCOL"] == "SSL"  # mutual TLS


def test_make_secrets_makes_every_file_the_stack_mounts(stack: dict, tmp_path: Path) -> None:
    out = tmp_path / "secrets"
    made = subprocess.run([str(REPO_ROOT / "ops" / "make-secrets.sh")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SECRETS_DIR": str(out), "HUB": f"{sys.executable} -m hub.cli"})
    assert made.returncode == 0, made.stderr
    secrets_dir = REPO_ROOT / "secrets"
    wanted = {Path(s["file"]) for s in stack["secrets"].values()}
    wanted |= {Path(v["source"]) for svc in stack["services"].values() for v in svc.get("volumes", [])
               if v["type"] == "bind" and Path(v["source"]).is_relative_to(secrets_dir)}
    missing = [str(p) for p in wanted if not (out / p.relative_to(secrets_dir)).exists()]
    assert not missing, missing
    assert stat.S_IMODE((out / "keys" / "worker-worker.pem").stat().st_mode) == 0o600
