"""Issue 33: the production cluster of docker-compose.yml, for real (see
tests/cluster.py): three KRaft nodes, SASL_SSL with SCRAM-SHA-512 for
clients, mutual TLS between nodes and for the administrator, the
StandardAuthorizer denying whatever `hub acls` does not allow. Every
principal is refused, by the broker, what it must not do, and every hub
process still does its job as its own principal."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, ConfigResource,
                                   ResourcePatternType, ResourceType)

from hub.domain.teams import load_teams
from hub.flow.topics import AUDIT_TOPIC, FEEDBACK_TOPIC, LEADS_TOPIC, cursor_topic, events_topic, feedback_topic, \
    outcomes_topic
from hub.domain.events import Agency
from hub.kafka.clients import KafkaClients
from hub.kafka.readers import final_leads
from hub.apps.pipeline import wait_until_processed
from hub.devtools.samples import write_scenario
from hub.settings import REPO_ROOT
from hub.kafka.tls import make_ca, make_cert
from tests.cluster import SecuredCluster, secured_cluster
from tests.helpers import hub, wait_for

pytestmark = pytest.mark.broker

TEAMS = load_teams(REPO_ROOT / "ops" / "teams.toml")
SHANXI, JINZHONG, OVERSIGHT = "police-shanxi-food-crime", "police-jinzhong-food-crime", "procuratorate-shanxi"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredCluster]:
    with secured_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


# -- what a client gets when it tries ------------------------------------------
def _named(error: Any) -> str:
    """An error's name, with what the client was told where that says more
    (an authentication or TLS failure): e.g. "_TRANSPORT (... bad certificate ...)"."""
    reason = error.str().split(": ", 1)[-1].split("::")[-1].split(": SSL alert")[0]
    return f"{error.name()} ({reason[:80]})" if error.name() in ("_AUTHENTICATION", "_SSL", "_TRANSPORT") \
        else str(error.name())


def _most_telling(errors: list[Any], fallback: str) -> str:
    for error in errors:
        if error.name() in ("_AUTHENTICATION", "_SSL"):
            return _named(error)
    return _named(errors[0]) if errors else fallback


def produce(config: dict[str, str], topic: str) -> str:
    """"delivered", or the error that refused the record."""
    errors: list[Any] = []
    outcome: list[str] = []
    producer = Producer({**config, "acks": "all", "message.timeout.ms": "10000", "error_cb": errors.append})
    producer.produce(topic, b"probe", key=b"probe",
                     on_delivery=lambda err, _: outcome.append(err.name() if err else "delivered"))
    producer.flush(20)
    return outcome[0] if outcome and outcome[0] != "_MSG_TIMED_OUT" else _most_telling(errors, "no answer")


def read(config: dict[str, str], topic: str, group: str) -> str:
    """"read" (a record, or the end of an empty topic), or the error that
    refused it; subscribed in ``group``, one the principal may use, so that
    what is refused is the topic."""
    errors: list[Any] = []
    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": "false", "auto.offset.reset": "earliest",
                         "enable.partition.eof": "true", "error_cb": errors.append})
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            return "read" if error is None or error.name() == "_PARTITION_EOF" else str(error.name())
        return _most_telling(errors, "no answer")
    finally:
        consumer.close()


def metadata(config: dict[str, str]) -> str:
    """"answered", or the error that refused the connection."""
    errors: list[Any] = []
    client = AdminClient({**config, "error_cb": errors.append})
    try:
        client.list_topics(timeout=10)
        return "answered"
    except KafkaException as exc:
        client.poll(2)  # the errors each connection met
        return _most_telling(errors, str(exc.args[0].name()))


def alter_acls(config: dict[str, str]) -> str:
    """"altered", or the error that refused it: an ALLOW for everyone on hub.leads."""
    binding = AclBinding(ResourceType.TOPIC, LEADS_TOPIC, ResourcePatternType.LITERAL, "User:*", "*",
                         AclOperation.READ, AclPermissionType.ALLOW)
    client = AdminClient(config)
    [future] = client.create_acls([binding]).values()
    try:
        future.result()
        return "altered"
    except KafkaException as exc:
        return str(exc.args[0].name())


# The broker's refusals: an authorization error, or (authentication) a
# connection it drops (every broker, for a client that does not speak TLS);
# never a timeout or silence.
REFUSED = {"TOPIC_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED", "_AUTHENTICATION", "_SSL", "_TRANSPORT",
           "_ALL_BROKERS_DOWN"}


def attempts(cluster: SecuredCluster, foreign: Path) -> list[tuple[str, str, Callable[[], str]]]:
    """Principal, what it tries that it must not, and the try."""
    penalty = cluster.client("connector-samr.penalty")
    jinzhong = cluster.client(f"team-{JINZHONG}")
    oversight = cluster.client(f"team-{OVERSIGHT}")
    return [
        ("connector-samr.penalty", "write another agency's events (hub.events.police)",
         lambda: produce(penalty, events_topic(Agency.POLICE))),
        ("connector-samr.penalty", f"read a team topic ({TEAMS[SHANXI].topic})",
         lambda: read(penalty, TEAMS[SHANXI].topic, "connector-samr.penalty")),
        ("connector-samr.penalty", "read another connector's cursors",
         lambda: read(penalty, cursor_topic("police.case"), "connector-samr.penalty")),
        ("connector-samr.penalty", "write another connector's cursors",
         lambda: produce(penalty, cursor_topic("police.case"))),
        ("connector-samr.penalty", "write hub.leads", lambda: produce(penalty, LEADS_TOPIC)),
        (f"team-{JINZHONG}", f"read another team's topic ({TEAMS[SHANXI].topic})",
         lambda: read(jinzhong, TEAMS[SHANXI].topic, f"team-{JINZHONG}")),
        (f"team-{JINZHONG}", "read every lead in full (hub.leads)",
         lambda: read(jinzhong, LEADS_TOPIC, f"team-{JINZHONG}")),
        (f"team-{JINZHONG}", "write hub.leads", lambda: produce(jinzhong, LEADS_TOPIC)),
        (f"team-{JINZHONG}", "write hub.audit", lambda: produce(jinzhong, AUDIT_TOPIC)),
        (f"team-{JINZHONG}", "write another team's feedback topic",
         lambda: produce(jinzhong, feedback_topic(SHANXI))),
        (f"team-{JINZHONG}", "tick the clock (hub.feedback)", lambda: produce(jinzhong, FEEDBACK_TOPIC)),
        (f"team-{OVERSIGHT}", "answer a lead (any feedback topic)", lambda: produce(oversight, feedback_topic(SHANXI))),
        ("agency-samr", "read another agency's outcomes",
         lambda: read(cluster.client("agency-samr"), outcomes_topic("POLICE"), "agency-samr")),
        ("hub-operator", "write hub.leads", lambda: produce(cluster.client("hub-operator"), LEADS_TOPIC)),
        ("hub-worker", "alter ACLs", lambda: alter_acls(cluster.client("hub-worker"))),
        ("schema-registry (certificate)", "read hub.leads on the ADMIN listener",
         lambda: read(cluster.admin_client("schema-registry"), LEADS_TOPIC, "schema-registry")),
        ("schema-registry (certificate)", "alter ACLs", lambda: alter_acls(cluster.admin_client("schema-registry"))),
        ("nobody: TLS, no SASL", "ask for metadata on the client listener",
         lambda: metadata(cluster.client(None))),
        ("nobody: plaintext", "ask for metadata on the client listener",
         lambda: metadata({**cluster.client(None), "security.protocol": "PLAINTEXT"})),
        ("nobody: TLS, no certificate", "ask for metadata on the ADMIN listener",
         lambda: metadata({**cluster.admin_client(), "ssl.certificate.location": "", "ssl.key.location": ""})),
        ("connector-samr.penalty, wrong password", "ask for metadata",
         lambda: metadata(cluster.client("connector-samr.penalty", password="not-its-password"))),
        ("hub-admin, certificate of another CA", "ask for metadata on the ADMIN listener",
         lambda: metadata({**cluster.admin_client(), "ssl.certificate.location": str(foreign / "hub-admin.pem"),
                           "ssl.key.location": str(foreign / "hub-admin.key")})),
    ]


def test_the_cluster_is_the_compose_files(cluster: SecuredCluster) -> None:
    for node in cluster.nodes.values():
        properties = node.properties
        protocols = dict(p.split(":") for p in properties["listener.security.protocol.map"].split(","))
        assert set(protocols.values()) == {"SASL_SSL", "SSL"}  # no PLAINTEXT listener at all, the controller's too
        assert protocols[properties["controller.listener.names"]] == "SSL"
        assert properties["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        assert properties["allow.everyone.if.no.acl.found"] == "false"
        assert properties["min.insync.replicas"] == "2" and properties["default.replication.factor"] == "3"
    client = AdminClient(cluster.admin_client())
    topics = client.list_topics(timeout=10).topics
    assert len(client.list_topics(timeout=10).brokers) == 3
    for name in (LEADS_TOPIC, events_topic(Agency.SAMR), cursor_topic("samr.penalty"), TEAMS[SHANXI].topic):
        assert all(len(p.replicas) == 3 for p in topics[name].partitions.values()), name
    [future] = client.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, LEADS_TOPIC)]).values()
    assert future.result()["min.insync.replicas"].value == "2"


def test_every_principal_is_refused_what_it_must_not_do(cluster: SecuredCluster, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    foreign = tmp_path / "foreign-ca"
    make_ca(foreign, now)
    make_cert(foreign, "hub-admin", [], now, client=True)
    table = [(principal, attempt, attempt_it()) for principal, attempt, attempt_it in attempts(cluster, foreign)]
    report = "\n".join(f"| {p} | {a} | {r} |" for p, a, r in table)
    if os.environ.get("HUB_DENY_TABLE"):
        Path(os.environ["HUB_DENY_TABLE"]).write_text("| principal | attempt | broker's answer |\n|---|---|---|\n"
                                                      + report + "\n", encoding="utf-8")
    allowed = [row for row in table if row[2].split(" ")[0] not in REFUSED]
    assert not allowed, report
    # and the cluster still answers each principal what it may: its own topic, its cursors
    assert read(cluster.client(f"team-{JINZHONG}"), TEAMS[JINZHONG].topic, f"team-{JINZHONG}") == "read"
    assert read(cluster.client("connector-samr.penalty"), cursor_topic("samr.penalty"),
                "connector-samr.penalty") == "read"


def _hub(cluster: SecuredCluster, principal: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The hub command as ``principal`` runs it."""
    return hub(*args, cwd=cluster.root, env=cluster.env(principal))


def _worker(cluster: SecuredCluster, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "hub.cli", "worker"], cwd=cluster.root, text=True,
                            env={**os.environ, **cluster.env("hub-worker"), "HUB_METRICS_PORT": "0",
                                 "HUB_WEB_PORT": "-1", "HUB_LIFECYCLE_TICK_S": "0", "HUB_COMMIT_INTERVAL_S": "0.2"},
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def test_every_hub_process_does_its_job_as_its_own_principal(cluster: SecuredCluster, tmp_path: Path) -> None:
    files = write_scenario(tmp_path / "exports")
    for name, path in files.items():
        run = _hub(cluster, f"connector-{name}", "connector", "run", name, "--path", str(path))
        assert run.returncode in (0, 3), run.stderr  # 3: finished, the scenario's bad rows rejected
        assert "published" in run.stdout, run.stdout
    again = _hub(cluster, "connector-samr.penalty", "connector", "run", "samr.penalty", "--path",
                 str(files["samr.penalty"]))
    assert "already delivered" in again.stdout, again.stdout + again.stderr  # its own cursor topic

    # each principal's own Kafka clients, made once for the test
    admin, operator, team = (KafkaClients(cluster.settings(p)) for p in ("hub-admin", "hub-operator", f"team-{SHANXI}"))
    worker = _worker(cluster, tmp_path / "worker.log")
    try:
        # every event processed, so every lead published (read as the administrator: the group's offsets)
        wait_until_processed(admin, timeout_s=180)
        leads = final_leads(operator)
        mine = final_leads(team, TEAMS[SHANXI].topic)
        assert mine and set(mine) <= set(leads), (sorted(mine), sorted(leads))
        assert all(lead["rules"][0] == "CRIMINAL_REFERRAL" for lead in mine.values())
        lead_id = sorted(mine)[0]
        key = cluster.secrets / "keys" / f"team-{SHANXI}.pem"
        ack = _hub(cluster, f"team-{SHANXI}", "leads", "ack", lead_id, "--key", str(key))
        assert ack.returncode == 0, ack.stderr
        wait_for("the team's answer applied", lambda: final_leads(operator)[lead_id]["status"] == "ACKNOWLEDGED",
                 timeout=120)
        status = _hub(cluster, "hub-operator", "status")
        assert status.returncode == 0, status.stderr
        assert "samr.penalty" in status.stdout
    finally:
        for clients in (admin, operator, team):
            clients.close()
        worker.terminate()
        worker.wait(timeout=90)
    assert worker.returncode == 0, (tmp_path / "worker.log").read_text()[-3000:]
