"""The broker a command talks to: a configured Kafka cluster, or the embedded
Apache Kafka.

The embedded broker is a single-node KRaft Apache Kafka (broker and
controller in one JVM) on loopback. Its log directory lies under the state
directory (``<state_dir>/kafka``), so what it holds survives a stop, a
``kill -9`` and a reboot. The JARs come from Maven Central through
``setup.sh`` (``ops/kafka/pom.xml``, into ``.kafka/lib``).

One broker per state directory: whoever starts it holds an exclusive lock
(shared with the JVM, so the lock lasts as long as either lives) and records
its address beside the data. With no ``broker_url`` configured, a command
uses the broker that is running on its state directory (waiting for it to
answer, then failing: it never publishes elsewhere), or else starts one on
that same directory for its own lifetime.
"""
from __future__ import annotations

import base64
import contextlib
import ctypes
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from collections.abc import Iterator

from hub.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
NODE_ID = 1
# Kafka's graceful stop of one node takes a second or two; a log recovery on
# the next start after a kill takes longer.
STOP_GRACE_S = 60.0
START_TIMEOUT_S = 120.0
BROKER_LOG_ROTATE_BYTES = 10 * 1024 * 1024


class BrokerError(RuntimeError):
    """The embedded broker cannot start or be reached; the message says why and what to do."""


def kafka_home() -> Path:
    """Where setup.sh put the broker's JARs (``$HUB_KAFKA_HOME``, else ``.kafka`` of the checkout)."""
    return Path(os.environ.get("HUB_KAFKA_HOME") or REPO_ROOT / ".kafka")


def kafka_version() -> str:
    jars = sorted((kafka_home() / "lib").glob("kafka_2.13-*.jar"))
    return jars[-1].stem.removeprefix("kafka_2.13-") if jars else "missing"


def _java() -> str:
    java = str(Path(os.environ["JAVA_HOME"]) / "bin" / "java") if os.environ.get("JAVA_HOME") else shutil.which("java")
    if not java or not Path(java).exists():
        raise BrokerError("no Java found: the embedded Apache Kafka needs Java 17 or later (run ./setup.sh, "
                          "or install openjdk-17-jre-headless)")
    return java


def embedded_dir(settings: Settings) -> Path:
    """The embedded broker's home under the state directory: its log directory, lock and address."""
    return settings.state_dir / "kafka"


def die_with_parent() -> None:
    """Runs in the child: the kernel sends SIGTERM to the JVM when the hub dies,
    so even a SIGKILLed hub leaves no orphan broker (SIGTERM is Kafka's
    graceful stop: its data is flushed)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def answers(bootstrap: str, timeout_s: float) -> bool:
    """Whether a Kafka metadata request to ``bootstrap`` succeeds within ``timeout_s``."""
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=timeout_s)
        return True
    except Exception:  # KafkaException while the port is not up yet
        return False


def answers_within(bootstrap: str, timeout_s: float) -> bool:
    """Whether a Kafka metadata request to ``bootstrap`` succeeds within ``timeout_s``, asked again until then."""
    deadline = time.monotonic() + timeout_s
    while not answers(bootstrap, min(2.0, max(0.1, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _cluster_id() -> str:
    """A KRaft cluster ID: a UUID in URL-safe base64, as ``kafka-storage random-uuid`` prints it
    (it may begin with "-": it is passed as ``--cluster-id=ID``)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def read_properties(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class Running:
    """An embedded broker that a live process keeps up on a state directory."""

    bootstrap: str
    pid: int


def running_broker(data_dir: Path) -> Running | None:
    """The embedded broker running on ``data_dir``, if a process holds its
    lock; None when nobody does (a record left by a killed one is stale)."""
    lock_path = data_dir / "broker.lock"
    if not lock_path.exists():
        return None
    with open(lock_path, "a+") as probe:
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            return None  # closing the probe releases it
    deadline = time.monotonic() + 10  # the record is written once the starting broker answers
    while True:
        try:
            info = json.loads((data_dir / "broker.json").read_text())
            return Running(str(info["bootstrap"]), int(info["pid"]))
        except (OSError, ValueError, KeyError):
            if time.monotonic() > deadline:
                return Running("(starting)", 0)
            time.sleep(0.1)


@dataclass
class EmbeddedBroker:
    """A single-node KRaft Apache Kafka on loopback whose data lives in
    ``data_dir``; a context manager that always stops it (gracefully)."""

    data_dir: Path
    port: int = 0  # 0: the port it had last time, if free, else any free one
    # Where clients are told to connect, HOST:PORT, when not straight to the
    # port: a TLS terminator in front of it (the TLS test), a proxy.
    advertised: str | None = None
    heap_mb: int = 512
    # Topic-level defaults on the broker, e.g. a short cleaner back-off for a test.
    extra_config: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _lock: IO[str] | None = None

    @property
    def bootstrap(self) -> str:
        return self.advertised or f"127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def disk_bytes(self) -> int:
        """What the log directory takes on disk: blocks in use, not file
        sizes (Kafka preallocates every index file sparse, 10 MiB each)."""
        return disk_bytes(self.log_dir)

    # -- start -----------------------------------------------------------
    def start(self) -> EmbeddedBroker:
        lib = kafka_home() / "lib"
        if not list(lib.glob("kafka_2.13-*.jar")):
            raise BrokerError(f"Apache Kafka is not installed in {lib}: run ./setup.sh")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            controller_port = self._choose_ports()
            self._format_once()
            config = self.data_dir / "server.properties"
            config.write_text(self._server_properties(controller_port), encoding="utf-8")
            self._rotate_log()
            logging_config = self.data_dir / "log4j2.properties"
            logging_config.write_text(_LOG4J2, encoding="utf-8")
            assert self._lock is not None
            with open(self.log_file, "ab") as out:
                self.process = subprocess.Popen(
                    [_java(), f"-Xms{min(128, self.heap_mb)}m", f"-Xmx{self.heap_mb}m", "-XX:+UseG1GC",
                     "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
                     f"-Dlog4j2.configurationFile={logging_config}", "-cp", f"{lib}/*", "kafka.Kafka", str(config)],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    preexec_fn=die_with_parent, pass_fds=(self._lock.fileno(),))
            self._wait_until_up()
            (self.data_dir / "broker.json").write_text(json.dumps(
                {"bootstrap": self.bootstrap, "pid": os.getpid(), "broker_pid": self.process.pid}))
        except BaseException:
            self.stop()
            raise
        log.info("embedded Apache Kafka up at %s (pid %s), data in %s", self.bootstrap, self.process.pid,
                 self.log_dir)
        return self

    def _take_lock(self) -> None:
        if self._lock is not None:  # restarted by its owner (after a kill): the lock is ours still
            return
        lock = open(self.data_dir / "broker.lock", "a+")  # noqa: SIM115 (held open: the lock lasts as long as the file)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            running = running_broker(self.data_dir)
            where = f"at {running.bootstrap}, process {running.pid}" if running else "by another process"
            raise BrokerError(f"an embedded broker already runs on {self.data_dir} ({where}); "
                              "stop it first, or use it (commands on this state directory do)") from None
        self._lock = lock

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()

    def _choose_ports(self) -> int:
        """The client port (kept across restarts, so clients that were
        connected find it again) and the controller's."""
        previous: dict[str, int] = {}
        with contextlib.suppress(OSError, ValueError):
            previous = json.loads((self.data_dir / "ports.json").read_text())
        self._choose_client_port(previous)
        controller = self._controller_port(int(previous.get("controller_port", 0)))
        (self.data_dir / "ports.json").write_text(json.dumps({"port": self.port, "controller_port": controller}))
        return controller

    def _choose_client_port(self, previous: dict[str, int]) -> None:
        """The port asked for, which must be free; else the last one, if still free; else a free one."""
        if self.port:
            if not _port_free(self.port):
                raise BrokerError(f"port {self.port} on 127.0.0.1 is taken by another program: "
                                  "choose another (--port) or stop that program")
            return
        last = int(previous.get("port", 0))
        self.port = last if last and _port_free(last) else free_port()

    def _controller_port(self, last: int) -> int:
        """The controller's last port, if still free and not the client's; else a free one."""
        controller = last if last and last != self.port and _port_free(last) else free_port()
        while controller == self.port:
            controller = free_port()
        return controller

    def _format_once(self) -> None:
        """Format the log directory the first time; afterwards, check it is
        this broker's. Never reformats: a foreign or damaged directory is
        refused, so no data is silently replaced."""
        recorded = self.data_dir / "cluster.id"
        meta = self.log_dir / "meta.properties"
        if meta.exists():
            self._check_ours(meta, recorded)
            return
        if recorded.exists() or (self.log_dir.exists() and any(self.log_dir.iterdir())):
            raise BrokerError(f"{self.log_dir} has no meta.properties but holds data or was formatted before: "
                              "it is damaged or not a Kafka log directory; refused, not reformatted "
                              "(move it away to start afresh)")
        self._format(recorded)

    def _check_ours(self, meta: Path, recorded: Path) -> None:
        """A formatted log directory is this broker's: its cluster and node."""
        try:
            found = read_properties(meta)
        except (OSError, UnicodeDecodeError) as exc:
            raise BrokerError(f"{meta} is unreadable ({exc}): the log directory is damaged; "
                              "move it away to start afresh") from exc
        ours = recorded.read_text().strip() if recorded.exists() else None
        if found.get("cluster.id") != ours or found.get("node.id") != str(NODE_ID):
            raise BrokerError(
                f"{self.log_dir} belongs to another cluster (cluster.id {found.get('cluster.id')!r}, node.id "
                f"{found.get('node.id')!r}; this state directory's is {ours!r}, node {NODE_ID}): refused, "
                "not reformatted; point HUB_STATE_DIR elsewhere or move that directory away")

    def _format(self, recorded: Path) -> None:
        """Format the log directory as a new cluster's, and record its ID in ``recorded``."""
        cluster = _cluster_id()
        config = self.data_dir / "format.properties"
        config.write_text(self._server_properties(free_port()), encoding="utf-8")
        done = subprocess.run([_java(), "-Xmx256m", "-cp", f"{kafka_home() / 'lib'}/*", "kafka.tools.StorageTool",
                               "format", f"--cluster-id={cluster}", f"--config={config}"],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        config.unlink()
        if done.returncode != 0:
            raise BrokerError(f"formatting {self.log_dir} failed: {(done.stdout + done.stderr).strip()[-2000:]}")
        recorded.write_text(cluster + "\n")

    def _server_properties(self, controller_port: int) -> str:
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(NODE_ID),
            "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dir),
            # `hub topics create` makes every topic with its partitions and policy
            "auto.create.topics.enable": "false",
            # one node: the internal topics have one replica
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # fewer internal partitions than a cluster's 50: a first group
            # join on a fresh broker waits for all of them to load
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.num.partitions": "8",
            # a single node has nobody else to wait for before the first rebalance
            "group.initial.rebalance.delay.ms": "0",
            # After a kill the controller holds the node's registration until
            # its session ends (9 s by default) before the restarted node may
            # serve: measured 11.8 s to restart after kill -9, 2.5 s after a stop.
            "broker.session.timeout.ms": "3000",
            "broker.heartbeat.interval.ms": "1000",
            **self.extra_config,
        }
        return "".join(f"{k}={v}\n" for k, v in settings.items())

    def _rotate_log(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.log_file.stat().st_size > BROKER_LOG_ROTATE_BYTES:
                self.log_file.replace(self.log_file.with_suffix(".log.1"))

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not answers(f"127.0.0.1:{self.port}", 1.0):
            status = self.exited(0.1)
            if status is not None:
                raise BrokerError(f"the embedded broker exited at start (status {status}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise BrokerError(f"the embedded broker did not answer within {START_TIMEOUT_S:g} s; "
                                  f"see {self.log_file}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no broker log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- while it runs, and stop -------------------------------------------
    def exited(self, timeout_s: float) -> int | None:
        """Wait up to ``timeout_s`` for the JVM to end by itself: its exit status, or None while it runs."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL the JVM (a crash test); ``start()`` brings it back on the same data and port."""
        proc, self.process = self.process, None
        if proc is not None:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        """A graceful stop (Kafka's own on SIGTERM: logs flushed, a clean
        shutdown marker written), SIGKILL if it takes beyond ``STOP_GRACE_S``."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                log.warning("the embedded broker did not stop within %g s: killed", STOP_GRACE_S)
                proc.kill()
                proc.wait()
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / "broker.json").unlink()
        self._release_lock()

    def __enter__(self) -> EmbeddedBroker:
        return self if self.process else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_LOG4J2 = """\
# Written by hub.kafka.broker at each start: warnings and errors to the broker's log.
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = OUT
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
# when it started and stopped, for the operator reading the log
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""


def disk_bytes(folder: Path, pattern: str = "*") -> int:
    """The disk blocks the files under ``folder`` (matching ``pattern``) use."""
    return sum(p.stat().st_blocks * 512 for p in folder.rglob(pattern) if p.is_file())


def format_bytes(n: int) -> str:
    """1536 -> "1.5 KiB"."""
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _check_answers(running: Running, data_dir: Path, bound: float) -> None:
    """The embedded broker running on ``data_dir`` answers within ``bound`` seconds."""
    if running.bootstrap == "(starting)" or not answers_within(running.bootstrap, bound):
        raise BrokerError(f"the embedded broker running on {data_dir} (process {running.pid}, "
                          f"{running.bootstrap}) did not answer within {bound:g} s "
                          "(HUB_BROKER_WAIT_S); nothing was sent elsewhere")


@contextlib.contextmanager
def broker_for(settings: Settings) -> Iterator[tuple[Settings, bool]]:
    """Yield settings with ``broker_url`` set, and whether this call started
    the embedded broker itself (its topics then have to be created).

    Configured: that cluster. Otherwise the embedded broker running on the
    state directory, which must answer within ``broker_wait_s`` or this
    fails, naming it: a command never publishes to
    another broker meanwhile. Only when none runs does it start one, on the
    same state directory (the same data), for its own lifetime."""
    if not settings.embedded:
        yield settings, False
        return
    data_dir = embedded_dir(settings)
    for _ in range(2):  # a second round when another process started one between the look and the start
        running = running_broker(data_dir)
        if running is not None:
            _check_answers(running, data_dir, settings.broker_wait_s)
            yield settings.on_embedded(running.bootstrap), False
            return
        broker = EmbeddedBroker(data_dir)
        try:
            broker.start()
        except BrokerError:
            if running_broker(data_dir) is None:
                raise
            continue
        log.warning("no `hub broker` running on %s: the embedded broker runs for this command only "
                    "(its data stays in %s)", settings.state_dir, broker.log_dir)
        with broker:
            yield settings.on_embedded(broker.bootstrap), True
        return
    raise BrokerError(f"could neither start nor reach the embedded broker on {data_dir}")

