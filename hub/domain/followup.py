"""Follow-through (跟踪问效): what became of a finding after its lead.

Plain functions over one business's facts and lead marks, no clock of their
own (time comes in from the lifecycle's ticks):

- transfers (行刑衔接): the police's own records on the business (受案, 立案,
  撤案) dated on or after a criminal referral's earliest evidence are linked
  to it, whichever arrives first; a 受案 or 立案 stops its transfer clocks
  (``hub.domain.lifecycle.deadlines``), a 撤案 opens a reverse referral
  (``hub.domain.rules``) linked both ways;
- 回头看 closed on evidence: a closed lead whose business is later found
  compliant (an inspection 符合 / 基本符合, or a farm sample 合格) dated after
  the closure day is RECHECKED, citing that record;
- rectification (整改): an inspection ending in 书面限期整改 with a 整改期限
  starts one; later 不符合 inspections are repeats (and may move the deadline
  on); a later compliant inspection confirms it. A rectification whose
  deadline plus grace passed unconfirmed is flagged at a tick and opens a
  RECTIFICATION_OVERDUE lead.
"""
from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from collections.abc import Iterable, Mapping

from hub.domain.events import POLICE_TAKES_UP, EventKind, Outcome, cst_day, cst_start_ms
from hub.domain.lifecycle import LeadMark, LeadStatus, LinkKind
from hub.domain.rules import Fact, LeadDraft, RuleFamily, lead_id

_POLICE = {Outcome.POLICE_ACCEPTED.value: LinkKind.POLICE_ACCEPTED, Outcome.POLICE_FILED.value: LinkKind.POLICE_FILED,
           Outcome.POLICE_DROPPED.value: LinkKind.POLICE_DROPPED}
_PROOF = frozenset({Outcome.COMPLIANT.value, Outcome.PASSED.value})


class RectificationStatus(enum.StrEnum):
    OPEN = "OPEN"  # its deadline (plus grace) has not passed
    OVERDUE = "OVERDUE"  # a deadline plus grace passed, unconfirmed
    CONFIRMED = "CONFIRMED"  # a compliant inspection in time
    CONFIRMED_LATE = "CONFIRMED_LATE"  # a compliant inspection, after it was overdue


@dataclass(frozen=True)
class Rectification:
    """One rectification (整改): the order that started it, the orders and
    non-compliant inspections that followed, the inspection that confirmed it."""

    start: Fact
    orders: tuple[Fact, ...]
    repeats: tuple[Fact, ...]
    confirmed_by: Fact | None

    @property
    def evidence(self) -> tuple[Fact, ...]:
        return tuple(sorted({f.event_id: f for f in (*self.orders, *self.repeats)}.values(),
                            key=lambda f: (f.occurred_on, f.event_id)))

    @property
    def due(self) -> dt.date:
        """The first deadline it was given."""
        return min(dt.date.fromordinal(o.due) for o in self.orders)

    def overdue_from(self, grace_days: int) -> dt.date | None:
        """The first day it counts as overdue: the day after a deadline plus
        grace that passed with no confirmation by then; None if every
        deadline was met."""
        for due in sorted(dt.date.fromordinal(o.due) for o in self.orders):
            limit = due + dt.timedelta(days=grace_days)
            if self.confirmed_by is None or self.confirmed_by.occurred_on > limit:
                return limit + dt.timedelta(days=1)
        return None

    def confirmed_late(self, grace_days: int) -> bool:
        """Confirmed by an inspection dated after it fell overdue: its
        deadline was missed, by the records' own dates."""
        overdue = self.overdue_from(grace_days)
        return self.confirmed_by is not None and overdue is not None and overdue <= self.confirmed_by.occurred_on

    def status(self, today: dt.date, grace_days: int) -> RectificationStatus:
        overdue = self.overdue_from(grace_days)
        late = overdue is not None and overdue <= today
        if self.confirmed_by is not None and self.confirmed_by.occurred_on <= today:
            return RectificationStatus.CONFIRMED_LATE if late else RectificationStatus.CONFIRMED
        return RectificationStatus.OVERDUE if late else RectificationStatus.OPEN


def rectifications(facts: Iterable[Fact]) -> list[Rectification]:
    """Every rectification the business's inspections imply, oldest first.
    Deterministic in the set of facts, whatever order they arrived in."""
    inspections = sorted((f for f in facts if f.kind == EventKind.INSPECTION.value and not f.moved_to),
                         key=lambda f: (f.occurred_on, f.event_id))
    out: list[Rectification] = []
    orders: list[Fact] = []
    repeats: list[Fact] = []
    for fact in inspections:
        if not orders:
            if fact.due and fact.outcome != Outcome.COMPLIANT.value:
                orders = [fact]
            continue
        if fact.outcome == Outcome.COMPLIANT.value and fact.occurred_on > orders[0].occurred_on:
            out.append(Rectification(orders[0], tuple(orders), tuple(repeats), fact))
            orders, repeats = [], []
        elif fact.outcome == Outcome.NON_COMPLIANT.value:
            repeats.append(fact)
            if fact.due:
                orders.append(fact)
    if orders:
        out.append(Rectification(orders[0], tuple(orders), tuple(repeats), None))
    return out


def newly_overdue(found: Iterable[Rectification], flagged: set[str], today: dt.date, grace_days: int) -> list[str]:
    """The rectifications (by their starting order) overdue by ``today`` and not flagged yet."""
    return [r.start.event_id for r in found if r.start.event_id not in flagged
            and r.status(today, grace_days) is RectificationStatus.OVERDUE]


def next_due_ms(found: Iterable[Rectification], flagged: set[str], grace_days: int) -> int | None:
    """When the earliest unflagged rectification falls overdue (epoch ms, CST day start)."""
    days = [d for r in found if r.start.event_id not in flagged and r.confirmed_by is None
            and (d := r.overdue_from(grace_days)) is not None]
    return cst_start_ms(min(days)) if days else None


def overdue_drafts(business_key: str, found: Iterable[Rectification], flagged: set[str],
                   grace_days: int) -> list[LeadDraft]:
    """A lead for every rectification a tick found overdue (``flagged``) and
    no evidence since showed confirmed in time, and for every one whose own
    evidence says it was: a compliant re-inspection dated after a deadline
    plus grace. The evidence decides whether or not a tick fell in between,
    so the same records give the same leads."""
    family = RuleFamily.RECTIFICATION_OVERDUE
    return [LeadDraft(lead_id(business_key, family, r.start.occurred_on), family, r.start.occurred_on,
                      r.evidence[-1].occurred_on, r.evidence)
            for r in found if r.confirmed_late(grace_days) or (r.start.event_id in flagged and not (
                # a tick flagged it before the compliant re-inspection, dated in time, arrived: not overdue
                r.confirmed_by is not None and r.overdue_from(grace_days) is None))]


def is_police_follow_up(fact: Fact, leads: Mapping[str, LeadMark]) -> bool:
    """The police taking up a case a criminal referral sent them: follow-up,
    not new adverse evidence (it reopens nothing)."""
    return fact.outcome in POLICE_TAKES_UP and any(
        m.rule == RuleFamily.CRIMINAL_REFERRAL and m.window_start <= fact.occurred_on for m in leads.values())


def link(business_key: str, leads: Mapping[str, LeadMark], facts: Iterable[Fact],
         found: Iterable[Rectification], now_ms: int) -> None:
    """Link every lead to the records that followed it up; a link added, or
    a 回头看 proven, marks the lead to be published again."""
    police, proofs = _telling(facts)
    confirmed = {r.start.occurred_on: r.confirmed_by for r in found if r.confirmed_by is not None}
    live = {k: m for k, m in leads.items() if m.status is not LeadStatus.SUPERSEDED}  # a superseded lead is history
    for mark in live.values():
        if mark.rule == RuleFamily.CRIMINAL_REFERRAL:
            _link_police(business_key, mark, police)
        elif mark.rule == RuleFamily.REVERSE_REFERRAL:
            _link_referrals(mark, live)
        elif mark.rule == RuleFamily.RECTIFICATION_OVERDUE:
            _link_rectified(mark, confirmed.get(mark.window_start))
        if mark.status in (LeadStatus.CLOSED, LeadStatus.RECHECKED) and mark.closed_ms is not None:
            _recheck(mark, proofs, mark.closed_ms, now_ms)


def _telling(facts: Iterable[Fact]) -> tuple[list[Fact], list[Fact]]:
    """The records that say what the police did, and those that prove a
    re-check, by date. One pass: most records say nothing of
    follow-through (outcome "")."""
    telling = sorted((f for f in facts if f.outcome and not f.moved_to), key=lambda f: (f.occurred_on, f.event_id))
    return [f for f in telling if f.outcome in _POLICE], [f for f in telling if f.outcome in _PROOF]


def _link_rectified(mark: LeadMark, proof: Fact | None) -> None:
    """An overdue rectification: the inspection that confirmed it done."""
    if proof is not None:
        mark.relink(LinkKind.RECTIFIED, proof.event_id, proof.occurred_on)


def _link_police(business_key: str, mark: LeadMark, police: list[Fact]) -> None:
    """A criminal referral: what the police did with it (立案, 不立案, 撤案 …)
    since its window began; a dropped case names the reverse referral it raises."""
    for fact in police:
        if fact.occurred_on >= mark.window_start:
            kind = _POLICE[fact.outcome]
            reverse = lead_id(business_key, RuleFamily.REVERSE_REFERRAL, fact.occurred_on) \
                if kind is LinkKind.POLICE_DROPPED else ""
            mark.link(kind, fact.event_id, fact.occurred_on, reverse)


def _link_referrals(mark: LeadMark, live: Mapping[str, LeadMark]) -> None:
    """A reverse referral: the criminal referrals on the business before it."""
    mark.link_exactly(LinkKind.REFERRAL, [
        (mark.evidence[0] if mark.evidence else "", mark.window_start, referral_id)
        for referral_id, referral in live.items()
        if referral.rule == RuleFamily.CRIMINAL_REFERRAL and referral.window_start <= mark.window_start])


def _recheck(mark: LeadMark, proofs: list[Fact], closed_ms: int, now_ms: int) -> None:
    """回头看: a record after a closed lead's closing proves the re-check."""
    closed_on = cst_day(closed_ms)
    proof = next((f for f in proofs if f.occurred_on > closed_on), None)
    if proof is not None and mark.relink(LinkKind.RECHECKED, proof.event_id, proof.occurred_on) \
            and mark.status is LeadStatus.CLOSED:
        mark.status = LeadStatus.RECHECKED
        # The record itself is in the link, where each team's clearance applies.
        mark.note(now_ms, LeadStatus.RECHECKED, None, f"{proof.agency} {proof.kind} {proof.occurred_on}")
