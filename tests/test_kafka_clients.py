"""``KafkaClients``: a process's Kafka clients are made once and handed down,
not rebuilt from the settings by every helper (no broker: the clients are
counting fakes)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from hub.kafka import clients as clients_module
from hub.kafka.clients import KafkaClients
from hub.kafka.topics import (CATALOGUE, create_topics, event_ends, existing_topic, list_topics, partition_of,
                              read_to_end, source_topics, watermarks, worker_lag)
from hub.settings import Settings


@dataclass
class _Partition:
    leader: int = 1


@dataclass
class _Topic:
    partitions: dict[int, _Partition]
    error: Any = None


@dataclass
class _Metadata:
    topics: dict[str, _Topic]
    brokers: dict[int, Any] = field(default_factory=lambda: {1: object()})


def _metadata(more: set[str] | None = None, partitions: int = 4) -> _Metadata:
    names = {t.name for t in CATALOGUE} | (more or set())
    return _Metadata({name: _Topic({p: _Partition() for p in range(partitions)}) for name in names})


class _Done:
    def result(self, timeout: float | None = None) -> None:
        return None


class _Made:
    """What the fakes were made with, by kind."""

    def __init__(self) -> None:
        self.admins: list[FakeAdmin] = []
        self.consumers: list[FakeConsumer] = []
        self.producers: list[dict[str, Any]] = []
        self.topics: set[str] = set()  # those the admin created


class FakeAdmin:
    made: _Made

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.made.admins.append(self)

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> _Metadata:
        return _metadata(self.made.topics)

    def create_topics(self, new: list[Any], **_: Any) -> dict[str, _Done]:
        self.made.topics |= {t.topic for t in new}
        return {t.topic: _Done() for t in new}


class FakeConsumer:
    made: _Made

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.assigned: list[TopicPartition] = []
        self.closed = False
        self.made.consumers.append(self)

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> _Metadata:
        return _metadata()

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float = -1) -> tuple[int, int]:
        return 0, 0  # every partition empty: a read to the end reads nothing

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = list(partitions)

    def unassign(self) -> None:
        self.assigned = []

    def assignment(self) -> list[TopicPartition]:
        return self.assigned

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, 0) for tp in partitions]

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> _Made:
    """Every AdminClient, Consumer and Producer ``hub.kafka.clients`` makes, counted."""
    made = _Made()
    monkeypatch.setattr(FakeAdmin, "made", made, raising=False)
    monkeypatch.setattr(FakeConsumer, "made", made, raising=False)
    monkeypatch.setattr(clients_module, "AdminClient", FakeAdmin)
    monkeypatch.setattr(clients_module, "Consumer", FakeConsumer)
    monkeypatch.setattr(clients_module, "Producer", lambda config: made.producers.append(config) or config)
    return made


def test_the_admin_client_and_the_reader_are_made_once_and_the_same_each_time(made: _Made) -> None:
    clients = KafkaClients(Settings())
    assert made.admins == [] and made.consumers == []  # nothing connects until asked
    assert clients.admin() is clients.admin()
    with clients.reader() as first:
        pass
    with clients.reader() as second:
        pass
    assert first is second
    assert len(made.admins) == 1 and len(made.consumers) == 1
    assert made.consumers[0].config["group.id"] == "hub-reader"


def test_a_run_of_topic_and_reader_functions_makes_one_admin_and_one_reader(made: _Made) -> None:
    clients = KafkaClients(Settings())
    create_topics(clients)
    assert list_topics(clients)["hub.leads"] == 4
    partition_of(clients, "hub.leads", b"lead-1")
    for topic in ("hub.leads", "hub.deadletter", "hub.audit"):
        assert read_to_end(clients, topic) == []
    for _ in range(3):  # a wait loop's looks
        assert event_ends(clients) == {}
    assert len(made.admins) == 1
    assert len(made.consumers) == 1  # the shared reader, and no other
    assert made.producers == []


def test_the_reader_is_handed_back_with_nothing_assigned(made: _Made) -> None:
    clients = KafkaClients(Settings())
    with clients.reader() as consumer:
        consumer.assign([TopicPartition("hub.leads", 0, 0)])
    assert consumer.assignment() == []
    with pytest.raises(RuntimeError), clients.reader() as consumer:
        consumer.assign([TopicPartition("hub.leads", 1, 0)])
        raise RuntimeError("a read that failed")
    assert consumer.assignment() == []


def test_a_lag_loop_reuses_the_consumer_it_is_handed(made: _Made) -> None:
    clients = KafkaClients(Settings())
    ends = {TopicPartition(source_topics()[0], 0): 5}
    own = clients.consumer(clients.settings.app_id, {"enable.auto.commit": False})
    for _ in range(5):
        assert worker_lag(clients, ends, own) == {TopicPartition(source_topics()[0], 0, 0): 5}
    assert len(made.consumers) == 1 and not own.closed  # its owner closes it
    worker_lag(clients, ends)  # none handed in: one made for the call, and closed
    assert len(made.consumers) == 2 and made.consumers[1].closed
    assert made.consumers[1].config["group.id"] == clients.settings.app_id


def test_producers_and_group_consumers_are_made_on_request_with_the_connection(made: _Made) -> None:
    settings = Settings().with_overrides(broker_url="broker-1:9092")
    clients = KafkaClients(settings)
    hub = clients.producer({"linger.ms": 0})
    plain = clients.producer({"linger.ms": 20}, plain=True)
    group = clients.consumer("bench-plain", {"auto.offset.reset": "earliest"})
    assert hub["bootstrap.servers"] == plain["bootstrap.servers"] == group.config["bootstrap.servers"] == \
        "broker-1:9092"
    assert hub["linger.ms"] == 0 and hub["acks"] == "all" and hub["partitioner"] == "murmur2_random"
    assert plain == {**clients.client_config, "linger.ms": 20}
    assert group.config["group.id"] == "bench-plain"


def test_a_view_with_other_settings_shares_the_clients(made: _Made) -> None:
    clients = KafkaClients(Settings())
    other = clients.with_settings(clients.settings.with_overrides(app_id="hub-two"))
    assert other.settings.app_id == "hub-two" and other.admin() is clients.admin()
    with pytest.raises(ValueError):
        clients.with_settings(clients.settings.with_overrides(broker_url="elsewhere:9092"))


def test_close_closes_the_reader_and_ends_the_clients(made: _Made) -> None:
    with KafkaClients(Settings()) as clients:
        with clients.reader():
            pass
        clients.admin()
    assert made.consumers[0].closed
    clients.close()  # again: nothing more
    with pytest.raises(RuntimeError):
        clients.admin()


class _LaggingConsumer:
    """A consumer whose metadata has not yet caught up with a partition the
    broker has just listed (a broker resumed after a pause): the first
    ``lags`` asks fail with the local UNKNOWN_PARTITION."""

    def __init__(self, lags: int, fault: int = KafkaError._UNKNOWN_PARTITION) -> None:
        self.lags, self.fault, self.asked = lags, fault, 0

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float = -1) -> tuple[int, int]:
        self.asked += 1
        if self.asked <= self.lags:
            raise KafkaException(KafkaError(self.fault))
        return 3, 7


def test_a_partition_the_clients_metadata_has_not_caught_up_with_is_asked_again() -> None:
    """CI stop 37: a read just after the broker resumed failed on
    ``Local: Unknown partition`` for a partition the broker had listed."""
    consumer = _LaggingConsumer(lags=2)
    assert watermarks(consumer, TopicPartition("t", 0)) == (3, 7)  # type: ignore[arg-type]
    assert consumer.asked == 3


def test_a_fault_that_does_not_pass_is_not_asked_again() -> None:
    consumer = _LaggingConsumer(lags=1, fault=KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException):
        watermarks(consumer, TopicPartition("t", 0))  # type: ignore[arg-type]
    assert consumer.asked == 1


class _Listing:
    """A client whose topic listing fails ``fails`` times with a passing fault, then answers."""

    def __init__(self, topic: _Topic, fails: int = 0) -> None:
        self.topic, self.fails, self.asked = topic, fails, 0

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> _Metadata:
        self.asked += 1
        if self.asked <= self.fails:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        return _Metadata({str(topic): self.topic})


def test_a_topic_that_must_exist_is_asked_again_then_named_with_the_command_that_makes_it() -> None:
    client = _Listing(_Topic({0: _Partition(), 1: _Partition()}), fails=1)
    assert sorted(existing_topic(client, "hub.leads").partitions) == [0, 1]  # type: ignore[arg-type]
    assert client.asked == 2

    class _Missing:
        def str(self) -> str:
            return "Broker: Unknown topic or partition"

    with pytest.raises(RuntimeError, match=r"topic hub\.team\.x: Broker: Unknown topic or partition "
                                           r"\(run `hub topics create`\)"):
        existing_topic(_Listing(_Topic({}, error=_Missing())), "hub.team.x")  # type: ignore[arg-type]
