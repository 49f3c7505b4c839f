"""A lead's life after publication: teams' status changes, deadlines and
the 回头看 re-check. Plain functions over a ``LeadMark``; no Kafka.

OPEN -> ACKNOWLEDGED -> INVESTIGATING -> TRANSFERRED (to the police) -> CLOSED,
with any step skippable and REJECTED (a false lead, with a reason) possible
from every active status. CLOSED and REJECTED are final for teams; only new
adverse evidence reopens a closed lead.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from hub.domain.rules import SEVERITY, RuleFamily
from hub.settings import LifecycleSettings

ACTIVE = ("OPEN", "ACKNOWLEDGED", "INVESTIGATING", "TRANSFERRED")
ACTIONS = ("ACKNOWLEDGED", "INVESTIGATING", "TRANSFERRED", "CLOSED", "REJECTED")
_ALLOWED_FROM = {
    "ACKNOWLEDGED": ("OPEN",),
    "INVESTIGATING": ("OPEN", "ACKNOWLEDGED"),
    "TRANSFERRED": ("OPEN", "ACKNOWLEDGED", "INVESTIGATING"),
    "CLOSED": ACTIVE,
    "REJECTED": ACTIVE,
}
ACKNOWLEDGE_OVERDUE, CLOSE_OVERDUE, RECHECK_DUE = "ACKNOWLEDGE_OVERDUE", "CLOSE_OVERDUE", "RECHECK_DUE"


class FeedbackRejected(ValueError):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass
class LeadMark:
    """What the hub remembers of a lead it published, and where it stands."""

    first_seen_ms: int
    fingerprint: str
    rule: str
    window_start: dt.date
    evidence: tuple[str, ...] = ()
    status: str = "OPEN"
    opened_ms: int = 0  # first publication, or the latest reopening: deadlines run from here
    history: list[tuple[int, str, str | None, str | None]] = field(default_factory=list)
    escalated: tuple[str, ...] = ()  # escalations already raised since opened_ms
    chained: tuple[str, ...] = ()  # events that reopened the lead after closure
    reopened: int = 0
    closed_ms: int | None = None
    # The escalation the last record published carried: a worker that
    # publishes that record again for a writer that died sends it alike.
    announced: str | None = None
    # Not stored: what the next published record must carry.
    dirty: bool = False
    escalation: str | None = None

    @property
    def severity(self) -> str:
        return SEVERITY[RuleFamily(self.rule)].value

    def note(self, at_ms: int, status: str, team: str | None = None, note: str | None = None) -> None:
        self.history.append((at_ms, status, team, note))
        self.dirty = True

    def to_json(self) -> list[object]:
        return [self.first_seen_ms, self.fingerprint, self.rule, self.window_start.toordinal(), list(self.evidence),
                self.status, self.opened_ms, [list(h) for h in self.history], list(self.escalated),
                list(self.chained), self.reopened, self.closed_ms, self.announced]

    @classmethod
    def from_json(cls, raw: list[object]) -> "LeadMark":
        if len(raw) == 6:  # written before the lifecycle: open since first seen, no history yet
            raw = [*raw, raw[0], [], [], [], 0, None]
        # 12 fields: written before escalations were kept for republishing.
        # More than 13: written by a newer release, whose fields this one ignores.
        raw = [*raw, None][:13]
        first, fp, rule, ws, evidence, status, opened, history, escalated, chained, reopened, closed, announced = raw
        return cls(int(first), str(fp), str(rule), dt.date.fromordinal(int(ws)),  # type: ignore
                   tuple(evidence), str(status),  # type: ignore
                   int(opened), [tuple(h) for h in history], tuple(escalated), tuple(chained),  # type: ignore
                   int(reopened), closed, announced)  # type: ignore


def apply_feedback(mark: LeadMark, action: str, team: str | None, note: str | None, at_ms: int) -> bool:
    """A team's status change; raises FeedbackRejected when it cannot apply.
    False when the lead's history holds it already: the same feedback
    replayed after a crash is no second change (and no invalid transition)."""
    if (at_ms, action, team, note) in mark.history:
        return False
    if action not in ACTIONS:
        raise FeedbackRejected("unknown_action", f"unknown action {action!r}")
    if mark.status not in _ALLOWED_FROM[action]:
        raise FeedbackRejected("invalid_transition", f"lead is {mark.status}: cannot become {action}")
    if action in ("CLOSED", "REJECTED") and not (note or "").strip():
        raise FeedbackRejected("missing_note", f"{action} needs {'an outcome' if action == 'CLOSED' else 'a reason'}")
    mark.status = action
    if action == "CLOSED":
        mark.closed_ms = at_ms
    mark.note(at_ms, action, team, note)
    return True


def reopen(mark: LeadMark, event_id: str, at_ms: int) -> None:
    """New adverse evidence after closure: the lead is open again, the new
    event chained to it, its deadlines restarted."""
    mark.status = "OPEN"
    mark.chained += (event_id,)
    mark.reopened += 1
    mark.opened_ms = at_ms
    mark.escalated = ()
    mark.note(at_ms, "REOPENED", None, f"new adverse evidence {event_id}")


def deadlines(mark: LeadMark, lifecycle: LifecycleSettings) -> dict[str, int]:
    """The deadlines that still apply: escalation level -> epoch ms."""
    out: dict[str, int] = {}
    if mark.status == "OPEN":
        out[ACKNOWLEDGE_OVERDUE] = mark.opened_ms + lifecycle.acknowledge_ms(mark.severity)
    if mark.status in ACTIVE:
        out[CLOSE_OVERDUE] = mark.opened_ms + lifecycle.close_ms(mark.severity)
    if mark.status == "CLOSED" and mark.closed_ms is not None:
        out[RECHECK_DUE] = mark.closed_ms + lifecycle.recheck_ms
    return out


def pending_deadline(mark: LeadMark, lifecycle: LifecycleSettings) -> int | None:
    """The earliest deadline not yet escalated."""
    due = [at for level, at in deadlines(mark, lifecycle).items() if level not in mark.escalated]
    return min(due) if due else None


def escalate_if_due(mark: LeadMark, lifecycle: LifecycleSettings, now_ms: int) -> str | None:
    """Raise the most urgent escalation whose deadline has passed, once."""
    for level, at in sorted(deadlines(mark, lifecycle).items(), key=lambda kv: kv[1]):
        if at <= now_ms and level not in mark.escalated:
            mark.escalated += (level,)
            mark.escalation = level
            mark.note(now_ms, f"ESCALATED_{level}")
            return level
    return None


def is_overdue(lead: dict[str, Any]) -> bool:
    """A published lead record past a deadline it was escalated for, and still active."""
    if lead["status"] not in ACTIVE:
        return False
    since = max((i for i, h in enumerate(lead["history"]) if h["status"] == "REOPENED"), default=-1)
    raised = {h["status"] for h in lead["history"][since + 1:]}
    return f"ESCALATED_{CLOSE_OVERDUE}" in raised or (
        lead["status"] == "OPEN" and f"ESCALATED_{ACKNOWLEDGE_OVERDUE}" in raised)
