"""Teams' status changes on leads, each onto the team's own feedback topic,
and clock ticks onto the clock topic; every record signed by its sender.

A feedback record is keyed by the lead's business key, so it lands in the
partition that holds the business's state (the same murmur2 partitioner as
the connectors and the workers' changelog).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from confluent_kafka import Producer

from hub.kafka.clients import KafkaClients
from hub.kafka.serde import Serde
from hub.flow.topics import feedback_topic
from hub.flow.topics import FEEDBACK_TOPIC
from hub.trust import Signer

TICK_KEY = b"\x00hub:tick"


def _at(epoch_s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC)


def tick(epoch_s: float) -> dict[str, Any]:
    return {"lead_id": "", "business_key": "", "action": "TICK", "team": None, "note": None, "by": "hub",
            "at": _at(epoch_s)}


def feedback(lead: dict[str, Any], action: str, team: str, note: str | None, by: str | None,
             epoch_s: float) -> dict[str, Any]:
    return {"lead_id": lead["lead_id"], "business_key": lead["business_key"], "action": action, "team": team,
            "note": note, "by": by, "at": _at(epoch_s)}


def _producer(clients: KafkaClients) -> Producer:
    return clients.producer({"linger.ms": 0, "log_level": 3})


def _deliver(producer: Producer) -> None:
    if producer.flush(30) != 0:
        raise RuntimeError("the broker did not acknowledge the feedback within 30 s")


def publish_feedback(clients: KafkaClients, record: dict[str, Any], signer: Signer) -> str:
    """A team's answer, signed by the team, onto the team's own feedback
    topic. Returns the topic."""
    topic = feedback_topic(signer.name)
    if record["team"] != signer.name:
        raise ValueError(f"an answer in the name of {record['team']!r} signed by {signer.name!r}")
    producer = _producer(clients)
    value = Serde(clients.settings).encoder(topic, "feedback")(record)
    key = record["business_key"].encode()
    errors: list[str] = []
    producer.produce(topic, key=key, value=value, headers=signer.headers(topic, key, value),
                     on_delivery=lambda err, msg: errors.append(str(err)) if err else None)
    _deliver(producer)
    if errors:
        raise RuntimeError(f"feedback not delivered: {errors[0]}")
    return topic


def publish_ticks(clients: KafkaClients, epoch_s: float, signer: Signer) -> int:
    """A tick at ``epoch_s`` on every partition of the clock topic, signed
    (by an operator, for a drill): the workers check deadlines as of that
    time. Returns the number of partitions ticked."""
    partitions = clients.admin().list_topics(FEEDBACK_TOPIC, timeout=10).topics[FEEDBACK_TOPIC].partitions
    producer = _producer(clients)
    value = Serde(clients.settings).encoder(FEEDBACK_TOPIC, "feedback")(tick(epoch_s))
    headers = signer.headers(FEEDBACK_TOPIC, TICK_KEY, value)
    for partition in partitions:
        producer.produce(FEEDBACK_TOPIC, key=TICK_KEY, value=value, partition=partition, headers=headers)
    _deliver(producer)
    return len(partitions)
