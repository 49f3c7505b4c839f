"""Teams' status changes on leads, and clock ticks, onto the feedback topic.

A feedback record is keyed by the lead's business key, so it lands in the
partition that holds the business's state (the same murmur2 partitioner as
the connectors and the workers' changelog).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from confluent_kafka import Producer

from hub.serde import Serde
from hub.settings import Settings
from hub.topics import FEEDBACK_TOPIC, admin

TICK_KEY = b"\x00hub:tick"


def _at(epoch_s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_s, tz=dt.timezone.utc)


def tick(epoch_s: float) -> dict[str, Any]:
    return {"lead_id": "", "business_key": "", "action": "TICK", "team": None, "note": None, "by": "hub",
            "at": _at(epoch_s)}


def feedback(lead: dict[str, Any], action: str, team: str, note: str | None, by: str | None,
             epoch_s: float) -> dict[str, Any]:
    return {"lead_id": lead["lead_id"], "business_key": lead["business_key"], "action": action, "team": team,
            "note": note, "by": by, "at": _at(epoch_s)}


def _producer(settings: Settings) -> Producer:
    return Producer({"bootstrap.servers": settings.broker_url, "partitioner": "murmur2_random",
                     "enable.idempotence": True, "log_level": 3})


def _deliver(producer: Producer) -> None:
    if producer.flush(30) != 0:
        raise RuntimeError("the broker did not acknowledge the feedback within 30 s")


def publish_feedback(settings: Settings, record: dict[str, Any]) -> None:
    producer = _producer(settings)
    encode = Serde(settings).encoder(FEEDBACK_TOPIC, "feedback")
    errors: list[str] = []
    producer.produce(FEEDBACK_TOPIC, key=record["business_key"].encode(), value=encode(record),
                     on_delivery=lambda err, msg: errors.append(str(err)) if err else None)
    _deliver(producer)
    if errors:
        raise RuntimeError(f"feedback not delivered: {errors[0]}")


def publish_ticks(settings: Settings, epoch_s: float) -> int:
    """A tick at ``epoch_s`` on every feedback partition: the workers check
    deadlines as of that time. Returns the number of partitions ticked."""
    client = admin(settings)
    partitions = client.list_topics(FEEDBACK_TOPIC, timeout=10).topics[FEEDBACK_TOPIC].partitions
    producer = _producer(settings)
    value = Serde(settings).encoder(FEEDBACK_TOPIC, "feedback")(tick(epoch_s))
    for partition in partitions:
        producer.produce(FEEDBACK_TOPIC, key=TICK_KEY, value=value, partition=partition)
    _deliver(producer)
    return len(partitions)
