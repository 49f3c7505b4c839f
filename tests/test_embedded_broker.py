"""The embedded Apache Kafka: its data survives a stop and a kill, one broker
per state directory, clear refusals (a taken port, another cluster's or a
damaged log directory), no command that publishes elsewhere while it does
not answer, and compaction that really compacts."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Producer
from confluent_kafka.admin import ConfigResource

from hub.kafka.broker import BrokerError, EmbeddedBroker, running_broker
from hub.devtools.samples import write_scenario
from hub.kafka.clients import KafkaClients
from hub.settings import load_settings
from hub.kafka.topics import changelog_topic, create_topics, list_topics, read_to_end
from hub.flow.topics import LEADS_TOPIC, events_topic
from hub.domain.events import Agency
from tests.helpers import hub, start_hub_broker, wait_for

pytestmark = pytest.mark.broker


def _alive(pid: int) -> bool:
    """Whether any thread of ``pid`` still runs. Its main thread may be a
    zombie while the JVM's other threads shut down and hold its files open
    (the broker's lock among them): the process is dead only when all are."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return False
    for task in tasks:
        try:
            if (task / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                return True
        except FileNotFoundError:
            continue  # that thread has just ended
    return False


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=90)
    return out


def _police_events(cwd: Path) -> int:
    settings = load_settings(environ={}).on_embedded(
        json.loads((cwd / ".hub-state" / "kafka" / "broker.json").read_text())["bootstrap"])
    with KafkaClients(settings) as clients:
        return len(read_to_end(clients, events_topic(Agency.POLICE)))


def test_hub_broker_keeps_every_record_across_a_stop_and_a_kill(tmp_path: Path) -> None:
    files = write_scenario(tmp_path / "data")
    proc, record = start_hub_broker(tmp_path)
    try:
        run = hub("connector", "run", "police.case", "--path", str(files["police.case"]), cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert "runs for this command only" not in run.stderr  # it used the running broker
        assert _police_events(tmp_path) == 2
    finally:
        said = _stop(proc)
    assert "data kept in" in said
    assert not _alive(int(record["broker_pid"]))
    assert running_broker(tmp_path / ".hub-state" / "kafka") is None

    proc, record = start_hub_broker(tmp_path)
    assert _police_events(tmp_path) == 2  # the graceful stop kept them
    again = hub("connector", "run", "police.case", "--path", str(files["police.case"]), cwd=tmp_path)
    assert "2 rows already delivered" in again.stdout, again.stdout  # the cursors too
    os.kill(int(record["broker_pid"]), signal.SIGKILL)
    assert proc.wait(timeout=30) == 1
    assert "exited by itself" in (proc.stderr.read() if proc.stderr else "")

    proc, record = start_hub_broker(tmp_path)  # the same log directory, after a kill
    try:
        assert _police_events(tmp_path) == 2
    finally:
        _stop(proc)


def test_a_second_broker_on_the_same_state_directory_is_refused(tmp_path: Path) -> None:
    proc, record = start_hub_broker(tmp_path)
    try:
        cluster = (tmp_path / ".hub-state" / "kafka" / "cluster.id").read_text()
        second = hub("broker", cwd=tmp_path, timeout=60)
        assert second.returncode == 1
        assert "already runs on .hub-state/kafka" in second.stderr
        assert f"at {record['bootstrap']}, process {record['pid']}" in second.stderr
        assert (tmp_path / ".hub-state" / "kafka" / "cluster.id").read_text() == cluster
        assert json.loads((tmp_path / ".hub-state" / "kafka" / "broker.json").read_text()) == record
        assert proc.poll() is None and _police_events(tmp_path) == 0  # the first one answers still
    finally:
        _stop(proc)


def test_a_taken_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = hub("broker", "--port", str(port), cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken" in result.stderr


def test_another_clusters_or_a_damaged_log_directory_is_refused_never_reformatted(tmp_path: Path) -> None:
    with EmbeddedBroker(tmp_path / "a"):
        pass
    with EmbeddedBroker(tmp_path / "b"):
        pass
    meta = tmp_path / "a" / "log" / "meta.properties"
    shutil.copy(tmp_path / "b" / "log" / "meta.properties", meta)
    before = meta.read_text()
    with pytest.raises(BrokerError, match="belongs to another cluster"):
        EmbeddedBroker(tmp_path / "a").start()
    assert meta.read_text() == before

    meta.unlink()
    kept = sorted(p.name for p in (tmp_path / "a" / "log").iterdir())
    with pytest.raises(BrokerError, match="damaged or not a Kafka log directory"):
        EmbeddedBroker(tmp_path / "a").start()
    assert sorted(p.name for p in (tmp_path / "a" / "log").iterdir()) == kept and not meta.exists()
    assert running_broker(tmp_path / "a") is None  # the refusal let go of the lock


def test_a_killed_hub_broker_leaves_no_orphan_jvm(tmp_path: Path) -> None:
    proc, record = start_hub_broker(tmp_path)
    jvm = int(record["broker_pid"])
    proc.kill()
    proc.wait()
    wait_for("the JVM to end with its parent", lambda: not _alive(jvm), timeout=60)
    assert running_broker(tmp_path / ".hub-state" / "kafka") is None


def test_a_command_waits_for_an_unanswering_broker_then_fails_and_publishes_nowhere_else(tmp_path: Path) -> None:
    """Issue 30: a connector started while the broker is paused used to
    publish to a throwaway broker of its own and report success."""
    files = write_scenario(tmp_path / "data")
    proc, record = start_hub_broker(tmp_path)
    jvm = int(record["broker_pid"])
    try:
        os.kill(jvm, signal.SIGSTOP)
        started = time.monotonic()
        run = hub("connector", "run", "police.case", "--path", str(files["police.case"]), cwd=tmp_path,
                  env={"HUB_BROKER_WAIT_S": "3"})
        waited = time.monotonic() - started
        assert run.returncode == 1, run.stdout + run.stderr
        assert f"({'process'} {record['pid']}, {record['bootstrap']}) did not answer within 3 s" in run.stderr
        assert "nothing was sent elsewhere" in run.stderr and "events published" not in run.stdout
        assert waited >= 3
        # the one broker of the state directory: no other was started meanwhile
        assert [p.name for p in (tmp_path / ".hub-state").iterdir() if p.name != "keys"] == ["kafka"]
    finally:
        os.kill(jvm, signal.SIGCONT)
    try:
        assert _police_events(tmp_path) == 0
        run = hub("connector", "run", "police.case", "--path", str(files["police.case"]), cwd=tmp_path)
        assert run.returncode == 0 and _police_events(tmp_path) == 2
    finally:
        _stop(proc)


def test_a_changelogs_superseded_values_are_compacted_away(tmp_path: Path) -> None:
    """State topics are compacted on the broker: once the cleaner has run,
    only the latest value of a key is left of a rolled segment."""
    # the cleaner cleans again whatever share of the log is dirty: its first pass may leave some (a loaded
    # machine), and the test waits for what it asserts rather than for the first pass
    broker = EmbeddedBroker(tmp_path / "kafka", extra_config={"log.cleaner.backoff.ms": "200",
                                                              "log.cleaner.min.cleanable.ratio": "0.01"})
    with broker, KafkaClients(load_settings(environ={}).on_embedded(broker.bootstrap,
                                                                     compacted_segment_ms=100)) as clients:
        create_topics(clients)
        topic = changelog_topic(clients.settings)
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        for version in range(30):
            producer.produce(topic, f"v{version}".encode(), b"business-1", partition=0)
            producer.produce(topic, f"w{version}".encode(), b"business-2", partition=0)
            producer.flush()
            time.sleep(0.02)  # several segments roll (segment.ms 100)
        time.sleep(0.2)
        producer.produce(topic, b"x", b"business-3", partition=0)  # rolls the segment holding the last values
        producer.flush()
        read: list[list[tuple[bytes, bytes]]] = []

        def compacted() -> list[tuple[bytes, bytes]] | None:
            read.append([(m.key(), m.value()) for m in read_to_end(clients, topic, partitions=[0])])
            return read[-1] if len(read[-1]) <= 10 else None  # the superseded values gone, not merely fewer

        try:
            left = wait_for("the log cleaner", compacted, timeout=120)
        except AssertionError:
            raise AssertionError(f"61 values written, still {len(read[-1])} after 120 s: {read[-1]}") from None
        latest = dict(left)
        assert latest == {b"business-1": b"v29", b"business-2": b"w29", b"business-3": b"x"}


def test_the_broker_stamps_every_hub_record_with_its_own_clock(broker: EmbeddedBroker) -> None:
    """The replay check reads the broker's time (LogAppendTime): a producer
    cannot set it, whatever time it claims."""
    clients = KafkaClients(load_settings(environ={}).on_embedded(broker.bootstrap))
    create_topics(clients)
    client = clients.admin()  # the clients' one admin, kept: its futures fail once it is gone
    described = client.describe_configs(
        [ConfigResource(ConfigResource.Type.TOPIC, name) for name in list_topics(clients)])
    stamps = {resource.name: future.result()["message.timestamp.type"].value for resource, future in described.items()}
    assert set(stamps.values()) == {"LogAppendTime"}, stamps
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce(LEADS_TOPIC, b"a lead", b"lead-1", timestamp=1_000)  # a copy claiming a 1970 stamp
    producer.flush()
    [message] = read_to_end(clients, LEADS_TOPIC, last=1)
    clients.close()
    kind, stamp = message.timestamp()
    assert kind == TIMESTAMP_LOG_APPEND_TIME and abs(stamp / 1000 - time.time()) < 120


def test_a_full_disk_stops_the_broker_and_loses_nothing_it_acknowledged(tmp_path: Path) -> None:
    """The log directory on a 40 MiB tmpfs (CI runs as root, as set-up does),
    written until it is full: the broker stops (Kafka halts when its only
    log directory fails); given room and started again, every record it had
    acknowledged is there."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(disk)], check=True)
    broker = EmbeddedBroker(disk / "kafka")
    try:
        broker.start()
        clients = KafkaClients(load_settings(environ={}).on_embedded(broker.bootstrap))
        create_topics(clients)
        acknowledged: list[bytes] = []
        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5,
                             "message.timeout.ms": 10_000, "log_level": 0})
        topic = events_topic(Agency.SAMR)
        sent = 0
        while broker.exited(0) is None and sent < 200_000:  # 400 MB: ten times the disk
            try:
                producer.produce(topic, os.urandom(2000), str(sent).encode(),
                                 on_delivery=lambda err, msg: err or acknowledged.append(msg.value()))
                sent += 1
            except BufferError:
                producer.poll(0.1)
        producer.flush(15)
        assert broker.exited(60) not in (None, 0), "the broker went on with a full disk"
        assert 0 < len(acknowledged) < sent
        subprocess.run(["mount", "-o", "remount,size=200m", str(disk)], check=True)
        broker.start()
        kept = {m.value() for m in read_to_end(clients, topic)}
        clients.close()
        assert all(value in kept for value in acknowledged)
    finally:
        broker.stop()
        subprocess.run(["umount", "-l", str(disk)], check=False)
