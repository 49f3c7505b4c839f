"""Leads for people: the terminal form and the subscriber loop."""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

from hub.serde import Serde
from hub.settings import Settings
from hub.topics import LEADS_TOPIC, read_to_end

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
_MARK = {"CRITICAL": "!!!", "HIGH": "!! ", "MEDIUM": "!  ", "LOW": "   "}


def render(lead: dict[str, Any]) -> str:
    region = lead["region"]
    where = f"{region['name']} ({region['code']})" if region["code"] else "region unknown"
    who = lead["business_id"] or "not identified yet"
    lines = [
        f"{_MARK[lead['severity']]} {lead['severity']:<8} {' + '.join(lead['rules'])}  {lead['lead_id']}"
        + ("" if lead["status"] == "OPEN" else f"  [{lead['status']} by {lead['superseded_by']}]"),
        f"    {lead['business_name']}  [{who}]  {where}",
        f"    agencies: {', '.join(lead['agencies'])}   window: {lead['window_start']} .. {lead['window_end']}",
        "    evidence:",
        *(f"      {e['occurred_on']}  {e['agency']:<6} {e['finding']}" for e in lead["evidence"]),
        f"    action: {lead['recommended_action']}",
    ]
    return "\n".join(lines)


def matches(lead: dict[str, Any], region_prefix: str | None, min_severity: str | None) -> bool:
    if region_prefix and not (lead["region"]["code"] or "").startswith(region_prefix):
        return False
    if min_severity and SEVERITIES.index(lead["severity"]) < SEVERITIES.index(min_severity):
        return False
    return True


def follow_leads(settings: Settings, from_beginning: bool,
                 should_stop: Callable[[], bool] = lambda: False) -> Iterator[dict[str, Any]]:
    """Every lead record arriving on the lead topic; read without a consumer
    group, so any number of subscribers see every lead."""
    decode = Serde(settings).decoder("lead")
    consumer = Consumer({"bootstrap.servers": settings.broker_url, "group.id": "hub-leads-tail",
                         "enable.auto.commit": False, "log_level": 3})
    try:
        partitions = consumer.list_topics(LEADS_TOPIC, timeout=10).topics[LEADS_TOPIC].partitions
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        consumer.assign([TopicPartition(LEADS_TOPIC, p, start) for p in partitions])
        while not should_stop():
            for message in consumer.consume(500, 0.2):
                if not message.error():
                    yield decode(message.value())
            time.sleep(0)
    finally:
        consumer.close()


def final_leads(settings: Settings) -> dict[str, dict[str, Any]]:
    """The latest record of every lead on the lead topic."""
    decode = Serde(settings).decoder("lead")
    leads: dict[str, dict[str, Any]] = {}
    for message in read_to_end(settings, LEADS_TOPIC):
        lead = decode(message.value())
        leads[lead["lead_id"]] = lead
    return leads
