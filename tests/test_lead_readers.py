"""Attack on the lead topics' readers (the board, `hub leads`, the report):
a record a worker signed that this reader cannot decode (a newer contract
during a rolling upgrade, a torn body) is left out and logged by where it
sits; the records beside it are read, and the board keeps following."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME

from hub.apps import board as board_module
from hub.apps.board import LeadBoard, follow_into
from hub.flow.topics import LEADS_TOPIC
from hub.kafka.readers import LeadReader, SignedReader
from hub.kafka.serde import Serde
from hub.kafka.clients import KafkaClients
from hub.settings import Settings
from hub.trust import Role, signer
from tests.scenario import scenario_bus
from tests.test_board import TEAMS
from tests.test_lead_encoding import NOW


@pytest.fixture(scope="module")
def a_lead(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A complete lead record: the demo scenario's first."""
    bus = scenario_bus(tmp_path_factory.mktemp("scenario"), NOW)
    return next(iter(bus.leads.values()))


class _Message:
    def __init__(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, Any]], offset: int) -> None:
        self._topic, self._key, self._value, self._headers, self._offset = topic, key, value, headers, offset

    def topic(self) -> str:
        return self._topic

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, Any]]:
        return self._headers

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return TIMESTAMP_LOG_APPEND_TIME, int(time.time() * 1000)


def test_a_signed_but_undecodable_lead_is_left_out_and_the_next_one_read(tmp_path: Path, caplog,
                                                                          a_lead: dict[str, Any]) -> None:
    settings = Settings().with_overrides(keys_dir=str(tmp_path / "keys"), provision_keys=True, state_dir=tmp_path)
    worker = signer(settings, Role.WORKER, settings.worker_name)
    read = SignedReader(settings)
    lead = a_lead
    good = Serde(settings).encoder(LEADS_TOPIC, "lead")(lead)
    unknown_contract = b"\x00\x7f\xff\xff\xf0" + good[5:]  # a schema ID this reader has never seen
    torn = good[:40]
    out = []
    for offset, value in enumerate([unknown_contract, torn, good]):
        key = lead["lead_id"].encode()
        out.append(read(_Message(LEADS_TOPIC, key, value, worker.headers(LEADS_TOPIC, key, value), offset)))
    assert out[:2] == [None, None] and out[2] is not None and out[2]["lead_id"] == lead["lead_id"]
    left_out = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(left_out) == 2 and "unknown_schema" in left_out[0] and "@1" in left_out[1]


def test_the_board_follows_again_after_a_failure(monkeypatch: pytest.MonkeyPatch, a_lead: dict[str, Any]) -> None:
    team = next(iter(TEAMS.values()))
    calls = []

    def follow(clients: KafkaClients, topics: list[str], from_beginning: bool, stop: Any,
               read: Any) -> Iterator[tuple[str, dict]]:
        calls.append(from_beginning)
        if len(calls) == 1:
            raise ConnectionError("the broker went away")
        yield team.topic, {**a_lead, "status": "OPEN"}

    monkeypatch.setattr(board_module, "follow_topics", follow)
    board, stop = LeadBoard(TEAMS), threading.Event()
    thread = follow_into(board, KafkaClients(Settings()), stop, retry_s=(0.01, 0.01))
    deadline = time.monotonic() + 10
    while not board.open_leads(team.name) and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(5)
    assert [lead["lead_id"] for lead in board.open_leads(team.name)] == [a_lead["lead_id"]]
    assert calls[:2] == [True, True]  # from the beginning again: the board is rebuilt, not patched


def test_a_lead_record_not_newer_than_one_read_is_left_out_and_counted(tmp_path: Path, caplog,
                                                                       a_lead: dict[str, Any]) -> None:
    """Versions per lead and per topic: a replay (the same or an older
    version) is refused; records from before versions (0) are read in order
    until a versioned one comes, and none after it."""
    settings = Settings().with_overrides(keys_dir=str(tmp_path / "keys"), provision_keys=True, state_dir=tmp_path)
    worker = signer(settings, Role.WORKER, settings.worker_name)
    read = LeadReader(settings)
    encode = Serde(settings).encoder(LEADS_TOPIC, "lead")
    key = a_lead["lead_id"].encode()

    def record(topic: str, version: int, status: str, offset: int) -> dict[str, Any] | None:
        value = encode({**a_lead, "version": version, "status": status})
        return read(_Message(topic, key, value, worker.headers(topic, key, value), offset))

    team = "hub.team.samr-anyang"
    seen = [record(LEADS_TOPIC, 0, "OPEN", 0), record(LEADS_TOPIC, 0, "ACKNOWLEDGED", 1),
            record(LEADS_TOPIC, 5, "CLOSED", 2), record(LEADS_TOPIC, 0, "OPEN", 3), record(LEADS_TOPIC, 5, "CLOSED", 4),
            record(LEADS_TOPIC, 4, "OPEN", 5), record(team, 4, "OPEN", 0), record(LEADS_TOPIC, 6, "OPEN", 6)]
    assert [r and r["status"] for r in seen] == ["OPEN", "ACKNOWLEDGED", "CLOSED", None, None, None, "OPEN", "OPEN"]
    assert read.stale == 3
    assert [r.getMessage().split(":")[1].strip().split()[0] for r in caplog.records if "left out" in r.getMessage()] \
        == ["stale_version"] * 3
