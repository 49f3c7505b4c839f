"""One lead's story from the audit trail (``hub audit trail LEAD_ID``): the
events that raised it, where it was published, who saw it on the board, who
answered, and who was refused and why. Work a worker replayed after a crash
is told once."""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from hub.audit.entries import AuditAction, Entry
from hub.audit.verify import Report


def story(entries: Iterable[Entry], lead_id: str, report: Report | None = None) -> list[Entry]:
    """The entries about the lead, in time order, each once. With the
    trail's ``report``: only entries of chains a worker's key began, and of
    two tellings of one thing the sealed one (an unsigned entry cannot hide
    a sealed one, however early it claims to be)."""
    entries = [e for e in entries if report is None or report.proven(e)]
    published = [e for e in entries if e.action is AuditAction.LEAD_PUBLISHED and e.object == lead_id]
    evidence = {e for entry in published for e in entry.detail.get("evidence", "").split(",") if e}
    # the pages that showed it: a refused look at one of them is part of its story
    pages = {t for entry in published for t in entry.detail.get("teams", "").split(",") if t}
    since = min((e.at_ms for e in published), default=0)
    seen: set[tuple[str | None, str, str]] = set()
    out = []
    for entry in sorted(entries, key=lambda e: (report is not None and not report.sealed(e), e.at_ms)):
        about = (entry.object == lead_id or entry.detail.get("claimed_lead") == lead_id
                 or (entry.action is AuditAction.EVENT_ACCEPTED and entry.object in evidence)
                 or (entry.action is AuditAction.BOARD_VIEW and lead_id in entry.detail.get("leads", "").split(","))
                 or (entry.action is AuditAction.BOARD_DENIED and entry.object in pages and entry.at_ms >= since))
        if not about:
            continue
        # a batch replayed after a crash writes its entries again, in another chain
        once = (entry.source, str(entry.action), entry.object) if entry.source else \
            (entry.chain + str(entry.seq), str(entry.action), entry.object + entry.outcome)
        if once in seen:
            continue
        seen.add(once)
        out.append(entry)
    return sorted(out, key=lambda e: e.at_ms)


def render(entry: Entry, sealed: bool = True) -> str:
    at = dt.datetime.fromtimestamp(entry.at_ms / 1000, dt.timezone.utc).isoformat(timespec="seconds")
    detail = ", ".join(f"{k}={v}" for k, v in sorted(entry.detail.items()) if k != "leads")
    return (f"{at}  {entry.action:<17} {entry.actor:<40} {entry.object:<28} {entry.outcome}"
            + ("" if sealed else "  (unsealed: after its chain's last signed head)")
            + (f"  reason: {entry.reason}" if entry.reason else "") + (f"  [{detail}]" if detail else ""))
