"""Shared helpers for broker tests."""
from __future__ import annotations

from collections import defaultdict

from hub.domain.events import Agency
from hub.serde import Serde
from hub.settings import Settings
from hub.topics import CATALOGUE, DEADLETTER_TOPIC, events_topic, read_to_end


def events_on_broker(settings: Settings) -> list[dict]:
    decode = Serde(settings).decoder("event")
    return [decode(m.value()) for a in Agency for m in read_to_end(settings, events_topic(a))]


def dead_letters(settings: Settings) -> list[dict]:
    decode = Serde(settings).decoder("deadletter")
    return [decode(m.value()) for m in read_to_end(settings, DEADLETTER_TOPIC)]


def raw_bytes_by_topic(settings: Settings, extra_topics: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every key and value on the hub's topics, concatenated per topic."""
    out: dict[str, bytes] = defaultdict(bytes)
    for name in [t.name for t in CATALOGUE] + list(extra_topics):
        for m in read_to_end(settings, name):
            out[name] += (m.key() or b"") + b"\n" + (m.value() or b"") + b"\n"
    return out
