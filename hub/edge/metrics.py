"""Prometheus metrics. Names follow Prometheus conventions: ``hub_`` prefix,
base units (seconds), ``_total`` counters. Label values are connectors,
agencies, rules and reasons: never a business ID or a person."""
from __future__ import annotations

import collections
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hub.flow.effects import Effects, Observation, Seen, Unresolved
from hub.edge.httpd import serve_metrics
from hub.settings import HttpSettings

# Leads are answered in hours and closed in days.
LIFECYCLE_BUCKETS = tuple(h * 3600 for h in (1, 4, 12, 24, 48, 72, 168, 360, 720, 1440, 2160))
# Days, in seconds: a report within a day, three (国务院令第310号), a week, two, a month, a quarter, a year.
REPORTING_BUCKETS = tuple(d * 86_400 for d in (1, 3, 7, 15, 30, 90, 365))
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class ConnectorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records_read = Counter("hub_connector_records_read_total",
                                    "Source rows read by a connector", ["connector"], registry=registry)
        self.events_published = Counter("hub_connector_events_published_total",
                                        "Events published by a connector", ["connector", "topic"],
                                        registry=registry)
        self.records_rejected = Counter("hub_connector_records_rejected_total",
                                        "Rows sent to the dead-letter topic, by reason",
                                        ["connector", "reason"], registry=registry)
        self.last_success = Gauge("hub_connector_last_success_timestamp_seconds",
                                  "When a connector last finished a file without error",
                                  ["connector"], registry=registry)
        self.publish_latency = Histogram("hub_connector_publish_latency_seconds",
                                         "From produce() to the broker's acknowledgement",
                                         ["connector"], buckets=LATENCY_BUCKETS, registry=registry)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events_processed = Counter("hub_worker_events_processed_total",
                                        "Events processed by the workers", ["agency"], registry=registry)
        self.duplicates = Counter("hub_worker_duplicates_suppressed_total",
                                  "Events already seen (same agency and source record)",
                                  ["agency"], registry=registry)
        self.near_duplicates = Counter("hub_worker_near_duplicates_merged_total",
                                       "Reports of a finding already held under another source ID (county and "
                                       "city systems), merged into it", ["agency"], registry=registry)
        self.dead_letters = Counter("hub_worker_dead_letters_total",
                                    "Events the worker could not process", ["reason"], registry=registry)
        self.timer_failures = Counter("hub_worker_timer_failures_total",
                                      "Runs of a worker's periodic job (clock tick, audit head or check, lag, "
                                      "commit healing) that failed; each runs again at its next interval",
                                      ["timer"], registry=registry)
        self.untrusted = Counter("hub_worker_untrusted_records_total",
                                 "Records refused because their sender is not proven or not allowed to send "
                                 "them (unsigned, tampered, replayed, unknown or revoked key, wrong agency or "
                                 "team), by reason; each is also a dead letter", ["reason"], registry=registry)
        self.leads_published = Counter("hub_worker_leads_published_total",
                                       "Lead versions published, by rule family", ["rule"],
                                       registry=registry)
        self.event_to_lead = Histogram("hub_worker_event_to_lead_latency_seconds",
                                       "From an event's arrival at the hub to the lead it updated",
                                       buckets=LATENCY_BUCKETS, registry=registry)
        self.lag_seconds = Gauge("hub_worker_consumer_lag_seconds",
                                 "Age (since arrival at the hub) of the oldest event in the batch being "
                                 "processed; 0 when caught up", registry=registry)
        self.lag_messages = Gauge("hub_worker_consumer_lag_messages",
                                  "Events on the partitions this worker owns that it has not read yet",
                                  ["topic", "partition"], registry=registry)
        self.fenced_batches = Counter("hub_worker_fenced_batches_total",
                                      "Batches dropped unwritten because this worker no longer owned their "
                                      "partitions (a rebalance, or a pause beyond the session timeout)",
                                      registry=registry)
        self.commit_stalls_healed = Counter("hub_worker_commit_stalls_healed_total",
                                            "Partitions replayed from their committed offset after "
                                            "Faust's commits stalled behind a gap", registry=registry)
        self.leads_reopened = Counter("hub_worker_leads_reopened_total",
                                      "Closed leads reopened by new adverse evidence", registry=registry)
        self.escalations = Counter("hub_worker_lead_escalations_total",
                                   "Overdue leads escalated to their team and its parent jurisdiction, and "
                                   "re-checks (回头看) falling due", ["level"], registry=registry)
        self.ticks = Counter("hub_worker_clock_ticks_total",
                             "Clock ticks taken: each checked one partition's deadlines (lead, transfer, "
                             "re-check, rectification)", registry=registry)
        self.reporting_delay = Histogram("hub_reporting_delay_seconds",
                                         "迟报: from a record's own date (announcement, sampling, inspection, "
                                         "decision, police 受案; start of that day, CST) to its arrival at the hub",
                                         ["connector", "kind"], buckets=REPORTING_BUCKETS, registry=registry)
        self.late_critical = Counter("hub_late_critical_findings_total",
                                     "Findings in a CRITICAL lead that reached the hub later than the "
                                     "configured limit (lifecycle.late_report_days) after their own date",
                                     ["connector"], registry=registry)
        self.signals = Counter("hub_worker_signals_total",
                               "Messages between businesses and the indexes they share (complainants, areas, "
                               "legal representatives), by kind: SIGNAL, SERIAL, MEMBER, LINK",
                               ["kind"], registry=registry)
        self.time_to_acknowledge = Histogram("hub_lead_time_to_acknowledge_seconds",
                                             "From a lead's (re)opening to its team's first answer",
                                             ["severity"], buckets=LIFECYCLE_BUCKETS, registry=registry)
        self.time_to_close = Histogram("hub_lead_time_to_close_seconds",
                                       "From a lead's (re)opening to its closure", ["severity"],
                                       buckets=LIFECYCLE_BUCKETS, registry=registry)
        self.resolved = Counter("hub_resolver_resolved_total",
                                "Records without a USCC tied to a business, by method (a record that moves "
                                "again when a new candidate changes the answer counts again)", ["method"],
                                registry=registry)
        self.unresolved = Gauge("hub_resolver_unresolved_records",
                                "Records without a USCC not tied to a business, on the partitions this worker "
                                "owns: parked (no candidate yet) or ambiguous (several)", ["state"],
                                registry=registry)
        self.oldest_parked_age = Gauge("hub_resolver_oldest_parked_age_seconds",
                                       "Age of the oldest unresolved record on the partitions this worker owns; "
                                       "0 when there is none", registry=registry)
        self.infrastructure_failures = Counter(
            "hub_worker_infrastructure_failures_total",
            "Attempts at a batch that the infrastructure failed (schema registry, broker, state write), by "
            "stage; the batch is retried, never acknowledged", ["stage"], registry=registry)
        self.infrastructure_failing = Gauge(
            "hub_worker_infrastructure_failing",
            "1 while this worker retries a batch the infrastructure failed, else 0", registry=registry)
        self.broker_reachable = Gauge(
            "hub_worker_broker_reachable",
            "1 when this worker's last metadata request to the broker was answered, else 0", registry=registry)
        self.table_entries = Gauge("hub_worker_table_entries",
                                   "Entries in the worker's state tables on this worker", ["table"],
                                   registry=registry)


    def observe(self, effects: Effects, now: float) -> None:
        """What the flow saw in a batch, as metrics."""
        counters = self._counters()
        # A batch holds hundreds of observations: a counter is incremented
        # once per label, a histogram's child looked up once per label.
        counted: collections.Counter[tuple[Seen, str]] = collections.Counter()
        delays: dict[tuple[str, str], Any] = {}
        for o in effects.observations:
            if o.seen in counters:
                counted[o.seen, o.label] += 1
            elif o.seen is Seen.REPORTING_DELAY:
                self._reporting_delay(delays, o).observe(o.value)
            else:
                self._observe_one(o)
        for (seen, label), n in counted.items():
            counters[seen].labels(label).inc(n)
        if effects.oldest_received_at is not None:
            self.lag_seconds.set(max(0.0, now - effects.oldest_received_at))
        self.report_unresolved(effects.unresolved, now)

    def _counters(self) -> dict[Seen, Counter]:
        """The observations counted by label."""
        return {Seen.EVENT: self.events_processed, Seen.DUPLICATE: self.duplicates,
                Seen.NEAR_DUPLICATE: self.near_duplicates, Seen.DEAD_LETTER: self.dead_letters,
                Seen.LEAD_PUBLISHED: self.leads_published, Seen.ESCALATED: self.escalations,
                Seen.RESOLVED: self.resolved, Seen.UNTRUSTED: self.untrusted, Seen.SIGNAL: self.signals}

    def _reporting_delay(self, delays: dict[tuple[str, str], Any], o: Observation) -> Any:
        """The reporting delay's histogram child for the observation's labels, looked up once a batch."""
        child = delays.get((o.label, o.kind))
        if child is None:
            child = delays[o.label, o.kind] = self.reporting_delay.labels(o.label, o.kind)
        return child

    def _observe_one(self, o: Observation) -> None:
        """An observation that is neither counted by label nor a reporting delay."""
        if o.seen is Seen.REOPENED:
            self.leads_reopened.inc()
        elif o.seen is Seen.EVENT_TO_LEAD:
            self.event_to_lead.observe(o.value)
        elif o.seen is Seen.ACKNOWLEDGED_AFTER:
            self.time_to_acknowledge.labels(o.label).observe(o.value)
        elif o.seen is Seen.CLOSED_AFTER:
            self.time_to_close.labels(o.label).observe(o.value)
        elif o.seen is Seen.TICK:
            self.ticks.inc()
        elif o.seen is Seen.LATE_CRITICAL:
            self.late_critical.labels(o.label).inc()

    def report_unresolved(self, unresolved: Unresolved, now: float) -> None:
        self.unresolved.labels("parked").set(unresolved.parked)
        self.unresolved.labels("ambiguous").set(unresolved.ambiguous)
        oldest = unresolved.oldest_parked_ms
        self.oldest_parked_age.set(0 if oldest is None else max(0.0, now - oldest / 1000))


class AuditMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.entries = Counter("hub_audit_entries_total", "Audit entries this worker wrote, by action",
                               ["action"], registry=registry)
        self.last_head = Gauge("hub_audit_last_head_timestamp_seconds",
                               "When this worker last signed its audit chain's head (0: not yet)", registry=registry)
        self.verify_failures = Counter("hub_audit_verify_failures_total",
                                       "Breaks this worker found checking the recent audit trail (an edited, "
                                       "deleted or forged entry or head)", registry=registry)


DEFAULT_LIMITS = HttpSettings()  # frozen: one instance serves every server


class Metrics:
    """All of a process's metrics in one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connector = ConnectorMetrics(self.registry)
        self.worker = WorkerMetrics(self.registry)
        self.audit = AuditMetrics(self.registry)

    def serve(self, host: str, port: int, limits: HttpSettings = DEFAULT_LIMITS) -> int:
        """Expose /metrics; returns the port (0 picks a free one)."""
        return int(serve_metrics(self.registry, host, port, limits).server_port)
