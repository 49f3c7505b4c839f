"""Attack on the audit topic's readers: a tombstone, a torn record and a
record of another contract where the trail should be. A worker still starts
its chain (linked to its last head), and `hub audit verify` names each one
as a break where it sits instead of stopping."""
from __future__ import annotations

import datetime as dt

import pytest

from hub.edge.audit_log import AuditLog, last_head, read_trail
from hub.audit.verify import Unreadable, verify
from hub.flow.topics import AUDIT_TOPIC, DEADLETTER_TOPIC
from hub.edge.metrics import Metrics
from hub.kafka.serde import Serde
from hub.kafka.topics import partition_of
from hub.trust import Role, TrustStore, signer

pytestmark = pytest.mark.broker


def test_unreadable_records_on_the_audit_topic_break_the_trail_and_nothing_else(settings, clients) -> None:
    first = AuditLog(clients, signer(settings, Role.WORKER, settings.worker_name), Metrics())
    first.start()
    first.head()
    first.flush(30)
    head = last_head(clients, settings.worker_name)

    partition = partition_of(clients, AUDIT_TOPIC, settings.worker_name.encode())
    other_contract = Serde(settings).encoder(DEADLETTER_TOPIC, "deadletter")({
        "stage": "worker", "source_file": None, "source_row": None, "column": None, "reason_code": "x",
        "reason": "x", "original": {}, "failed_at": dt.datetime.now(dt.UTC)})
    producer = clients.producer()
    for value in (None, b"\x00\x00\x00\x00\x01\x02", other_contract):
        producer.produce(AUDIT_TOPIC, key=settings.worker_name.encode(), value=value, partition=partition)
    producer.flush(30)

    assert last_head(clients, settings.worker_name) == head  # a restarted worker links to its last head
    second = AuditLog(clients, signer(settings, Role.WORKER, settings.worker_name), Metrics())
    second.start()
    second.head()
    second.flush(30)

    trail = read_trail(clients)
    unreadable = [item for item in trail if isinstance(item, Unreadable)]
    assert len(unreadable) == 3
    report = verify(trail, TrustStore.load(settings.trust_path))
    assert not report.ok and len(report.problems) == 3
    assert all(f"{AUDIT_TOPIC}[{partition}]@" in p and "not an audit entry" in p for p in report.problems)
    assert report.heads == 2  # both chains' heads still verify
