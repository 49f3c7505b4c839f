"""A worker's audit chain on the audit topic (``hub.audit``): the flow's
notes and the board's, chained, sent by confluent-kafka, headed and signed
at intervals and on shutdown. Thread-safe: the board serves from its own
threads."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable

from confluent_kafka import KafkaError, Message

from hub.audit.entries import GENESIS, AuditAction, Chain, Entry, Note
from hub.audit.verify import Positioned, Report, Unreadable, verify
from hub.flow.codec import DecodeError
from hub.flow.topics import AUDIT_TOPIC
from hub.edge.metrics import Metrics
from hub.kafka.clients import KafkaClients
from hub.kafka.serde import Serde
from hub.settings import Settings
from hub.kafka.topics import partition_of, read_to_end
from hub.trust import Signer, TrustStore

log = logging.getLogger(__name__)

# Settings an audit entry may show in clear; the rest (secrets, paths to
# them) only as part of the digest.
_SHOWN = ("app_id", "worker_name", "topic_partitions", "teams_file", "allow_drills", "max_tick_ahead_s",
          "signature_max_delay_s", "signature_max_skew_s", "kafka_security_protocol", "kafka_sasl_username",
          "schema_registry_url", "web_host", "web_port", "lifecycle_tick_s")


def settings_detail(settings: Settings) -> dict[str, str]:
    """What a worker starts with: a digest of every setting (a change shows),
    and the ones safe to show."""
    # the personal-data key is left out even of the digest: nothing derived from it leaves the process
    everything = {k: repr(v) for k, v in sorted(dataclasses.asdict(settings).items()) if k != "pii_key"}
    shown = {f"setting.{k}": str(getattr(settings, k)) for k in _SHOWN}
    teams = Path(settings.teams_file)
    digest_of_teams = hashlib.sha256(teams.read_bytes()).hexdigest() if teams.exists() else "none"
    return {"settings_sha256": hashlib.sha256(json.dumps(everything).encode()).hexdigest(),
            "teams_sha256": digest_of_teams, **shown}


def last_head(clients: KafkaClients, worker_name: str, look_back: int = 5000) -> str:
    """The hash of the last head a worker of this name signed, among the last
    ``look_back`` entries of its partition (GENESIS if none)."""
    decode = Serde(clients.settings).decoder("audit")
    found = GENESIS
    for message in read_to_end(clients, AUDIT_TOPIC, partitions=[partition_of(clients, AUDIT_TOPIC,
                                                                              worker_name.encode())],
                               last=look_back):
        read = _entry(decode, message)
        if isinstance(read, Unreadable):  # `hub audit verify` names it; it must not keep a worker from starting
            log.warning("audit: %s is not an entry (%s)", read.where, read.why)
        elif read.entry.action is AuditAction.HEAD and read.entry.chain.startswith(worker_name + ":"):
            found = read.entry.hash
    return found


def entry_of(where: str, record: Any) -> Positioned | Unreadable:
    """An entry read back (from the topic or a copy), or why it is none."""
    try:
        return Positioned(where, Entry.from_record(record))
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        return Unreadable(where, f"{type(exc).__name__}: a field missing or of the wrong kind")


def _entry(decode: Callable[[bytes | None], dict[str, Any]], message: Message) -> Positioned | Unreadable:
    where = f"{AUDIT_TOPIC}[{message.partition()}]@{message.offset()}"
    try:
        return entry_of(where, decode(message.value()))
    except DecodeError as exc:
        return Unreadable(where, exc.reason_code or "undecodable")


def read_trail(clients: KafkaClients, last: int | None = None) -> list[Positioned | Unreadable]:
    """The audit topic's entries (or the ``last`` of each partition), with where each sits."""
    decode = Serde(clients.settings).decoder("audit")
    return [_entry(decode, m) for m in read_to_end(clients, AUDIT_TOPIC, last=last, timeout_s=120)]


def recent_report(clients: KafkaClients, trust: TrustStore, last: int = 5000) -> Report:
    """The recent trail, checked (a worker's periodic look)."""
    return verify(read_trail(clients, last), trust, window=True)


class AuditLog:
    """This worker's chain. ``start`` begins it (linked to the last head of
    its predecessor), ``record`` chains notes and sends them, ``head`` signs
    it, ``flush`` waits until the broker has them all."""

    def __init__(self, clients: KafkaClients, signer: Signer, metrics: Metrics) -> None:
        settings = clients.settings
        self.clients, self.settings, self.signer, self.metrics = clients, settings, signer, metrics.audit
        self.key = settings.worker_name.encode()
        self.chain = Chain(f"{settings.worker_name}:{uuid.uuid4().hex[:12]}")
        # The worker's one producer: librdkafka batches in C, and the worker's
        # wait for its leads covers these entries too (see hub.edge.worker.Publisher).
        self.producer = clients.producer({"linger.ms": 5, "log_level": 3,
                                          "queue.buffering.max.messages": 1_000_000})
        self.encode = Serde(settings).encoder(AUDIT_TOPIC, "audit")
        self.mirror = Path(settings.audit_file) if settings.audit_file else None
        self.lock = threading.Lock()
        self.started = False
        self.failures: list[KafkaError] = []

    def start(self) -> None:
        """Begin the chain, once (the first record or head begins it otherwise)."""
        if self.started:
            return
        predecessor = last_head(self.clients, self.settings.worker_name)
        with self.lock:
            if self.started:
                return
            self.started = True
            self.chain.prev = predecessor
            self._send([self.chain.signed(Note(self.signer.key.trusted.identity, AuditAction.CHAIN_START,
                                               self.chain.chain, "started", detail=settings_detail(self.settings)),
                                          _now_ms(), self.signer.key.key_id, self.signer.key.private.sign)])

    def record(self, notes: Iterable[Note]) -> list[Entry]:
        self.start()
        with self.lock:
            entries = [self.chain.append(note, _now_ms()) for note in notes]
            self._send(entries)
        return entries

    def resend(self, entries: list[Entry]) -> None:
        """A retried step sends the same entries again (``hub audit verify``
        recognises the second copy)."""
        with self.lock:
            self._send(entries, count=False)

    def head(self) -> Entry:
        """Sign the chain so far. At every interval, whether or not anything
        happened: a worker's heads are its heartbeat on the trail, and a
        silence is alerted on."""
        self.start()
        with self.lock:
            entry = self.chain.head(_now_ms(), self.signer.key.trusted.identity, self.signer.key.key_id,
                                    self.signer.key.private.sign)
            self._send([entry])
        self.metrics.last_head.set(entry.at_ms / 1000)
        return entry

    def refused(self) -> bool:
        """Whether the broker refused any entry since the last look."""
        failures, self.failures = self.failures, []
        return bool(failures)

    def flush(self, timeout_s: float) -> None:
        left = self.producer.flush(timeout_s)
        failures, self.failures = self.failures, []
        if left or failures:
            raise RuntimeError(f"audit entries not acknowledged: {left} waiting, {len(failures)} refused")

    def close(self, timeout_s: float) -> None:
        """Flush what is left and close the producer (the leads' too), while
        the broker is still there: left to the collector, it would outlive a
        broker stopped after an in-process worker, logging refused
        reconnections. Once closed, the log sends nothing more."""
        try:
            self.flush(timeout_s)
        finally:
            self.producer.close()

    def _send(self, entries: list[Entry], count: bool = True) -> None:
        for entry in entries:
            self._produce(self.encode(entry.to_record()))
        if count:  # per action, not per entry: a batch holds hundreds
            for action, n in Counter(entry.action for entry in entries).items():
                self.metrics.entries.labels(action.value).inc(n)
        if self.mirror is not None:
            self._mirror(self.mirror, entries)

    def _produce(self, value: bytes) -> None:
        """Onto the audit topic, waiting while the producer's queue is full."""
        while True:
            try:
                self.producer.produce(AUDIT_TOPIC, value, self.key, on_delivery=self._delivered)
                return
            except BufferError:
                self.producer.poll(0.1)

    @staticmethod
    def _mirror(path: Path, entries: list[Entry]) -> None:
        with open(path, "a", encoding="utf-8") as fh:
            fh.writelines(json.dumps(e.to_record(), ensure_ascii=False) + "\n" for e in entries)

    def _delivered(self, error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            self.failures.append(error)


def _now_ms() -> int:
    return int(time.time() * 1000)
