"""``hub unresolved``: records without a USCC the hub could not tie to a
business yet, read from the resolver's state changelog."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from hub.domain.pii import describe
from hub.domain.resolution import ResolverState
from hub.kafka.clients import KafkaClients
from hub.kafka.topics import changelog_topic, read_to_end
from hub.flow.topics import RESOLVER_TABLE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unresolved:
    event_id: str
    name: str  # as the record wrote it
    region_code: str | None
    lookup_key: str  # where it is parked
    provisional_key: str  # where its evidence counts meanwhile
    ambiguous: bool
    reason: str
    candidates: tuple[str, ...]
    age_s: float

    def lines(self) -> list[str]:
        state = "AMBIGUOUS" if self.ambiguous else "PARKED"
        out = [f"{state:<9}  {_age(self.age_s):>6}  {self.event_id}  {self.name}  region {self.region_code or '?'}",
               f"           why: {self.reason}"]
        if self.candidates:
            out.append(f"           candidates: {', '.join(self.candidates)}")
        out.append(f"           parked at {self.lookup_key}; counts meanwhile under {self.provisional_key}")
        return out


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def collect_unresolved(clients: KafkaClients, now: float | None = None) -> list[Unresolved]:
    """Every unresolved record, oldest first. The changelog may hold several
    versions of a state (the cleaner compacts only rolled segments): the last
    one per key counts."""
    latest: dict[bytes, tuple[str, bytes | None]] = {}
    for message in read_to_end(clients, changelog_topic(clients.settings, RESOLVER_TABLE)):
        key = message.key()
        if key is not None:
            latest[key] = (f"{message.topic()}[{message.partition()}]@{message.offset()}", message.value())
    return unresolved_in(latest, time.time() if now is None else now)


def unresolved_in(latest: dict[bytes, tuple[str, bytes | None]], now: float) -> list[Unresolved]:
    """The unresolved records of the resolver's latest states (by key: where
    the state sits, its bytes). A state that cannot be read is left out and
    logged by where it sits, as the workers leave it: one bad state must not
    hide the others."""
    found = []
    for key, (where, raw) in latest.items():
        if not raw:
            continue
        try:
            state = ResolverState.from_bytes(raw)
        except Exception as exc:  # whatever the bytes hold
            log.warning("a resolver state at %s cannot be read: %s", where, describe(exc))
            continue
        found += [Unresolved(r.event_id, r.display_name, r.region_code, key.decode(errors="replace"),
                             r.provisional_key, r.decision.ambiguous, r.decision.reason, r.decision.candidates,
                             max(0.0, now - r.parked_ms / 1000)) for r in state.unresolved()]
    return sorted(found, key=lambda u: (-u.age_s, u.event_id))


def report(records: list[Unresolved]) -> list[str]:
    ambiguous = sum(r.ambiguous for r in records)
    head = f"{len(records)} unresolved records ({len(records) - ambiguous} parked, {ambiguous} ambiguous)"
    if records:
        head += f"; oldest {_age(records[0].age_s)}"
    return [head, *(line for r in records for line in r.lines())]
