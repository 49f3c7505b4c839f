"""``hub status``: what an operator checks first, read from the broker itself."""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from connectors.offsets import signed_cursors
from hub.settings import installed_connectors
from hub.domain.lifecycle import ACTIVE
from hub.kafka.clients import KafkaClients
from hub.kafka.readers import dead_letters, final_leads
from hub.kafka.topics import event_ends, source_topics, worker_lag


@dataclass
class Status:
    broker: str
    brokers: int
    topics: dict[str, int]
    lag: dict[str, int]  # event topic -> events the worker group has not committed
    connectors: dict[str, dt.datetime]  # connector -> last file completed
    dead_letters: Counter[tuple[str, str]] = field(default_factory=Counter)  # (stage, reason) -> count
    open_leads: Counter[tuple[str, str]] = field(default_factory=Counter)  # (severity, rule) -> count

    def lines(self) -> list[str]:
        out = [f"broker      {self.broker} ({self.brokers} broker{'s' if self.brokers != 1 else ''})", "topics"]
        out += [f"  {name:<40} {n:>3} partitions" for name, n in self.topics.items()]
        out.append("worker lag (events not yet processed)")
        out += [f"  {topic:<40} {lag:>8}" for topic, lag in self.lag.items()]
        out.append("connectors (last file completed)")
        out += self._connector_lines()
        out.append(f"dead letters ({sum(self.dead_letters.values())})")
        out += [f"  {stage:<18} {reason:<28} {n:>6}" for (stage, reason), n in sorted(self.dead_letters.items())]
        out.append(f"open leads ({sum(self.open_leads.values())})")
        out += [f"  {severity:<9} {rule:<18} {n:>6}" for (severity, rule), n in sorted(self.open_leads.items())]
        return out

    def _connector_lines(self) -> list[str]:
        return [f"  {name:<18} {when:%Y-%m-%d %H:%M:%S %Z}" for name, when in sorted(self.connectors.items())] \
            or ["  none yet"]


def _group_lag(clients: KafkaClients) -> dict[str, int]:
    lag = dict.fromkeys(source_topics(), 0)
    for tp, behind in worker_lag(clients, event_ends(clients)).items():
        lag[tp.topic] += behind
    return lag


def collect(clients: KafkaClients) -> Status:
    metadata = clients.admin().list_topics(timeout=10)
    return Status(
        broker=clients.settings.broker_url, brokers=len(metadata.brokers),
        topics={name: len(t.partitions) for name, t in sorted(metadata.topics.items()) if not name.startswith("__")},
        lag=_group_lag(clients), connectors=_last_files(clients), dead_letters=_dead_letter_counts(clients),
        open_leads=_open_lead_counts(clients))


def _last_files(clients: KafkaClients) -> dict[str, dt.datetime]:
    """Each connector's last file completed, by its signed cursors."""
    last: dict[str, dt.datetime] = {}
    for connector in installed_connectors():
        for cursor in signed_cursors(clients, connector):
            if cursor["complete"]:
                previous = last.get(connector)
                last[connector] = max(cursor["updated_at"], previous or cursor["updated_at"])
    return last


def _dead_letter_counts(clients: KafkaClients) -> Counter[tuple[str, str]]:
    """(stage, reason) -> dead letters."""
    return Counter((letter["stage"], letter["reason_code"]) for letter in dead_letters(clients))


def _open_lead_counts(clients: KafkaClients) -> Counter[tuple[str, str]]:
    """(severity, rule) -> open leads."""
    return Counter((lead["severity"], lead["rules"][0]) for lead in final_leads(clients).values()
                   if lead["status"] in ACTIVE)  # open, acknowledged, investigating or transferred
