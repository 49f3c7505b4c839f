"""A lead's life after publication: teams' status changes, deadlines and
the 回头看 re-check. Plain functions over a ``LeadMark``; no Kafka.

OPEN -> ACKNOWLEDGED -> INVESTIGATING -> TRANSFERRED (to the police) -> CLOSED,
with any step skippable and REJECTED (a false lead, with a reason) possible
from every active status. CLOSED and REJECTED are final for teams; only new
adverse evidence reopens a closed lead. A closed lead becomes RECHECKED when
a later compliant inspection or passed sample proves its 回头看 (see
``hub.domain.followup``, which also links the police's own records to a
criminal referral).

A criminal referral is tracked through its transfer (行刑衔接, 国务院令第310号):
TRANSFER_OVERDUE when it is not transferred in time, TRANSFER_UNFILED when
the police have not taken it up in time after the transfer, NOT_TRANSFERRED
when it is closed or rejected without ever being transferred. Those three
flag the lead for the oversight teams of its jurisdiction from then on.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from collections.abc import Iterable

from hub.domain.events import cst_start_ms
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
    RECHECKED = "RECHECKED"  # 回头看 done: a later compliant inspection or passed sample


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
    RECHECK_OVERDUE = "RECHECK_OVERDUE"  # no evidence of the re-check by its date plus grace
    TRANSFER_OVERDUE = "TRANSFER_OVERDUE"  # a criminal referral not transferred in time
    TRANSFER_UNFILED = "TRANSFER_UNFILED"  # transferred, and no police 受案/立案 in time
    NOT_TRANSFERRED = "NOT_TRANSFERRED"  # a criminal referral closed or rejected untransferred
    RECTIFICATION_OVERDUE = "RECTIFICATION_OVERDUE"  # raised with the lead, not by a deadline


class LinkKind(StrEnum):
    """What a lead's follow-up link points at (RASFF-style chaining)."""

    POLICE_ACCEPTED = "POLICE_ACCEPTED"  # the police 受案 record on the business
    POLICE_FILED = "POLICE_FILED"  # the police 立案 (or a later step) record
    POLICE_DROPPED = "POLICE_DROPPED"  # the police 撤案 record, and the reverse referral it opened
    RECHECKED = "RECHECKED"  # the compliant inspection or passed sample that proved the 回头看
    RECTIFIED = "RECTIFIED"  # the compliant inspection that confirmed a rectification
    REFERRAL = "REFERRAL"  # on a reverse referral: the criminal referral the police dropped


# Escalations that bring a lead to the oversight teams (行政执法监督).
OVERSIGHT = frozenset({Escalation.TRANSFER_OVERDUE, Escalation.TRANSFER_UNFILED, Escalation.NOT_TRANSFERRED})
WITHDRAWN = "WITHDRAWN_"  # a history entry: the escalation after it, withdrawn on evidence
TAKEN_UP = frozenset({LinkKind.POLICE_ACCEPTED, LinkKind.POLICE_FILED})  # the links of the police taking a case up


ACTIVE = frozenset({LeadStatus.OPEN, LeadStatus.ACKNOWLEDGED, LeadStatus.INVESTIGATING, LeadStatus.TRANSFERRED})
_ALLOWED_FROM: dict[Action, frozenset[LeadStatus]] = {
    Action.ACKNOWLEDGED: frozenset({LeadStatus.OPEN}),
    Action.INVESTIGATING: frozenset({LeadStatus.OPEN, LeadStatus.ACKNOWLEDGED}),
    Action.TRANSFERRED: frozenset({LeadStatus.OPEN, LeadStatus.ACKNOWLEDGED, LeadStatus.INVESTIGATING}),
    Action.CLOSED: ACTIVE,
    Action.REJECTED: ACTIVE,
}
ACTIONS = tuple(_ALLOWED_FROM)  # the actions teams may take
ACKNOWLEDGE_OVERDUE, CLOSE_OVERDUE, RECHECK_DUE = (Escalation.ACKNOWLEDGE_OVERDUE, Escalation.CLOSE_OVERDUE,
                                                   Escalation.RECHECK_DUE)


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
    # Follow-ups: (LinkKind, event ID or "", date ordinal, lead ID or "").
    links: tuple[tuple[str, str, int, str], ...] = ()
    oversight: bool = False  # flagged for the oversight teams (see OVERSIGHT)
    version: int = 0  # of the last record published: see ``next_version``
    # Not stored: the next ``lead_updates`` publishes it.
    dirty: bool = False

    @property
    def severity(self) -> str:
        return SEVERITY[RuleFamily(self.rule)].value

    def copy(self) -> LeadMark:
        return dataclasses.replace(self, history=list(self.history))

    def note(self, at_ms: int, status: str, team: str | None = None, note: str | None = None) -> None:
        self.history.append((at_ms, str(status), team, note))
        self.dirty = True

    @property
    def escalations(self) -> list[str]:
        """Every escalation the lead has had, oldest first, each once: its
        history keeps them across reopenings (``escalated`` restarts); one
        later evidence withdrew (the police took the case up in time) is
        not among them."""
        raised: dict[str, None] = {}
        for _, status, _, _ in self.history:
            if status.startswith("ESCALATED_"):
                raised[status.removeprefix("ESCALATED_")] = None
            elif status.startswith(WITHDRAWN):
                raised.pop(status.removeprefix(WITHDRAWN), None)
        return list(raised)

    @property
    def taken_up_ms(self) -> int | None:
        """When the police first took the case up (受案 or 立案), by their record's own date (CST day start)."""
        days = [day for kind, _, day, _ in self.links if kind in TAKEN_UP]
        return cst_start_ms(dt.date.fromordinal(min(days))) if days else None

    def next_version(self, now_ms: int) -> int:
        """The version of the record about to be published: a hybrid logical
        clock, the greater of the last version plus one and the worker's
        clock. It grows with every record of the lead, and across a crash
        too: a worker that takes over reloads the last stored version, but
        publishes later than the one that died (after its session timed
        out), so above any record that one published and never stored.
        Readers keep the highest version per lead, so a replayed older
        record cannot undo a newer one."""
        self.version = max(self.version + 1, now_ms)
        return self.version

    @property
    def transferred_ms(self) -> int | None:
        return max((at for at, status, _, _ in self.history if status == LeadStatus.TRANSFERRED), default=None)

    def link(self, kind: LinkKind, event_id: str, day: dt.date, lead_id: str = "") -> bool:
        """Add a follow-up once, in date order (the same links whatever order
        their records arrived in); whether it was new."""
        entry = (str(kind), event_id, day.toordinal(), lead_id)
        if entry in self.links:
            return False
        self.links = tuple(sorted((*self.links, entry), key=lambda k: (k[2], k[0], k[1], k[3])))
        self.dirty = True
        return True

    def link_exactly(self, kind: LinkKind, entries: Iterable[tuple[str, dt.date, str]]) -> bool:
        """The follow-ups of ``kind`` are exactly ``entries`` (event ID, date,
        lead ID): one to a lead that has since been superseded goes, so the
        links are those of the leads as they stand, whatever order their
        records came in. Whether anything changed."""
        wanted = {(str(kind), event_id, day.toordinal(), lead_id) for event_id, day, lead_id in entries}
        if wanted == {k for k in self.links if k[0] == kind}:
            return False
        self.links = tuple(sorted((*(k for k in self.links if k[0] != kind), *wanted),
                                  key=lambda k: (k[2], k[0], k[1], k[3])))
        self.dirty = True
        return True

    def relink(self, kind: LinkKind, event_id: str, day: dt.date) -> bool:
        """The one follow-up of its kind (the record that proved a re-check or
        confirmed a rectification): an earlier record arriving later takes its
        place. Whether anything changed."""
        entry = (str(kind), event_id, day.toordinal(), "")
        if entry in self.links:
            return False
        self.links = tuple(k for k in self.links if k[0] != kind)
        return self.link(kind, event_id, day)

    def flag(self, level: Escalation, at_ms: int) -> None:
        """Raise an escalation: every record of the lead carries it from now on (the latest one raised)."""
        self.escalated += (level,)
        self.oversight = self.oversight or level in OVERSIGHT
        self.note(at_ms, f"ESCALATED_{level}")


def apply_feedback(mark: LeadMark, action: str, team: str | None, note: str | None, at_ms: int) -> bool:
    """A team's status change; raises FeedbackRejected when it cannot apply.
    False when the lead's history holds it already: the same feedback
    replayed after a crash is no second change (and no invalid transition)."""
    if (at_ms, action, team, note) in mark.history:
        return False
    _check_in_order(mark, team, at_ms)
    checked = check_feedback(mark.status, action, note)
    never_transferred = mark.transferred_ms is None and mark.taken_up_ms is None
    mark.status = LeadStatus(checked.value)
    if checked is Action.CLOSED:
        mark.closed_ms = at_ms
    mark.note(at_ms, checked, team, note)
    if never_transferred:
        _flag_if_untransferred(mark, checked, at_ms)
    return True


def _check_in_order(mark: LeadMark, team: str | None, at_ms: int) -> None:
    if any(by == team and earlier > at_ms for earlier, _, by, _ in mark.history):
        # A team answers in order: an answer older than its last on this lead
        # is a copy of an old record (a CLOSED replayed after a reopening).
        raise FeedbackRejected("replayed", "older than this team's last answer on the lead")


def _flag_if_untransferred(mark: LeadMark, action: Action, at_ms: int) -> None:
    """A criminal referral, never transferred, closed or rejected: NOT_TRANSFERRED."""
    if action in (Action.CLOSED, Action.REJECTED) and mark.rule == RuleFamily.CRIMINAL_REFERRAL:
        # 以罚代刑 is the failure oversight exists for: the reason stays on the
        # record (CLOSED and REJECTED need one) and the lead goes to oversight.
        mark.flag(Escalation.NOT_TRANSFERRED, at_ms)


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


def deadlines(mark: LeadMark, lifecycle: LifecycleSettings, found_ms: int | None = None) -> dict[str, int]:
    """The deadlines that still apply: escalation level -> epoch ms.
    ``found_ms``: when the agency found the suspected crime (the start of the
    criminal finding's own day, CST): the 310 transfer clock runs from there,
    not from when the hub heard of it (国务院令第310号: decide within 3 days,
    send within 24 hours), so a finding reported late is overdue on arrival."""
    out: dict[str, int] = {}
    if mark.status is LeadStatus.OPEN:
        out[ACKNOWLEDGE_OVERDUE] = mark.opened_ms + lifecycle.acknowledge_ms(mark.severity)
    if mark.status in ACTIVE:
        out[CLOSE_OVERDUE] = mark.opened_ms + lifecycle.close_ms(mark.severity)
    if mark.rule == RuleFamily.CRIMINAL_REFERRAL:
        out.update(_transfer_deadline(mark, lifecycle, found_ms))
    if mark.status is LeadStatus.CLOSED and mark.closed_ms is not None:
        out[RECHECK_DUE] = mark.closed_ms + lifecycle.recheck_ms
        out[Escalation.RECHECK_OVERDUE] = mark.closed_ms + lifecycle.recheck_ms + lifecycle.recheck_grace_ms
    return out


def _transfer_deadline(mark: LeadMark, lifecycle: LifecycleSettings, found_ms: int | None) -> dict[str, int]:
    """A criminal referral's deadline in its transfer (行刑衔接), if one applies:
    the police's filing once it is transferred, else the transfer itself."""
    transferred = mark.transferred_ms
    if mark.status is LeadStatus.TRANSFERRED and transferred is not None:
        return _filing_deadline(transferred, mark.taken_up_ms, lifecycle)
    if mark.status not in ACTIVE or transferred is not None:
        return {}
    return _transfer_due(mark, lifecycle, found_ms)


def _filing_deadline(transferred: int, taken_up: int | None, lifecycle: LifecycleSettings) -> dict[str, int]:
    due = transferred + lifecycle.police_filing_ms
    # none yet, or the police's record dated after the limit: late, whatever order they came in
    return {Escalation.TRANSFER_UNFILED: due} if taken_up is None or taken_up > due else {}


def _transfer_due(mark: LeadMark, lifecycle: LifecycleSettings, found_ms: int | None) -> dict[str, int]:
    """An active referral not transferred: TRANSFER_OVERDUE, from the finding when its date is known."""
    taken_up = mark.taken_up_ms
    if found_ms is not None:
        # Not transferred: by the records' own dates, overdue if the police have no case on it by the
        # deadline, or took it up only after (late), whatever order the records came in.
        due = found_ms + lifecycle.transfer_ms
        return {Escalation.TRANSFER_OVERDUE: due} if taken_up is None or taken_up > due else {}
    return {Escalation.TRANSFER_OVERDUE: mark.opened_ms + lifecycle.transfer_ms} if taken_up is None else {}


def pending_deadline(mark: LeadMark, lifecycle: LifecycleSettings, found_ms: int | None = None) -> int | None:
    """The earliest deadline not yet escalated."""
    due = [at for level, at in deadlines(mark, lifecycle, found_ms).items() if level not in mark.escalated]
    return min(due) if due else None


def withdraw_if_answered(mark: LeadMark, lifecycle: LifecycleSettings, found_ms: int | None, now_ms: int) -> bool:
    """A TRANSFER_OVERDUE or TRANSFER_UNFILED raised before the police's
    record arrived (a tick, or overdue on arrival), when that record shows
    they took the case up by the deadline: withdrawn, so the lead is what
    the records' own dates say, whatever order they came in. Whether one was."""
    taken_up = mark.taken_up_ms
    if taken_up is None:
        return False
    met = _met_in_time(mark, taken_up, lifecycle, found_ms)
    withdrawn = [level for level, in_time in met.items() if in_time and level in mark.escalated]
    if withdrawn:
        _withdraw(mark, withdrawn, now_ms)
    return bool(withdrawn)


def _met_in_time(mark: LeadMark, taken_up: int, lifecycle: LifecycleSettings,
                 found_ms: int | None) -> dict[Escalation, bool]:
    """Whether the police took the case up by each transfer deadline."""
    transferred = mark.transferred_ms
    return {Escalation.TRANSFER_OVERDUE: found_ms is not None and taken_up <= found_ms + lifecycle.transfer_ms,
            Escalation.TRANSFER_UNFILED: transferred is not None
            and taken_up <= transferred + lifecycle.police_filing_ms}


def _withdraw(mark: LeadMark, levels: list[Escalation], now_ms: int) -> None:
    """Withdraw these escalations on evidence; the lead stays with oversight only for what remains."""
    for level in levels:
        mark.escalated = tuple(e for e in mark.escalated if e != level)
        mark.note(now_ms, WITHDRAWN + level, None, "公安机关已按期受案或立案")
    mark.oversight = mark.rule == RuleFamily.REVERSE_REFERRAL or any(e in OVERSIGHT for e in mark.escalated)


def escalate_if_due(mark: LeadMark, lifecycle: LifecycleSettings, now_ms: int,
                    found_ms: int | None = None) -> str | None:
    """Raise the most urgent escalation whose deadline has passed, once."""
    for level, at in sorted(deadlines(mark, lifecycle, found_ms).items(), key=lambda kv: kv[1]):
        if at <= now_ms and level not in mark.escalated:
            mark.flag(Escalation(level), now_ms)
            return level
    return None


def is_overdue(lead: dict[str, Any]) -> bool:
    """A published lead record past a deadline it was escalated for, and still active."""
    if lead["status"] not in ACTIVE:
        return False
    raised = _raised_since_reopening(lead)
    return any(f"ESCALATED_{level}" in raised for level in _overdue_levels(lead))


def _raised_since_reopening(lead: dict[str, Any]) -> set[str]:
    """The statuses in the lead's history since its last reopening."""
    since = max((i for i, h in enumerate(lead["history"]) if h["status"] == "REOPENED"), default=-1)
    return {h["status"] for h in lead["history"][since + 1:]}


def _overdue_levels(lead: dict[str, Any]) -> list[str]:
    """The escalations that leave an active lead of its status overdue: a
    missed closure; a missed acknowledgement while it is OPEN; a missed
    transfer until it is TRANSFERRED, and after it the police's missed
    filing while no record shows they took the case up."""
    status = lead["status"]
    levels: list[str] = [CLOSE_OVERDUE]
    if status == LeadStatus.OPEN:
        levels.append(ACKNOWLEDGE_OVERDUE)
    if status != LeadStatus.TRANSFERRED:
        levels.append(Escalation.TRANSFER_OVERDUE)
    elif not TAKEN_UP & {k["kind"] for k in lead.get("links") or []}:
        levels.append(Escalation.TRANSFER_UNFILED)
    return levels
