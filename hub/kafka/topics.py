"""The topics the hub owns, their contracts and partition counts."""
from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager

from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, TopicMetadata

from hub.kafka.clients import KafkaClients
from hub.domain.events import Agency
from hub.flow.topics import (AUDIT_TOPIC, BUSINESS_TABLE, DEADLETTER_TOPIC, FEEDBACK_TOPIC,
                             LEADS_TOPIC, RESOLUTION_TOPIC, RESOLVER_TABLE, cursor_topic, events_topic,
                             feedback_topic, outcomes_topic)
from hub.settings import Settings, installed_connectors

# Where installed connectors are registered (pyproject's entry points).


@dataclass(frozen=True)
class TopicSpec:
    name: str
    contract: str  # the schema in schemas/registry.json that its values follow
    partitioned: bool = True  # False: a single partition, e.g. for ordered state
    description: str = ""
    compacted: bool = False  # the latest record per key is the state: Kafka may compact the rest
    kept: bool = False  # never deleted by retention (the audit trail)

    def partitions(self, settings: Settings) -> int:
        return settings.topic_partitions if self.partitioned else 1


CATALOGUE: tuple[TopicSpec, ...] = (
    *(TopicSpec(events_topic(a), "event", description=f"validated {a.value} case and inspection events")
      for a in Agency),
    TopicSpec(DEADLETTER_TOPIC, "deadletter", description="rejected rows and undecodable events, with the reason"),
    TopicSpec(LEADS_TOPIC, "lead", description="every lead in full detail: the hub's operators only",
              compacted=True),
    TopicSpec(FEEDBACK_TOPIC, "feedback", description="the lifecycle's clock: workers' ticks and operators' drills, "
              "one per partition, co-partitioned with the events (teams answer on hub.feedback.<team>)"),
    *(TopicSpec(outcomes_topic(a.value), "feedback", description=f"outcomes of leads {a.value}'s evidence raised")
      for a in Agency),
    TopicSpec(RESOLUTION_TOPIC, "resolution", description="entity resolution: registry knowledge and parked "
              "records keyed by lookup key, resolved records keyed by business; co-partitioned with the events"),
    TopicSpec(AUDIT_TOPIC, "audit", kept=True, description="the audit trail: hash-chained entries per worker, "
              "signed heads; keyed by worker name; never compacted, never expired"),
)


def changelog_topic(settings: Settings, table: str = BUSINESS_TABLE) -> str:
    """A state table's changelog (Faust's naming), co-partitioned with the events."""
    return f"{settings.app_id}-{table}-changelog"


def cursor_topics() -> list[TopicSpec]:
    """One compacted topic per installed connector: its cursors."""
    return [TopicSpec(cursor_topic(name), "connector_offset", partitioned=False, compacted=True,
                      description=f"connector {name}'s cursors (rows delivered per file)")
            for name in installed_connectors()]


def team_topics(settings: Settings) -> list[TopicSpec]:
    """One compacted topic per configured team: its leads, redacted to its clearance."""
    from hub.domain.teams import load_teams

    teams = load_teams(settings.teams_file).values()
    return [*(TopicSpec(t.topic, "lead", description=f"leads for team {t.name}", compacted=True) for t in teams),
            *(TopicSpec(feedback_topic(t.name), "feedback", description=f"team {t.name}'s answers on its leads; "
                        "keyed by business, co-partitioned with the events")
              for t in teams if not t.oversees)]  # oversight answers nothing


def all_topics(settings: Settings) -> list[TopicSpec]:
    """Every topic the hub owns on this installation (its teams, its connectors)."""
    return [*CATALOGUE, *team_topics(settings), *cursor_topics()]


def topic_config(settings: Settings, compacted: bool, kept: bool) -> dict[str, str]:
    """A hub topic's policy: compacted state, the audit trail kept for ever,
    the rest (events, dead letters, feedback, resolution) kept
    ``event_retention_days``."""
    # The broker stamps each record as it takes it: a signed record whose
    # stamp is far from its signature's time is a replayed copy (see
    # hub.trust.signatures), and no producer can set that stamp.
    config = {"message.timestamp.type": "LogAppendTime"}
    if compacted:
        config.update({"cleanup.policy": "compact", "segment.ms": str(settings.compacted_segment_ms)})
    elif kept:
        config.update({"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"})
    else:
        days = settings.event_retention_days
        config.update({"cleanup.policy": "delete", "retention.bytes": "-1",
                       "retention.ms": "-1" if days < 0 else str(days * 86_400_000)})
    return config


def create_topics(clients: KafkaClients,
                  specs: tuple[TopicSpec, ...] | list[TopicSpec] | None = None) -> dict[str, str]:
    """Create topics with explicit partition counts and policies; existing ones are left as they are.

    Returns ``{topic: "created" | "exists"}``. Idempotent; the hub never
    relies on a broker's auto-creation (the embedded one has it off).
    """
    settings = clients.settings
    wanted = _wanted(settings, all_topics(settings) if specs is None else specs)
    client = clients.admin()
    futures = client.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=settings.replication_factor,
                  config=topic_config(settings, compacted, kept))
         for name, (n, compacted, kept) in wanted.items()], operation_timeout=10, request_timeout=15)
    result = {name: _created_or_exists(fut) for name, fut in futures.items()}
    _wait_for_leaders(client, [name for name, outcome in result.items() if outcome == "created"])
    return result


def _wanted(settings: Settings, specs: Iterable[TopicSpec]) -> dict[str, tuple[int, bool, bool]]:
    """Topic -> (partitions, compacted, kept): the specs', the state tables' changelogs, Faust's assignor topic."""
    wanted = {s.name: (s.partitions(settings), s.compacted, s.kept) for s in specs}
    for table in (BUSINESS_TABLE, RESOLVER_TABLE):
        wanted[changelog_topic(settings, table)] = (settings.topic_partitions, True, False)
    # Faust's leader assignor subscribes to it (nothing is written there);
    # missing, every metadata refresh of a worker logs an error.
    wanted[f"{settings.app_id}-__assignor-__leader"] = (1, False, False)
    return wanted


def _created_or_exists(future: Future[None]) -> str:
    try:
        future.result()
        return "created"
    except KafkaException as exc:
        if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
            raise
        return "exists"


def _wait_for_leaders(client: AdminClient, names: list[str], timeout_s: float = 30.0) -> None:
    """A created topic is usable once the brokers' metadata gives every
    partition a leader, a moment after the controller took it: until then a
    read or a write is refused as NOT_LEADER_FOR_PARTITION."""
    deadline = time.monotonic() + timeout_s
    waiting = set(names)
    while waiting:
        waiting = _leaderless(client, waiting)
        if waiting and time.monotonic() > deadline:
            raise KafkaException(f"topics without a leader {timeout_s:g} s after their creation: {sorted(waiting)}")
        if waiting:
            time.sleep(0.05)


def _leaderless(client: AdminClient, names: set[str]) -> set[str]:
    """Those of the topics the brokers' metadata does not yet give a leader for every partition."""
    topics = client.list_topics(timeout=10).topics
    return {name for name in names if name not in topics or topics[name].error is not None
            or any(p.leader < 0 for p in topics[name].partitions.values())}


def list_topics(clients: KafkaClients) -> dict[str, int]:
    """Every topic on the broker with its partition count."""
    md = clients.admin().list_topics(timeout=10)
    return {name: len(t.partitions) for name, t in sorted(md.topics.items())
            if not name.startswith("__")}


def partition_of(clients: KafkaClients, topic: str, key: bytes) -> int:
    """The partition of ``topic`` a key goes to (its partition count asked of the broker)."""
    return key_partition(key, len(existing_topic(clients.admin(), topic).partitions))


def key_partition(key: bytes, partitions: int) -> int:
    """The partition a key goes to: murmur2, as the workers' and the
    connectors' producers (and Kafka's Java clients) choose it."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def _topic_metadata(client: AdminClient | Consumer, topic: str) -> TopicMetadata:
    """What the broker says of ``topic``, asked again while the broker is
    catching up; an error of the topic's own is the caller's to judge."""
    metadata: TopicMetadata = _retried(lambda: client.list_topics(topic, timeout=10)).topics[topic]
    return metadata


def existing_topic(client: AdminClient | Consumer, topic: str) -> TopicMetadata:
    """What the broker says of ``topic``, which must exist: a topic missing
    (or in error) is a RuntimeError that says how to make it."""
    metadata = _topic_metadata(client, topic)
    if metadata.error is not None:
        raise RuntimeError(f"topic {topic}: {metadata.error.str()} (run `hub topics create`)")
    return metadata


def _end_offsets(consumer: Consumer, topic: str, partitions: Collection[int] | None) -> dict[int, int]:
    md = _topic_metadata(consumer, topic)
    if md.error is not None:
        raise KafkaException(md.error)
    ends: dict[int, int] = {}
    for p in md.partitions if partitions is None else sorted(set(partitions) & set(md.partitions)):
        low, high = watermarks(consumer, TopicPartition(topic, p))
        if high > low:
            ends[p] = high
    return ends


_PASSING_FAULTS = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                            KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TIMED_OUT, KafkaError._TRANSPORT,
                            # a group's coordinator moving or still loading its offsets (a fresh broker)
                            KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                            KafkaError.COORDINATOR_NOT_AVAILABLE,
                            # the client's own metadata not yet holding a partition the broker has just listed
                            # (seen on a broker resumed after a pause)
                            KafkaError._UNKNOWN_PARTITION})


T = TypeVar("T")


def _retried(ask: Callable[[], T], timeout_s: float = 30.0) -> T:
    """``ask()``, asked again while the broker is briefly away or busy (a
    restart, a leader being elected, a topic just created:
    NOT_LEADER_FOR_PARTITION for a moment), up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return ask()
        except KafkaException as exc:
            if exc.args[0].code() not in _PASSING_FAULTS or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def watermarks(consumer: Consumer, tp: TopicPartition) -> tuple[int, int]:
    """The low and high watermarks of ``tp``, asked again while the broker
    or the client's metadata is catching up."""
    low, high = _retried(lambda: consumer.get_watermark_offsets(tp, timeout=10))
    return int(low), int(high)


def read_to_end(clients: KafkaClients, topic: str, timeout_s: float = 30.0,
                partitions: Collection[int] | None = None, last: int | None = None) -> list[Message]:
    """Every message now on ``topic`` (its ``partitions``, or all, from the
    beginning, or only about the ``last`` of each), read without joining a
    consumer group, by the process's shared reader."""
    with clients.reader() as consumer:
        ends = _end_offsets(consumer, topic, partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING if last is None else max(0, end - last))
                         for p, end in ends.items()])
        messages = _read_up_to(consumer, topic, ends, timeout_s)
        if ends:
            raise TimeoutError(f"could not read {topic} to its end within {timeout_s}s")
        return messages


def _read_up_to(consumer: Consumer, topic: str, ends: dict[int, int], timeout_s: float) -> list[Message]:
    """The messages before ``ends`` (partition -> offset); a partition read
    to its end leaves ``ends``, so what is left in it timed out."""
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while ends and time.monotonic() < deadline:
        messages += [msg for msg in consumer.consume(1000, 0.02) if _before_end(msg, topic, ends)]
        _drop_read_to_end(consumer, topic, ends)
    return messages


def _drop_read_to_end(consumer: Consumer, topic: str, ends: dict[int, int]) -> None:
    # By position, not by the last message seen: the offsets before a
    # high watermark may end in a compacted gap or a transaction marker.
    for tp in consumer.position([TopicPartition(topic, p) for p in ends]):
        if tp.offset >= ends[tp.partition]:
            ends.pop(tp.partition)


def _before_end(msg: Message, topic: str, ends: dict[int, int]) -> bool:
    # the topic too: the shared reader read another topic before this one
    partition, offset = msg.partition(), msg.offset()
    return not msg.error() and msg.topic() == topic and partition in ends and offset is not None \
        and offset < ends[partition]


def source_topics() -> list[str]:
    """What the workers process and commit strictly: the events, and
    resolution's traffic (resolved records among it). Feedback aside."""
    return [*(events_topic(a) for a in Agency), RESOLUTION_TOPIC]


def event_ends(clients: KafkaClients) -> dict[TopicPartition, int]:
    """The end offset of every non-empty partition of the source topics."""
    with clients.reader() as reader:
        return {TopicPartition(topic, p): end for topic in source_topics()
                for p, end in _end_offsets(reader, topic, None).items()}


def worker_lag(clients: KafkaClients, ends: dict[TopicPartition, int],
               consumer: Consumer | None = None) -> dict[TopicPartition, int]:
    """Events up to ``ends`` that the workers' consumer group has not
    committed, asked through ``consumer`` (of that group: ``lag_consumer``;
    one made for this call by default). A caller that asks again and again
    makes one and hands it in."""
    if consumer is None:
        with lag_consumer(clients) as own:
            return worker_lag(clients, ends, own)
    # asked again while the group's coordinator is briefly away: the shared
    # reader finds the ends at once, so the first look can come before a
    # fresh broker has loaded its offsets topic
    committed = _retried(lambda: consumer.committed(list(ends), timeout=10))
    return {tp: ends[TopicPartition(tp.topic, tp.partition)] - max(tp.offset, 0) for tp in committed}


@contextmanager
def lag_consumer(clients: KafkaClients) -> Iterator[Consumer]:
    """A consumer of the workers' group that only looks up its committed
    offsets (it never subscribes), closed on the way out."""
    consumer = clients.consumer(clients.settings.app_id, {"enable.auto.commit": False, "log_level": 3})
    try:
        yield consumer
    finally:
        consumer.close()
