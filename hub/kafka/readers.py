"""Readers of the hub's signed topics: leads, dead letters, follow loops."""
from __future__ import annotations

import json
import logging
import time
from typing import Any
from collections.abc import Callable, Iterator

from confluent_kafka import OFFSET_BEGINNING, TIMESTAMP_LOG_APPEND_TIME, Consumer, Message, TopicPartition

from hub.kafka.clients import KafkaClients
from hub.flow.codec import DecodeError
from hub.kafka.serde import Serde
from hub.settings import Settings
from hub.kafka.topics import existing_topic, partition_of, read_to_end, watermarks
from hub.flow.topics import DEADLETTER_TOPIC, LEADS_TOPIC
from hub.trust import Role, Untrusted, verifier
from hub.trust.keys import TrustedKey
from hub.trust.signatures import headers_of

log = logging.getLogger(__name__)

class SignedReader:
    """Records as a reader takes them: only those the hub's own identities of
    ``roles`` signed (see ``hub.trust.signatures``); by default lead records,
    which only workers sign. Any other is left out, and logged by where it
    sits, never by what it says."""

    def __init__(self, settings: Settings, contract: str = "lead", roles: frozenset[Role] = frozenset({Role.WORKER})):
        self.decode = Serde(settings).decoder(contract)
        self.verifier = verifier(settings)
        self.roles = roles

    def __call__(self, message: Message) -> dict[str, Any] | None:
        read = self.signed(message)
        return None if read is None else read[1]

    def signed(self, message: Message) -> tuple[TrustedKey, dict[str, Any]] | None:
        """Who signed the record, and what it holds; None if it is left out."""
        topic, value = str(message.topic()), message.value()
        if value is None:
            return None
        kind, stamp = message.timestamp()
        # the broker's own time only (the hub's topics use LogAppendTime): a
        # producer's CreateTime is whatever the sender wrote
        appended = stamp if kind == TIMESTAMP_LOG_APPEND_TIME else None
        try:
            signed = self.verifier.verify(topic, message.key(), value, headers_of(message.headers()), appended)
            if signed.signer.role not in self.roles:
                raise Untrusted("not_authorised", f"{signed.signer.identity} may not sign {topic}")
            return signed.signer, self.decode(value)
        except (Untrusted, DecodeError) as exc:
            # DecodeError: signed by a worker, yet unreadable here (a newer
            # contract during a rolling upgrade): one record, not the reader's end.
            code = exc.code if isinstance(exc, Untrusted) else exc.reason_code or "undecodable"
            log.warning("a record on %s[%s]@%s is left out: %s (%s)", topic, message.partition(), message.offset(),
                        code, exc)  # the hub's own messages: a position, a schema ID, never a value
            return None


class LeadReader:
    """Lead records as every reader keeps them: signed by a worker
    (``SignedReader``, with the broker's time for the replay check), and
    newer than any record of the same lead read before on the same topic.
    A genuine, signed record copied back onto a topic (a CLOSED one over a
    reopened lead, an OPEN one over a closed lead) carries the version it was
    published with; one not above the highest read is left out, logged and
    counted in ``stale``. Records written before versions (0) are read in
    topic order until a versioned one arrives."""

    def __init__(self, settings: Settings) -> None:
        self.signed = SignedReader(settings)
        self.versions: dict[tuple[str, str], int] = {}
        self.stale = 0

    def __call__(self, message: Message) -> dict[str, Any] | None:
        lead = self.signed(message)
        if lead is None:
            return None
        where = (str(message.topic()), lead["lead_id"])
        version, seen = lead["version"], self.versions.get(where)
        if seen is not None and (version <= seen if version else seen > 0):
            self.stale += 1
            log.warning("a lead record on %s[%s]@%s is left out: stale_version (%s of %s, not above %s read before:"
                        " a replayed older record)", message.topic(), message.partition(), message.offset(),
                        version, lead["lead_id"], seen)
            return None
        self.versions[where] = version
        return lead


def dead_letters(clients: KafkaClients) -> list[dict[str, Any]]:
    """The dead letters on the topic, each once, as counts of a connector's
    work read them: a letter counts only when the connector it names signed
    it (or a worker, for a worker's own), so one connector's key cannot fill
    another's figures; a row sent again (a connector run again after it was
    killed mid-file) is the same letter, counted once."""
    reader = SignedReader(clients.settings, "deadletter", frozenset({Role.CONNECTOR, Role.WORKER}))
    kept: dict[str, dict[str, Any]] = {}
    for message in read_to_end(clients, DEADLETTER_TOPIC):
        read = reader.signed(message)
        if read is None:
            continue
        signer, letter = read
        if letter["stage"] != (signer.name if signer.role is Role.CONNECTOR else "worker"):
            log.warning("a dead letter on %s[%s]@%s is left out: signed by %s, not by the stage it names",
                        message.topic(), message.partition(), message.offset(), signer.identity)
            continue
        # what the letter says, less when it was written: the same row, the same letter
        identity = json.dumps({k: v for k, v in letter.items() if k != "failed_at"}, sort_keys=True, default=str)
        kept.setdefault(identity, letter)
    return list(kept.values())


def follow_topics(clients: KafkaClients, topics: list[str], from_beginning: bool,
                  should_stop: Callable[[], bool] = lambda: False,
                  read: LeadReader | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every lead record arriving on these lead topics, with its topic, as
    ``read`` keeps them (a new ``LeadReader`` by default); read without a
    consumer group, so any number of subscribers see every lead. Not
    ``from_beginning``, what the topics already hold is read but not
    yielded: the reader must know each lead's latest version to refuse a
    replay of an older one arriving later. The follower's consumer is its
    own (the shared reader is lent for one read at a time), closed when it stops."""
    read = read or LeadReader(clients.settings)
    consumer = clients.consumer("hub-leads-tail", {"enable.auto.commit": False, "log_level": 3})
    try:
        shown_from = _shown_from(consumer, topics, from_beginning)
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in shown_from])
        while not should_stop():
            yield from _new_leads(consumer, read, shown_from)
            time.sleep(0)
    finally:
        consumer.close()


def _shown_from(consumer: Consumer, topics: list[str], from_beginning: bool) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the first offset to yield: 0, or the end now."""
    shown_from: dict[tuple[str, int], int] = {}
    for topic in topics:
        for p in existing_topic(consumer, topic).partitions:
            shown_from[topic, p] = 0 if from_beginning else watermarks(consumer, TopicPartition(topic, p))[1]
    return shown_from


def _new_leads(consumer: Consumer, read: LeadReader,
               shown_from: dict[tuple[str, int], int]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The leads of one fetch that ``read`` keeps, from where each partition is shown."""
    for message in consumer.consume(500, 0.2):
        if message.error() or (lead := read(message)) is None:
            continue
        if (message.offset() or 0) >= shown_from[str(message.topic()), message.partition() or 0]:
            yield str(message.topic()), lead


def follow_leads(clients: KafkaClients, from_beginning: bool, should_stop: Callable[[], bool] = lambda: False,
                 topic: str = LEADS_TOPIC) -> Iterator[dict[str, Any]]:
    for _, lead in follow_topics(clients, [topic], from_beginning, should_stop):
        yield lead


def final_leads(clients: KafkaClients, topic: str = LEADS_TOPIC) -> dict[str, dict[str, Any]]:
    """The latest record of every lead on the lead topic (or a team's)."""
    read = LeadReader(clients.settings)
    leads: dict[str, dict[str, Any]] = {}
    for message in read_to_end(clients, topic):
        if (lead := read(message)) is not None:
            leads[lead["lead_id"]] = lead
    return leads


def find_lead(clients: KafkaClients, lead_id: str, topic: str = LEADS_TOPIC) -> dict[str, Any] | None:
    """The latest record of one lead, read from the one partition its key
    puts it in: the lead topics are keyed by lead ID."""
    key = lead_id.encode()
    read = LeadReader(clients.settings)
    found = None
    for message in read_to_end(clients, topic, partitions=[partition_of(clients, topic, key)]):
        if message.key() == key and (lead := read(message)) is not None:
            found = lead
    return found
