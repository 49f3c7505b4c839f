"""One lead's story from the audit trail (``hub audit trail LEAD_ID``): the
events that raised it, where it was published, who saw it on the board, who
answered, and who was refused and why. Work a worker replayed after a crash
is told once."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from collections.abc import Iterable

from hub.audit.entries import AuditAction, Entry
from hub.audit.verify import Report


@dataclass(frozen=True)
class _Lead:
    """What ties an entry to a lead besides its id: the events that raised
    it, the team pages that showed it, and since when."""

    lead_id: str
    evidence: frozenset[str]
    pages: frozenset[str]  # the pages that showed it: a refused look at one of them is part of its story
    since: int

    @classmethod
    def of(cls, lead_id: str, entries: Iterable[Entry]) -> _Lead:
        published = [e for e in entries if e.action is AuditAction.LEAD_PUBLISHED and e.object == lead_id]
        return cls(lead_id, _listed(published, "evidence"), _listed(published, "teams"),
                   min((e.at_ms for e in published), default=0))

    def about(self, entry: Entry) -> bool:
        """Whether the entry is part of the lead's story."""
        if entry.object == self.lead_id or entry.detail.get("claimed_lead") == self.lead_id:
            return True
        if entry.action is AuditAction.EVENT_ACCEPTED:
            return entry.object in self.evidence
        if entry.action is AuditAction.BOARD_VIEW:
            return self.lead_id in entry.detail.get("leads", "").split(",")
        if entry.action is AuditAction.BOARD_DENIED:
            return entry.object in self.pages and entry.at_ms >= self.since
        return False


def _listed(entries: Iterable[Entry], key: str) -> frozenset[str]:
    """The comma-separated values of a detail, over these entries."""
    return frozenset(v for entry in entries for v in entry.detail.get(key, "").split(",") if v)


def _proven(entries: Iterable[Entry], report: Report | None) -> list[Entry]:
    """The entries of chains a worker's key began (all of them, without a report)."""
    return [e for e in entries if report is None or report.proven(e)]


def _once(entry: Entry) -> tuple[str | None, str, str]:
    """What two tellings of one thing share."""
    # a batch replayed after a crash writes its entries again, in another chain
    if entry.source:
        return entry.source, str(entry.action), entry.object
    return entry.chain + str(entry.seq), str(entry.action), entry.object + entry.outcome


def story(entries: Iterable[Entry], lead_id: str, report: Report | None = None) -> list[Entry]:
    """The entries about the lead, in time order, each once. With the
    trail's ``report``: only entries of chains a worker's key began, and of
    two tellings of one thing the sealed one (an unsigned entry cannot hide
    a sealed one, however early it claims to be)."""
    entries = _proven(entries, report)
    lead = _Lead.of(lead_id, entries)
    seen: set[tuple[str | None, str, str]] = set()
    out = []
    for entry in sorted(entries, key=lambda e: (report is not None and not report.sealed(e), e.at_ms)):
        if not lead.about(entry):
            continue
        once = _once(entry)
        if once in seen:
            continue
        seen.add(once)
        out.append(entry)
    return sorted(out, key=lambda e: e.at_ms)


def render(entry: Entry, sealed: bool = True) -> str:
    at = dt.datetime.fromtimestamp(entry.at_ms / 1000, dt.UTC).isoformat(timespec="seconds")
    detail = ", ".join(f"{k}={v}" for k, v in sorted(entry.detail.items()) if k != "leads")
    return (f"{at}  {entry.action:<17} {entry.actor:<40} {entry.object:<28} {entry.outcome}"
            + ("" if sealed else "  (unsealed: after its chain's last signed head)")
            + (f"  reason: {entry.reason}" if entry.reason else "") + (f"  [{detail}]" if detail else ""))
