"""A lead's life after publication: teams' status changes, deadlines and
the 回头看 re-check. Plain functions over a ``LeadMark``; no Kafka.

OPEN -> ACKNOWLEDGED -> INVESTIGATING -> TRANSFERRED (to the police) -> CLOSED,
with any step skippable and REJECTED (a false lead, with a reason) possible
from every active status. CLOSED and REJECTED are final for teams; only new
adverse evidence reopens a closed lead.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hub.domain.rules import SEVERITY, RuleFamily
from hub.settings import LifecycleSettings



class LeadStatus(StrEnum):
    """Where a lead stands (线索状态)."""

    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"  # 已签收
    INVESTIGATING = "INVESTIGATING"  # 核查中
    TRANSFERRED = "TRANSFERRED"  # 已移送公安
    CLOSED = "CLOSED"  # 已办结
    REJECTED = "REJECTED"  # 不予立案: a false lead
    SUPERSEDED = "SUPERSEDED"  # a late, older event re-drew its window


class Action(StrEnum):
    """What a team's feedback does to a lead; TICK is the hub's clock, not a team's."""

    ACKNOWLEDGED = "ACKNOWLEDGED"
    INVESTIGATING = "INVESTIGATING"
    TRANSFERRED = "TRANSFERRED"
    CLOSED = "CLOSED"
    REJECTED = "REJECTED"
    TICK = "TICK"


class Escalation(StrEnum):
    ACKNOWLEDGE_OVERDUE = "ACKNOWLEDGE_OVERDUE"
    CLOSE_OVERDUE = "CLOSE_OVERDUE"
    RECHECK_DUE = "RECHECK_DUE"  # 回头看


ACTIVE = frozenset({LeadStatus.OPEN, LeadStatus.ACKNOWLEDGED, LeadStatus.INVESTIGATING, LeadStatus.TRANSFERRED})
_ALLOWED_FROM: dict[Action, frozenset[LeadStatus]] = {
    Action.ACKNOWLEDGED: frozenset({LeadStatus.OPEN}),
    Action.INVESTIGATING: frozenset({LeadStatus.OPEN, LeadStatus.ACKNOWLEDGED}),
    Action.TRANSFERRED: frozenset({LeadStatus.OPEN, LeadStatus.ACKNOWLEDGED, LeadStatus.INVESTIGATING}),
    Action.CLOSED: ACTIVE,
    Action.REJECTED: ACTIVE,
}
ACTIONS = tuple(_ALLOWED_FROM)  # the actions teams may take
ACKNOWLEDGE_OVERDUE, CLOSE_OVERDUE, RECHECK_DUE = Escalation


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
    status: LeadStatus = LeadStatus.OPEN
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

    def copy(self) -> "LeadMark":
        return dataclasses.replace(self, history=list(self.history))

    def note(self, at_ms: int, status: str, team: str | None = None, note: str | None = None) -> None:
        self.history.append((at_ms, str(status), team, note))
        self.dirty = True

    def to_json(self) -> list[object]:
        return [self.first_seen_ms, self.fingerprint, self.rule, self.window_start.toordinal(), list(self.evidence),
                self.status, self.opened_ms, [list(h) for h in self.history], list(self.escalated),
                list(self.chained), self.reopened, self.closed_ms, self.announced]

    @classmethod
    def from_json(cls, raw: list[Any]) -> "LeadMark":
        """Fields as written by ``to_json`` (older layouts: ``hub.domain.storage``); any
        after them, from a newer release, are ignored."""
        first, fp, rule, ws, evidence, status, opened, history, escalated, chained, reopened, closed, announced = \
            raw[:13]
        return cls(int(first), str(fp), str(rule), dt.date.fromordinal(int(ws)), tuple(evidence),
                   LeadStatus(status), int(opened), [(int(a), str(s), t, n) for a, s, t, n in history],
                   tuple(escalated), tuple(chained), int(reopened), closed, announced)


def apply_feedback(mark: LeadMark, action: str, team: str | None, note: str | None, at_ms: int) -> bool:
    """A team's status change; raises FeedbackRejected when it cannot apply.
    False when the lead's history holds it already: the same feedback
    replayed after a crash is no second change (and no invalid transition)."""
    if (at_ms, action, team, note) in mark.history:
        return False
    if any(by == team and earlier > at_ms for earlier, _, by, _ in mark.history):
        # A team answers in order: an answer older than its last on this lead
        # is a copy of an old record (a CLOSED replayed after a reopening).
        raise FeedbackRejected("replayed", "older than this team's last answer on the lead")
    action = check_feedback(mark.status, action, note)
    mark.status = LeadStatus(action.value)
    if action is Action.CLOSED:
        mark.closed_ms = at_ms
    mark.note(at_ms, action, team, note)
    return True


def check_feedback(status: str, action: str, note: str | None) -> Action:
    """The action, if a lead of this status can take it with this note;
    else raises FeedbackRejected with the reason."""
    if action not in ACTIONS:
        raise FeedbackRejected("unknown_action", f"unknown action {action!r}")
    checked = Action(action)
    if status not in _ALLOWED_FROM[checked]:
        raise FeedbackRejected("invalid_transition", f"lead is {status}: cannot become {checked}")
    if checked in (Action.CLOSED, Action.REJECTED) and not (note or "").strip():
        raise FeedbackRejected("missing_note",
                               f"{checked} needs {'an outcome' if checked is Action.CLOSED else 'a reason'}")
    return checked


def reopen(mark: LeadMark, event_id: str, at_ms: int) -> None:
    """New adverse evidence after closure: the lead is open again, the new
    event chained to it, its deadlines restarted."""
    mark.status = LeadStatus.OPEN
    mark.chained += (event_id,)
    mark.reopened += 1
    mark.opened_ms = at_ms
    mark.escalated = ()
    mark.note(at_ms, "REOPENED", None, f"new adverse evidence {event_id}")


def deadlines(mark: LeadMark, lifecycle: LifecycleSettings) -> dict[str, int]:
    """The deadlines that still apply: escalation level -> epoch ms."""
    out: dict[str, int] = {}
    if mark.status is LeadStatus.OPEN:
        out[ACKNOWLEDGE_OVERDUE] = mark.opened_ms + lifecycle.acknowledge_ms(mark.severity)
    if mark.status in ACTIVE:
        out[CLOSE_OVERDUE] = mark.opened_ms + lifecycle.close_ms(mark.severity)
    if mark.status is LeadStatus.CLOSED and mark.closed_ms is not None:
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
