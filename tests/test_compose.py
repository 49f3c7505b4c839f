"""docker-compose.yml, validated by a real Compose binary (no Docker engine
here). Its Kafka nodes are read as the apache/kafka image reads them, by the
code that starts them in tests/test_secured_cluster.py."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from connectors.discovery import available
from hub.settings import REPO_ROOT, load_settings
from tests.cluster import NODES, compose_stack, image_properties

CONNECTORS = {f"connector-{n.replace('.', '-')}" for n in available()}
HUB_SERVICES = {"setup", "worker-1", "worker-2"} | CONNECTORS  # the Kafka clients among the hub's services
PII_KEY = "/run/secrets/pii-key"


@pytest.fixture(scope="module")
def stack() -> dict:
    return compose_stack()


def _settings(service: dict, tmp: Path) -> object:
    """The service's settings, its PII key file (a secret) stood in for."""
    env = dict(service["environment"])
    if env.get("HUB_PII_KEY_FILE") == PII_KEY:
        (tmp / "pii-key").write_text("compose-test-key\n")
        env["HUB_PII_KEY_FILE"] = str(tmp / "pii-key")
    return load_settings(environ=env)  # every variable is a real setting


def test_the_stack_has_every_service(stack: dict) -> None:
    assert set(stack["services"]) == HUB_SERVICES | {"schemas", *NODES, "schema-registry", "schema-registry-read",
                                                     "prometheus", "grafana"}
    for node in NODES:
        assert stack["services"][node]["image"].startswith("apache/kafka:")
        assert image_properties(stack["services"][node])["process.roles"] == "broker,controller"  # KRaft
    assert "schema-registry" in stack["services"]["schema-registry"]["image"]


def test_hub_services_are_configured_for_kafka(stack: dict, tmp_path: Path) -> None:
    for name in HUB_SERVICES:
        settings = _settings(stack["services"][name], tmp_path)
        assert settings.broker_url in (",".join(f"{n}:9093" for n in NODES), ",".join(f"{n}:9094" for n in NODES))
        assert settings.schema_registry_url == "http://schema-registry-read:8081"  # look-ups and fetches only
        assert settings.replication_factor == 3  # as many as the nodes; two in sync (the brokers' minimum)
        assert settings.session_timeout_s >= 6
        assert settings.metrics_host == "0.0.0.0" and settings.metrics_port == 9400
    assert _settings(stack["services"]["worker-1"], tmp_path).pii_key == "compose-test-key"


def test_connectors_watch_their_mounted_folders(stack: dict) -> None:
    for name in available():
        service = stack["services"][f"connector-{name.replace('.', '-')}"]
        assert service["command"] == ["connector", "run", name, "--follow", "--path", f"/exports/{name}"]
        assert any(v["target"] == "/exports" for v in service["volumes"])


def test_set_up_and_schema_jobs_run_before_the_workers(stack: dict) -> None:
    services = stack["services"]
    assert services["setup"]["entrypoint"][-1] == "hub topics create && hub acls --apply --scram-users /etc/hub/scram"
    assert services["schemas"]["entrypoint"] == ["hub", "schemas", "register"]
    assert set(services["setup"]["depends_on"]) == set(NODES)
    assert services["schema-registry"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert "schema-registry" in services["schemas"]["depends_on"]
    for name in HUB_SERVICES - {"setup"}:
        assert services[name]["depends_on"]["schemas"]["condition"] == "service_completed_successfully"


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


def test_the_pii_key_is_a_secret_file_mounted_only_where_it_is_used(stack: dict) -> None:
    """Issue 33: it was HUB_PII_KEY, in every container's environment."""
    users = {name for name, service in stack["services"].items()
             if any(s["source"] == "pii-key" for s in service.get("secrets", []))}
    assert users == {"worker-1", "worker-2"} | CONNECTORS  # (and the operators' tools, a profile)
    for name, service in stack["services"].items():
        env = service.get("environment") or {}
        assert "HUB_PII_KEY" not in env, name
        assert (env.get("HUB_PII_KEY_FILE") == PII_KEY) == (name in users), name
    assert "HUB_PII_KEY:" not in (REPO_ROOT / "docker-compose.yml").read_text()


def test_kafka_authenticates_and_authorises_every_client(stack: dict) -> None:
    """Issue 15: PLAINTEXT listeners, no SASL, no TLS, no authorizer;
    issue 33: a PLAINTEXT controller listener, one node."""
    for node in NODES:
        properties = image_properties(stack["services"][node])
        protocols = dict(pair.split(":") for pair in properties["listener.security.protocol.map"].split(","))
        listeners = [one.split("://")[0] for one in properties["listeners"].split(",")]
        # no PLAINTEXT at all, the controller's too
        assert {protocols[name] for name in listeners} == {"SASL_SSL", "SSL"}
        assert properties["listener.name.admin.ssl.client.auth"] == "required"
        assert properties["listener.name.controller.ssl.client.auth"] == "required"
        assert properties["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
        assert properties["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        assert properties["allow.everyone.if.no.acl.found"] == "false"
        assert properties["super.users"] == "User:kafka-1;User:kafka-2;User:kafka-3;User:hub-admin"
        assert properties["min.insync.replicas"] == "2" and properties["default.replication.factor"] == "3"
        assert properties["node.id"] == node.removeprefix("kafka-")
        assert properties["controller.quorum.voters"] == "1@kafka-1:9095,2@kafka-2:9095,3@kafka-3:9095"
        assert "ports" not in stack["services"][node]


def test_only_the_hub_reaches_the_brokers_and_only_the_schemas_job_the_registry(stack: dict) -> None:
    """Issue 33: the registry authenticates nobody, so who can reach it is who can change it."""
    services = stack["services"]

    def on(network: str) -> set[str]:
        return {name for name, service in services.items() if network in service.get("networks", {})}

    assert on("kafka") == HUB_SERVICES | {"schema-registry-read", *NODES}
    assert on("store") == {"schema-registry", *NODES}  # the registry's own topic, on the brokers
    assert on("registry") == {"schema-registry", "schema-registry-read", "schemas"}
    assert services["schemas"]["environment"]["HUB_SCHEMA_REGISTRY_URL"] == "http://schema-registry:8081"
    [conf] = [v for v in services["schema-registry-read"]["volumes"] if v["target"] == "/etc/nginx/conf.d/default.conf"]
    assert Path(conf["source"]) == REPO_ROOT / "ops" / "registry-proxy.conf"  # run by tests/test_registry_proxy.py
    assert set(services["prometheus"]["networks"]) == set(services["grafana"]["networks"]) == {"monitoring"}


def test_registry_prometheus_and_grafana_are_not_open_to_the_network(stack: dict) -> None:
    services = stack["services"]
    assert "ports" not in services["schema-registry"] and "ports" not in services["schema-registry-read"]
    for name in ("prometheus", "grafana", "worker-1", "worker-2"):
        assert all(p.get("host_ip") == "127.0.0.1" for p in services[name].get("ports", [])), name
    grafana = services["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false" and "GF_SECURITY_ADMIN_PASSWORD__FILE" in grafana


def test_each_hub_process_is_its_own_principal_with_its_own_secrets(stack: dict, tmp_path: Path) -> None:
    from hub.kafka.acls import bindings, principals
    from hub.domain.teams import load_teams

    known = principals(
        bindings(
            load_teams(REPO_ROOT / "ops" / "teams.toml"),
            {n: c.agency for n, c in available().items()},
            "supervision-hub",
            [],
        )
    )
    users = {}
    for name in HUB_SERVICES - {"setup"}:
        service = stack["services"][name]
        settings = _settings(service, tmp_path)
        assert settings.kafka_security_protocol == "SASL_SSL" and settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
        assert settings.kafka_sasl_username in known
        users[name] = settings.kafka_sasl_username
        mounted = {s["target"]: stack["secrets"][s["source"]]["file"] for s in service["secrets"]}
        assert set(mounted) == {"kafka-password", "signing-key", PII_KEY}
        assert Path(mounted["kafka-password"]).name == settings.kafka_sasl_username
        identity = settings.kafka_sasl_username.removeprefix("hub-").removeprefix("connector-")
        assert Path(mounted["signing-key"]).name.endswith(f"{identity}.pem")
    assert len(set(users.values())) == len(users) - 1  # the two workers share one principal, nobody else
    assert stack["services"]["setup"]["environment"]["HUB_KAFKA_SECURITY_PROTOCOL"] == "SSL"  # mutual TLS


def test_make_secrets_makes_every_file_the_stack_mounts(stack: dict, tmp_path: Path) -> None:
    out = tmp_path / "secrets"
    made = subprocess.run(
        [str(REPO_ROOT / "ops" / "make-secrets.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SECRETS_DIR": str(out), "HUB": f"{sys.executable} -m hub.cli"},
    )
    assert made.returncode == 0, made.stderr
    secrets_dir = REPO_ROOT / "secrets"
    wanted = {Path(s["file"]) for s in stack["secrets"].values()}
    wanted |= {
        Path(v["source"])
        for svc in stack["services"].values()
        for v in svc.get("volumes", [])
        if v["type"] == "bind" and Path(v["source"]).is_relative_to(secrets_dir)
    }
    missing = [str(p) for p in wanted if not (out / p.relative_to(secrets_dir)).exists()]
    assert not missing, missing
    assert stat.S_IMODE((out / "keys" / "worker-worker.pem").stat().st_mode) == 0o600


def test_the_clusters_ports_are_chosen_distinct() -> None:
    """A failed run: a node's client and controller listeners were given the
    same free port (asked one at a time), and its storage would not format."""
    from tests.cluster import free_ports

    for _ in range(20):
        ports = free_ports(9)
        assert len(set(ports)) == 9
