"""Runs a connector: reads files, publishes events, dead-letters bad rows,
keeps the cursor and the metrics. The connector itself never sees Kafka."""
from __future__ import annotations

import datetime as dt
import logging
import os
import stat
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from collections.abc import Callable, Iterator

from confluent_kafka import KafkaError, Message

from connectors.offsets import FileCursor, OffsetStore, fingerprint
from connectors.sdk import Connector, RowRejected, SourceRow
from connectors.tabular import TABULAR_SUFFIXES, FileFormatError
from hub.domain.events import Event, event_key
from hub.domain.pii import describe
from hub.domain.validation import Invalid, check_record, latest_date
from hub.edge.metrics import Metrics
from hub.kafka.clients import KafkaClients
from hub.kafka.serde import Serde
from hub.settings import ValidationSettings
from hub.flow.topics import DEADLETTER_TOPIC, events_topic
from hub.trust import Role, signer

log = logging.getLogger(__name__)

# A cursor is written after this many rows or seconds, whichever comes
# first: a killed run re-sends at most that much (the workers deduplicate).
# Each cursor claims the rows up to the next one, so a rerun can say how
# many it sent again.
CHECKPOINT_ROWS = 1000
CHECKPOINT_S = 2.0
# A broken export can reject every row: the log shows the first ones, the
# dead-letter topic and the run's summary have them all.
LOGGED_REJECTS_PER_FILE = 20


# Records signed together (one Ed25519 signature, a hash-tree path each).
SIGNED_BATCH = 64  # a 6-level path: 294 header bytes a record

class PublishError(RuntimeError):
    """The broker did not acknowledge every record; the cursor was not advanced."""


@dataclass
class RunSummary:
    connector: str
    file: str
    rows_read: int = 0
    events_published: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    already_delivered: int = 0
    resent: int = 0  # rows an interrupted run had claimed, sent again
    elapsed_s: float = 0.0

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    def line(self) -> str:
        rejected = ", ".join(f"{k}={v}" for k, v in sorted(self.rejected.items())) or "none"
        skipped = f", {self.already_delivered} rows already delivered" if self.already_delivered else ""
        resent = (f", {self.resent} rows sent again that an interrupted run may have sent (the workers drop "
                  f"what arrives twice)") if self.resent else ""
        return (f"{self.connector} {self.file}: {self.rows_read} rows read, "
                f"{self.events_published} events published, {self.rows_rejected} rejected "
                f"({rejected}){skipped}{resent} in {self.elapsed_s:.2f}s")


def dead_letter(stage: str, reason_code: str, reason: str, original: dict[str, str],
                file: str | None = None, row: int | None = None, column: str | None = None) -> dict[str, object]:
    return {"stage": stage, "source_file": file, "source_row": row, "column": column,
            "reason_code": reason_code, "reason": reason, "original": original,
            "failed_at": dt.datetime.now(dt.UTC)}


@dataclass(frozen=True)
class Rejection:
    """Why the runner dead-letters a row, or a whole file: a reason code, a
    reason that never quotes a cell, and the column to blame when there is one."""

    reason_code: str
    reason: str
    column: str | None = None
    #: What the connector raised, when it failed (reason code ``connector_error``).
    error: Exception | None = None


@dataclass(frozen=True)
class RowOutcome:
    """What the runner makes of one row, short of producing it: the
    connector's events with their keys and encoded values, or its rejection."""

    row: SourceRow
    events: list[Event] = field(default_factory=list)
    encoded: list[tuple[str, bytes]] = field(default_factory=list)  # (key, the value in the wire format)
    rejection: Rejection | None = None


def convert_row(connector: Connector, row: SourceRow, received_at: dt.datetime, limits: ValidationSettings,
                encode_event: Callable[[Event], bytes]) -> RowOutcome:
    """One row as ``ConnectorRunner`` publishes it, without a broker: the
    connector's events, checked as the workers check them and encoded against
    the event contract, or why the row goes to the dead-letter topic. A
    connector that fails on the row fails the row alone (``connector_error``)."""
    try:
        events = connector.events(row, received_at)
        latest = latest_date(received_at, limits)
        for event in events:
            check_record(event, limits, latest)
        encoded = [(event_key(e), encode_event(e)) for e in events]
        for _, value in encoded:
            if len(value) > limits.max_event_bytes:
                raise RowRejected("oversized_event", f"the event is {len(value)} bytes, "
                                                     f"more than {limits.max_event_bytes}")
    except Invalid as exc:  # the connector's own checks missed it: the event's field is named
        return RowOutcome(row, rejection=Rejection(exc.reason_code, str(exc), exc.field))
    except RowRejected as exc:
        return RowOutcome(row, rejection=Rejection(exc.reason_code, str(exc), exc.column))
    except Exception as exc:  # a connector bug must not stop the file: dead-letter the row
        log.error("%s failed on %s row %s: %s", connector.name, row.file, row.number, describe(exc))
        return RowOutcome(row, rejection=Rejection("connector_error", f"the connector failed: {type(exc).__name__}",
                                                   None, exc))
    return RowOutcome(row, events, encoded)


def source_rows(connector: Connector, path: Path, shown: str) -> Iterator[SourceRow]:
    """The connector's rows; a reader that fails unforeseen fails the file
    from there on (what was read stands), never the process. Publishing
    errors are not the reader's and are not caught here."""
    try:
        yield from connector.read(path)
    except FileFormatError:
        raise
    except Exception as exc:
        log.error("%s: reading %s failed: %s", connector.name, shown, describe(exc))
        raise FileFormatError(shown, f"reading stopped ({type(exc).__name__})",
                              reason_code="unreadable_file") from exc


def refusal(path: Path, shown: str, limits: ValidationSettings) -> FileFormatError | None:
    """Why the file is not read at all, if it is not: a link could point
    anywhere (its target is not an export of this folder), and a device
    or a pipe never ends."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        return FileFormatError(shown, f"cannot be read ({type(exc).__name__})", reason_code="unreadable_file")
    if not stat.S_ISREG(info.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
        return FileFormatError(shown, f"{kind}: refused", reason_code="not_regular_file")
    if info.st_size > limits.max_file_bytes:
        return FileFormatError(shown, f"{info.st_size} bytes, more than {limits.max_file_bytes}",
                               reason_code="oversized_file")
    return None


class ConnectorRunner:
    def __init__(self, clients: KafkaClients, connector: Connector, metrics: Metrics,
                 serde: Serde | None = None) -> None:
        """``clients``: the run's Kafka clients (the process's), from which
        the runner's producer is made and its cursors are read."""
        settings = clients.settings
        self.clients, self.settings = clients, settings
        self.connector = connector
        self.metrics = metrics.connector
        self.serde = serde or Serde(settings)
        self.topic = events_topic(connector.agency)
        # The default delivery callback: records without their own (cursors) report failures too.
        # Every record it publishes carries its connector's signature: the
        # workers take an agency's events from that agency's connectors alone.
        self.signer = signer(settings, Role.CONNECTOR, connector.name)
        self.producer = clients.producer({"on_delivery": self._failed})
        self.offsets = OffsetStore(clients, self.serde, self.producer, self.signer)
        self._encode_event = self.serde.encoder(self.topic, "event")
        self._encode_dead = self.serde.encoder(DEADLETTER_TOPIC, "deadletter")
        self._errors: list[KafkaError] = []
        self._pending: list[tuple[str, bytes | None, bytes]] = []  # records waiting to be signed and sent
        self.summary: RunSummary | None = None  # of the file being read, or read last
        name = connector.name
        self._read = self.metrics.records_read.labels(name)
        self._published = self.metrics.events_published.labels(name, self.topic)
        self._latency = self.metrics.publish_latency.labels(name)

    # -- publishing -------------------------------------------------------
    def _delivered(self, started: float, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._errors.append(err)
        else:
            self._latency.observe(time.perf_counter() - started)

    def _failed(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._errors.append(err)

    def _flush(self) -> None:
        """Wait until every record handed over is acknowledged, or raise
        ``PublishError``: a broker that does not answer within
        ``publish_timeout_s`` fails the run, and the cursor stays behind."""
        self._drain()
        remaining = self.producer.flush(self.settings.publish_timeout_s + 5)
        if remaining or self._errors:
            errors, self._errors = self._errors, []
            raise PublishError(f"{len(errors) + remaining} records not acknowledged "
                               f"({errors[0] if errors else 'timeout'}); cursor kept at the last checkpoint")

    def _produce(self, topic: str, key: str, value: bytes) -> None:
        """Signed in batches of up to ``SIGNED_BATCH`` records (one signature
        over a hash tree of them); every flush sends what waits first."""
        self._pending.append((topic, key.encode(), value))
        if len(self._pending) >= SIGNED_BATCH:
            self._drain()

    def _drain(self) -> None:
        pending, self._pending = self._pending, []
        for (topic, key, value), headers in zip(pending, self.signer.batch(pending), strict=False):
            while True:
                try:
                    self.producer.produce(topic, key=key, value=value, headers=headers,
                                          on_delivery=partial(self._delivered, time.perf_counter()))
                    break
                except BufferError:  # local queue full: let deliveries drain, then retry
                    self.producer.poll(0.1)

    def _checkpoint(self, file_fp: str, shown: str, cursor: FileCursor) -> None:
        """Record ``cursor`` once every row before it is acknowledged. The
        cursor record itself goes with the next rows rather than waiting
        alone (a second flush cost a fifth of the connector's speed): a crash
        before it lands leaves the previous cursor, which covers less, and a
        rerun's count of rows sent again may then miss those few in flight."""
        self._flush()
        self.offsets.put(file_fp, shown, cursor)

    def _reject(self, summary: RunSummary, code: str, reason: str, original: dict[str, str],
                file: str, row: int | None, column: str | None) -> None:
        summary.rejected[code] += 1
        self.metrics.records_rejected.labels(self.connector.name, code).inc()
        where = f"{file}" + (f", row {row}" if row else "") + (f", column {column!r}" if column else "")
        if summary.rows_rejected <= LOGGED_REJECTS_PER_FILE:
            log.warning("%s rejected %s: %s", self.connector.name, where, reason)
        elif summary.rows_rejected == LOGGED_REJECTS_PER_FILE + 1:
            log.warning("%s: more rows of %s rejected; the dead-letter topic and the summary have them all",
                        self.connector.name, file)
        self._produce(DEADLETTER_TOPIC, self.connector.name, self._encode_dead(
            dead_letter(self.connector.name, code, reason, original, file, row, column)))

    # -- running ------------------------------------------------------------
    def run_file(self, path: Path) -> RunSummary:
        """Publish one export. However the run ends (``PublishError``, a stop),
        ``self.summary`` says how far it got."""
        started = time.perf_counter()
        name, shown = self.connector.name, self.connector.shown_name(path)
        summary = self.summary = RunSummary(name, shown)
        try:
            refused = self._refusal(path, shown)
            if refused is not None:
                self._reject(summary, refused.reason_code, refused.detail, {}, shown, None, None)
                self._flush()
                return summary
            file_fp = fingerprint(path)
            cursor = self.offsets.get(file_fp)
            if cursor.complete:
                summary.already_delivered = cursor.rows_done - 1
                return summary
            self._read_file(path, file_fp, cursor, summary)
            self.metrics.last_success.labels(name).set_to_current_time()
            return summary
        finally:
            summary.elapsed_s = time.perf_counter() - started

    def _read_file(self, path: Path, file_fp: str, cursor: FileCursor, summary: RunSummary) -> None:
        last_row = claimed = cursor.rows_done
        checkpointed = time.monotonic()
        try:
            for row in self._rows(path, summary.file):
                if row.number <= cursor.rows_done:
                    summary.already_delivered += 1
                    continue
                if row.number > claimed or time.monotonic() - checkpointed >= CHECKPOINT_S:
                    # What was delivered so far, and a claim on the rows up to the next cursor.
                    claimed = row.number + CHECKPOINT_ROWS - 1
                    self._checkpoint(file_fp, summary.file, FileCursor(last_row, False, claimed))
                    checkpointed = time.monotonic()
                summary.resent += row.number <= cursor.rows_claimed
                summary.rows_read += 1
                self._read.inc()
                self._publish_row(row, summary)
                last_row = row.number
        except FileFormatError as exc:
            self._reject(summary, exc.reason_code, exc.detail, {}, summary.file, exc.row, exc.column)
        self._checkpoint(file_fp, summary.file, FileCursor(max(last_row, 1), True))
        self._flush()

    def _rows(self, path: Path, shown: str) -> Iterator[SourceRow]:
        return source_rows(self.connector, path, shown)

    def _refusal(self, path: Path, shown: str) -> FileFormatError | None:
        return refusal(path, shown, self.settings.validation)

    def _publish_row(self, row: SourceRow, summary: RunSummary) -> None:
        outcome = convert_row(self.connector, row, dt.datetime.now(dt.UTC), self.settings.validation,
                              self._encode_event)
        if outcome.rejection is not None:
            rejected = outcome.rejection
            self._reject(summary, rejected.reason_code, rejected.reason, self.connector.redacted_original(row),
                         row.file, row.number, rejected.column)
            return
        encoded = outcome.encoded
        for key, value in encoded:
            self._produce(self.topic, key, value)
        summary.events_published += len(encoded)
        self._published.inc(len(encoded))

    def follow(self, folder: Path, interval_s: float = 2.0,
               should_stop: Callable[[], bool] = lambda: False) -> Iterator[RunSummary]:
        """Process every export in ``folder`` and keep picking up new ones."""
        seen: dict[Path, float] = {}
        while not should_stop():
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() not in TABULAR_SUFFIXES or path.name.startswith((".", "~$")):
                    continue
                try:
                    mtime = os.lstat(path).st_mtime  # a link's own time: its target is never read
                except OSError:  # gone since the listing
                    continue
                # a file still being written changes between polls: wait until it settles
                if seen.get(path) == mtime:
                    continue
                if time.time() - mtime < interval_s:
                    continue
                seen[path] = mtime
                yield self.run_file(path)
            time.sleep(interval_s)

    def close(self) -> None:
        self._drain()
        self.producer.flush(min(30.0, self.settings.publish_timeout_s))
