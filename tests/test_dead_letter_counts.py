"""What `hub status` and the 通报 count of a connector's rejects: each
rejected row once, however often it was sent (a connector killed mid-file
and run again sends its rejects again), and only what the connector it names
signed itself (issues 30 and 31)."""
from __future__ import annotations

import datetime as dt

import pytest

from connectors.runner import dead_letter
from hub.kafka.clients import KafkaClients
from hub.kafka.readers import dead_letters
from hub.kafka.serde import Serde
from hub.apps.status import collect
from hub.flow.topics import DEADLETTER_TOPIC
from hub.trust import Role, signer

pytestmark = pytest.mark.broker


def _send(clients: KafkaClients, letters: list[tuple[str, dict[str, object]]]) -> None:
    """Each letter signed by the connector named beside it."""
    settings = clients.settings
    encode = Serde(settings).encoder(DEADLETTER_TOPIC, "deadletter")
    producer = clients.producer()
    for by, letter in letters:
        value = encode(letter)
        key = str(letter["stage"]).encode()
        producer.produce(DEADLETTER_TOPIC, value, key,
                         headers=signer(settings, Role.CONNECTOR, by).headers(DEADLETTER_TOPIC, key, value))
    assert producer.flush(30) == 0


def test_a_row_sent_again_counts_once_and_only_under_the_connector_that_signed_it(clients: KafkaClients) -> None:
    bad_row = dead_letter("police.case", "invalid_business_id", "not a valid USCC", {"案件编号": "A1"},
                          "刑事案件.csv", 3, "涉案单位统一社会信用代码")
    rerun = {**bad_row, "failed_at": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)}
    another_row = {**bad_row, "source_row": 4, "original": {"案件编号": "A2"}}
    forged = dead_letter("police.case", "bad_date", "not a date", {}, "刑事案件.csv", 9, "受案时间")
    farm = dead_letter("agri.sampling", "bad_date", "not a date", {}, "农产品抽检.xlsx", 5, "抽样日期")
    _send(clients, [("police.case", bad_row), ("police.case", rerun), ("police.case", another_row),
                     ("agri.sampling", forged), ("agri.sampling", farm)])

    kept = dead_letters(clients)
    assert sorted((d["stage"], d["source_row"]) for d in kept) == [
        ("agri.sampling", 5), ("police.case", 3), ("police.case", 4)]
    status = collect(clients)
    assert status.dead_letters == {("police.case", "invalid_business_id"): 2, ("agri.sampling", "bad_date"): 1}
