"""The production cluster of docker-compose.yml, run here: three Apache
Kafka nodes (KRaft, each broker and controller) as JVMs on loopback.

No Docker engine runs on these machines, so the nodes are started from what
Compose itself makes of the file (``docker compose config``): each kafka
service's mounted ``server.properties`` (ops/kafka/cluster.properties) with
its ``KAFKA_`` variables over it, as the apache/kafka image does. Only what
a container gives for free is replaced: host names become 127.0.0.1 with a
free port per node and listener, a mounted file's path becomes the file, a
volume a directory. The certificates, SCRAM passwords and keys are
``ops/make-secrets.sh``'s, the users and ACLs ``hub acls --apply``'s, made
by the set-up job's own command line. What the tests prove of this cluster
they prove of the compose file."""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import compose
from confluent_kafka.admin import AdminClient

from hub.kafka.broker import die_with_parent, kafka_home, read_properties
from hub.settings import REPO_ROOT, Settings, load_settings
from tests.helpers import hub

# the binary itself: the package's wrapper script always exits 0
COMPOSE = Path(compose.__file__).parent / "docker-compose"
NODES = ("kafka-1", "kafka-2", "kafka-3")
SERVER_PROPERTIES = "/mnt/shared/config/server.properties"  # the image's file input
SECRETS = REPO_ROOT / "secrets"
HEAP_MB = 320


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: each socket stays bound until all are
    chosen, so the system cannot hand out one port twice (one port asked at
    a time once gave a node's client and controller listeners the same)."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.create_server(("127.0.0.1", 0))) for _ in range(count)]
        return [int(sock.getsockname()[1]) for sock in sockets]


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(COMPOSE), "-f", str(REPO_ROOT / "docker-compose.yml"), "config", "--format", "json"],
                          capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, env={**os.environ, **env})


def compose_stack() -> dict[str, Any]:
    result = compose_config()
    assert result.returncode == 0, result.stderr
    stack: dict[str, Any] = json.loads(result.stdout)
    return stack


def property_name(variable: str) -> str:
    """KAFKA_LISTENER_NAME_CLIENTS_SSL__X___Y -> listener.name.clients.ssl_x-y
    (the apache/kafka image: "_" for ".", "__" for "_", "___" for "-")."""
    return variable.removeprefix("KAFKA_").lower().replace("___", "-").replace("__", "\0").replace("_", ".") \
        .replace("\0", "_")


def binds(service: dict[str, Any]) -> dict[str, str]:
    """A service's mounts: the path in the container -> the host's path or the volume's name."""
    return {v["target"]: v["source"] for v in service.get("volumes", [])}


def image_properties(service: dict[str, Any]) -> dict[str, str]:
    """The broker configuration the apache/kafka image makes of a service:
    its mounted server.properties, its KAFKA_ variables over it."""
    properties = read_properties(Path(binds(service)[SERVER_PROPERTIES]))
    properties.update({property_name(k): v for k, v in service["environment"].items() if k.startswith("KAFKA_")})
    return properties


@dataclass
class Node:
    name: str
    properties: dict[str, str]
    home: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.home / "server.properties"

    @property
    def log(self) -> Path:
        return self.home / "broker.log"

    def listener(self, name: str) -> str:
        """HOST:PORT of one of its advertised listeners (CLIENTS, ADMIN)."""
        for listener in self.properties["advertised.listeners"].split(","):
            if listener.startswith(f"{name}://"):
                return listener.split("://", 1)[1]
        raise KeyError(name)


@dataclass
class SecuredCluster:
    """docker-compose.yml's three Kafka nodes, started from ``root``."""

    root: Path
    stack: dict[str, Any] = field(default_factory=compose_stack)
    nodes: dict[str, Node] = field(default_factory=dict)

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    # -- the stack's secrets and settings ------------------------------------
    def make_secrets(self) -> None:
        """ops/make-secrets.sh, the brokers' certificates naming 127.0.0.1 too (where they run here)."""
        made = subprocess.run([str(REPO_ROOT / "ops" / "make-secrets.sh")], capture_output=True, text=True,
                              timeout=300, env={**os.environ, "SECRETS_DIR": str(self.secrets),
                                                "HUB": f"{sys.executable} -m hub.cli", "TLS_EXTRA_HOSTS": ",127.0.0.1"})
        assert made.returncode == 0, made.stderr

    def _local(self, name: str, ports: dict[tuple[str, int], int]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in image_properties(self.stack["services"][name]).items():
            value = re.sub(r"\b(kafka-\d+):(\d+)", lambda m: f"127.0.0.1:{ports[(m[1], int(m[2]))]}", value)
            if key == "listeners":
                value = re.sub(r"://:(\d+)", lambda m: f"://127.0.0.1:{ports[(name, int(m[1]))]}", value)
            out[key] = self.host_path(name, value)
        return out

    def host_path(self, service: str, value: str) -> str:
        """A path in ``service``'s container as it is here: a file of the
        stack's secrets in this cluster's own, a volume a directory."""
        for target, source in binds(self.stack["services"][service]).items():
            if value == target or value.startswith(target + "/"):
                host = Path(source)
                host = self.secrets / host.relative_to(SECRETS) if host.is_relative_to(SECRETS) else \
                    host if host.is_absolute() else self.root / service / source
                return str(host) + value[len(target):]
        return value

    def configure(self) -> None:
        wanted = [(name, int(port)) for name in NODES
                  for port in re.findall(r"://:(\d+)", image_properties(self.stack["services"][name])["listeners"])]
        ports = dict(zip(wanted, free_ports(len(wanted)), strict=True))
        for name in NODES:
            node = Node(name, self._local(name, ports), self.root / name)
            node.home.mkdir(parents=True, exist_ok=True)
            node.config.write_text("".join(f"{k}={v}\n" for k, v in node.properties.items()), encoding="utf-8")
            self.nodes[name] = node

    # -- the nodes ----------------------------------------------------------
    def _java(self, *args: str, heap_mb: int) -> list[str]:
        return ["java", f"-Xmx{heap_mb}m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.root / 'log4j2.properties'}",
                "-cp", f"{kafka_home() / 'lib'}/*", *args]

    def format(self) -> None:
        cluster_id = self.stack["services"][NODES[0]]["environment"]["CLUSTER_ID"]
        (self.root / "log4j2.properties").write_text(
            "rootLogger.level = WARN\nrootLogger.appenderRef.out.ref = OUT\nappender.out.type = Console\n"
            "appender.out.name = OUT\nappender.out.layout.type = PatternLayout\n"
            "appender.out.layout.pattern = [%d] %p %m (%c)%n\n")
        for node in self.nodes.values():
            done = subprocess.run(self._java("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                                             f"--config={node.config}", "--ignore-formatted", heap_mb=256),
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stdout + done.stderr

    def start(self, name: str) -> None:
        node = self.nodes[name]
        with open(node.log, "ab") as out:
            node.process = subprocess.Popen(self._java("kafka.Kafka", str(node.config), heap_mb=HEAP_MB),
                                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            preexec_fn=die_with_parent)

    def kill(self, name: str) -> None:
        process = self.nodes[name].process
        assert process is not None
        process.kill()
        process.wait()

    def pause(self, name: str) -> None:
        process = self.nodes[name].process
        assert process is not None
        os.kill(process.pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        process = self.nodes[name].process
        assert process is not None
        os.kill(process.pid, signal.SIGCONT)

    def stop(self) -> None:
        for node in self.nodes.values():
            if node.process is not None and node.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.process.pid, signal.SIGCONT)
                node.process.terminate()
        for node in self.nodes.values():
            if node.process is not None:
                try:
                    node.process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()

    def wait_until_up(self, brokers: int = 3, timeout_s: float = 180) -> None:
        """Until the admin sees ``brokers`` brokers and a quorum leader."""
        client = AdminClient(self.admin_client())
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(Exception):
                if len(client.list_topics(timeout=5).brokers) >= brokers:
                    return
            for node in self.nodes.values():
                if node.process is not None and node.process.poll() is not None:
                    raise RuntimeError(f"{node.name} exited ({node.process.returncode}):\n"
                                       + node.log.read_text(errors="replace")[-3000:])
            if time.monotonic() > deadline:
                raise TimeoutError(f"{brokers} brokers did not answer within {timeout_s}s")
            time.sleep(0.5)

    def controller_leader(self) -> str:
        """The node that leads the controller quorum now."""
        ran = subprocess.run(self._java("org.apache.kafka.tools.MetadataQuorumCommand", "--bootstrap-controller",
                                        ",".join(self.controllers()), "--command-config",
                                        str(self._admin_properties()), "describe", "--status", heap_mb=256),
                             capture_output=True, text=True, timeout=120)
        leader = re.search(r"LeaderId:\s+(\d+)", ran.stdout)
        assert leader, ran.stdout + ran.stderr
        return NODES[int(leader[1]) - 1]

    def controllers(self) -> list[str]:
        out = []
        for node in self.nodes.values():
            listener = next(one for one in node.properties["listeners"].split(",") if one.startswith("CONTROLLER://"))
            out.append(listener.split("://", 1)[1])
        return out

    def _admin_properties(self) -> Path:
        path = self.root / "admin-client.properties"
        path.write_text(f"security.protocol=SSL\nssl.keystore.type=PEM\n"
                        f"ssl.keystore.location={self.secrets / 'tls' / 'hub-admin.keystore.pem'}\n"
                        f"ssl.truststore.type=PEM\nssl.truststore.location={self.secrets / 'tls' / 'ca.pem'}\n")
        return path

    # -- clients ------------------------------------------------------------
    def bootstrap(self, listener: str = "CLIENTS", nodes: tuple[str, ...] = NODES) -> str:
        return ",".join(self.nodes[n].listener(listener) for n in nodes)

    def _tls(self, certificate: str | None = None) -> dict[str, str]:
        config = {"security.protocol": "SSL", "ssl.ca.location": str(self.secrets / "tls" / "ca.pem")}
        if certificate:
            config.update({"ssl.certificate.location": str(self.secrets / "tls" / f"{certificate}.pem"),
                           "ssl.key.location": str(self.secrets / "tls" / f"{certificate}.key")})
        return config

    def env(self, principal: str) -> dict[str, str]:
        """The environment compose gives a hub service of ``principal``
        (SCRAM over TLS), or the set-up job's (``hub-admin``, mutual TLS)."""
        common = {"HUB_REPLICATION_FACTOR": "3", "HUB_KAFKA_SSL_CA_FILE": str(self.secrets / "tls" / "ca.pem"),
                  "HUB_TRUST_FILE": str(self.secrets / "trust.json"), "HUB_KEYS_DIR": str(self.secrets / "keys"),
                  "HUB_PII_KEY_FILE": str(self.secrets / "pii-key"), "HUB_STATE_DIR": str(self.root / "state")}
        if principal == "hub-admin":
            return {**common, "HUB_BROKER_URL": self.bootstrap("ADMIN"), "HUB_KAFKA_SECURITY_PROTOCOL": "SSL",
                    "HUB_KAFKA_SSL_CERT_FILE": str(self.secrets / "tls" / "hub-admin.pem"),
                    "HUB_KAFKA_SSL_KEY_FILE": str(self.secrets / "tls" / "hub-admin.key")}
        return {**common, "HUB_BROKER_URL": self.bootstrap(), "HUB_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "HUB_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "HUB_KAFKA_SASL_USERNAME": principal,
                "HUB_KAFKA_SASL_PASSWORD_FILE": str(self.secrets / "scram" / principal)}

    def settings(self, principal: str, **overrides: Any) -> Settings:
        return load_settings(environ=self.env(principal)).with_overrides(**overrides)

    def client(self, principal: str | None, password: str | None = None, **extra: str) -> dict[str, str]:
        """librdkafka settings for ``principal`` on the CLIENTS listener (its
        own password unless another is given); None: TLS, no SASL."""
        config = {"bootstrap.servers": self.bootstrap(), **self._tls(), "log_level": "0", **extra}
        if principal is not None:
            secret = password if password is not None else \
                (self.secrets / "scram" / principal).read_text().strip()
            config.update({"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512",
                           "sasl.username": principal, "sasl.password": secret})
        return config

    def admin_client(self, certificate: str = "hub-admin", **extra: str) -> dict[str, str]:
        """librdkafka settings for the ADMIN listener (mutual TLS) with ``certificate``'s files."""
        return {"bootstrap.servers": self.bootstrap("ADMIN"), **self._tls(certificate), "log_level": "0", **extra}


@contextlib.contextmanager
def secured_cluster(root: Path) -> Iterator[SecuredCluster]:
    """The cluster up, with its secrets, topics, SCRAM users and ACLs, as
    compose's set-up job leaves it."""
    cluster = SecuredCluster(root)
    cluster.make_secrets()
    cluster.configure()
    cluster.format()
    try:
        for name in NODES:
            cluster.start(name)
        cluster.wait_until_up()
        setup = cluster.stack["services"]["setup"]["entrypoint"][-1]
        for command in setup.split(" && "):
            args = [cluster.host_path("setup", arg) for arg in command.split()[1:]]
            # the set-up job has no PII key
            ran = hub(*args, cwd=root, env={**cluster.env("hub-admin"), "HUB_PII_KEY_FILE": ""})
            assert ran.returncode == 0, f"{command}: {ran.stdout}{ran.stderr}"
        yield cluster
    finally:
        cluster.stop()
