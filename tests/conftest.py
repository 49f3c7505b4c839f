from __future__ import annotations

from pathlib import Path
from collections.abc import Callable, Iterator

import pytest

from hub.kafka.broker import EmbeddedBroker
from hub.domain.pii import PersonalDataHasher
from hub.kafka.clients import KafkaClients
from hub.settings import Settings, load_settings
from hub.kafka.topics import create_topics
from hub.trust import ensure_keys
from tests.registry import Registry, serve

TEST_PII_KEY = "test-pii-key"


@pytest.fixture
def hasher() -> PersonalDataHasher:
    return PersonalDataHasher(TEST_PII_KEY)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A fresh embedded Apache Kafka per test module, on a log directory of its own."""
    with EmbeddedBroker(tmp_path_factory.mktemp("kafka")).start() as running:
        yield running


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    """Settings on the module's broker, with topics under a per-test prefix-free
    namespace: each test gets fresh topics by using a fresh app id and files."""
    s = load_settings(environ={}).on_embedded(broker.bootstrap, state_dir=tmp_path / "state",
                                              pii_key=TEST_PII_KEY, metrics_port=0)
    with KafkaClients(s) as clients:
        create_topics(clients)
    ensure_keys(s)  # before any process of the test starts: they share the keys
    return s


@pytest.fixture
def clients(settings: Settings) -> Iterator[KafkaClients]:
    """The test's Kafka clients on the module's broker, made once from
    ``settings`` and handed to whatever the test calls; closed after it."""
    with KafkaClients(settings) as made:
        yield made


@pytest.fixture
def make_clients() -> Iterator[Callable[[Settings], KafkaClients]]:
    """Makes the Kafka clients of a test that builds settings of its own (an
    app ID, a broker of its own): one per settings it is given, closed after
    the test."""
    made: list[KafkaClients] = []

    def make(settings: Settings) -> KafkaClients:
        made.append(KafkaClients(settings))
        return made[-1]

    yield make
    for clients in reversed(made):
        clients.close()


@pytest.fixture
def registry() -> Iterator[tuple[Registry, str]]:
    """A schema registry on loopback (see tests.registry) and its URL."""
    with serve() as running:
        yield running
