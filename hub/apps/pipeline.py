"""The whole pipeline in one process: connectors over files, a worker until
the events are all processed. ``hub backfill`` and ``hub demo`` use it."""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

from confluent_kafka import TopicPartition

from connectors.discovery import load
from connectors.runner import ConnectorRunner, RunSummary
from hub.domain.lifecycle import ACTIVE
from hub.domain.pii import PersonalDataHasher
from hub.edge.metrics import Metrics
from hub.kafka.clients import KafkaClients
from hub.kafka.readers import final_leads
from hub.edge.feedback import publish_ticks
from hub.kafka.topics import event_ends, lag_consumer, worker_lag
from hub.trust import Role, signer
from hub.flow import Seen
from hub.edge.worker import Tally, WorkerHandle, run_worker


@dataclass
class PipelineSummary:
    runs: list[RunSummary] = field(default_factory=list)
    events_processed: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    leads: dict[str, dict[str, Any]] = field(default_factory=dict)  # final state per lead_id
    elapsed_s: float = 0.0  # from the first connector starting to every event processed
    tally: Tally = field(default_factory=Tally)  # what the worker saw, and where its time went

    def lines(self) -> list[str]:
        return [run.line() for run in self.runs] + [self._records_line(), self._events_line(), self._leads_line()]

    def _records_line(self) -> str:
        rejected: Counter[str] = Counter()
        for run in self.runs:
            rejected.update(run.rejected)
        read = sum(r.rows_read for r in self.runs)
        return (f"records: {read} read, {read - sum(rejected.values())} accepted, {sum(rejected.values())} rejected"
                + (f" ({', '.join(f'{k}={v}' for k, v in sorted(rejected.items()))})" if rejected else ""))

    def _events_line(self) -> str:
        return (f"events: {sum(r.events_published for r in self.runs)} published, {self.events_processed} processed, "
                f"{self.duplicates} duplicates suppressed, {self.near_duplicates} near-duplicate reports merged")

    def _leads_line(self) -> str:
        open_leads = [lead for lead in self.leads.values() if lead["status"] in ACTIVE]
        superseded = sum(lead["status"] == "SUPERSEDED" for lead in self.leads.values())
        by_rule = Counter(rule for lead in open_leads for rule in lead["rules"])
        return (f"leads: {len(open_leads)} open (" + ", ".join(f"{k}={n}" for k, n in sorted(by_rule.items()))
                + f"), {superseded} superseded")


def run_connectors(clients: KafkaClients, sources: list[tuple[str, Path]], metrics: Metrics) -> list[RunSummary]:
    runs = []
    settings = clients.settings
    hasher = PersonalDataHasher(settings.pii_key)
    for name, path in sources:
        runner = ConnectorRunner(clients, load(name)(hasher, settings.validation), metrics)
        try:
            runs.append(runner.run_file(path))
        finally:
            runner.close()
    return runs


def wait_until_processed(clients: KafkaClients, timeout_s: float) -> None:
    """Block until the workers' consumer group has committed every event now on
    the event topics, which it does only after publishing their leads, and
    every message entity resolution sent meanwhile (each can send more: the
    ends are read again until they stay put). One consumer of the workers'
    group and the process's shared reader serve every look of the wait."""
    ends = event_ends(clients)
    with lag_consumer(clients) as consumer:
        deadline = time.monotonic() + timeout_s
        behind: dict[TopicPartition, int] = {}
        while time.monotonic() < deadline:
            # Negative: the workers committed past ``ends`` (new messages since they were read).
            behind = {tp: n for tp, n in worker_lag(clients, ends, consumer).items() if n > 0}
            if not behind:
                now = event_ends(clients)
                if now == ends:
                    return
                ends = now
                continue
            time.sleep(0.2)
        waiting = ", ".join(f"{tp.topic}[{tp.partition}] {n}"
                            for tp, n in sorted(behind.items(), key=lambda i: (i[0].topic, i[0].partition)))
        raise TimeoutError(f"the workers did not process every event within {timeout_s}s; uncommitted: {waiting}")


def wait_for_ticks(handle: WorkerHandle, ticks: int, timeout_s: float) -> None:
    """Block until the in-process worker has checked the deadlines behind
    ``ticks`` clock ticks and published what they changed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if handle.tally is not None and handle.tally.seen[Seen.TICK] >= ticks:
            return
        time.sleep(0.1)
    raise TimeoutError(f"the worker did not take the {ticks} clock ticks within {timeout_s}s")


Feeder = Callable[[KafkaClients, list[tuple[str, Path]], Metrics], list[RunSummary]]


def run_pipeline(clients: KafkaClients, sources: list[tuple[str, Path]], metrics: Metrics,
                 timeout_s: float = 900.0, stop_when_done: bool = True,
                 on_done: Callable[[PipelineSummary], None] | None = None,
                 feeder: Feeder = run_connectors) -> PipelineSummary:
    """Connectors in a thread, the Faust worker in this one (it needs the main
    thread for its signal handlers). When every event is processed the feeder
    stops the worker, gracefully.

    A run that stops when done drives the lifecycle's clock itself: one tick
    at the end, once every event is in, and none while they arrive, so its
    leads (rectifications overdue by now among them) do not depend on when a
    periodic tick happened to fall. ``clients``: the process's, for the
    feeder, the waits and the worker alike."""
    if stop_when_done:
        clients = clients.with_settings(clients.settings.with_overrides(lifecycle_tick_s=0))
    settings = clients.settings
    summary = PipelineSummary()
    failure: list[BaseException] = []
    started = threading.Event()
    handle = WorkerHandle()

    def feed() -> None:
        try:
            started.wait(120)
            t0 = time.perf_counter()
            summary.runs = feeder(clients, sources, metrics)
            wait_until_processed(clients, timeout_s)
            summary.elapsed_s = time.perf_counter() - t0
            if stop_when_done:
                ticked = publish_ticks(clients, time.time(), signer(settings, Role.WORKER, settings.worker_name))
                wait_for_ticks(handle, ticked, timeout_s)
            if on_done is not None:
                on_done(summary)
        except BaseException as exc:  # reported by the main thread after the worker stops
            failure.append(exc)
        finally:
            if stop_when_done or failure:
                handle.stop()

    threading.Thread(target=feed, name="hub-feeder", daemon=True).start()
    tally = run_worker(clients, metrics, started, handle=handle)
    if failure:
        raise failure[0]
    summary.tally = tally
    summary.events_processed = tally.seen[Seen.EVENT]
    summary.duplicates = tally.seen[Seen.DUPLICATE]
    summary.near_duplicates = tally.seen[Seen.NEAR_DUPLICATE]
    summary.leads = final_leads(clients)
    return summary
