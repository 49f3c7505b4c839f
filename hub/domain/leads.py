"""A business's state (its recent history and the leads published for it) and
the lead records (执法线索) that state implies."""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hub.domain import followup, lifecycle, signals, storage
from hub.domain.events import COMPLAINT_KINDS, Agency, Event, EventKind, Outcome, cst_day, cst_start_ms, detail_of
from hub.domain.identifiers import region, uscc_region
from hub.domain.lifecycle import ACTIVE, Escalation, FeedbackRejected, LeadMark, LeadStatus
from hub.domain.names import normalise_name
from hub.domain.records import CreditFields, Evidence, FollowUp, Lead, Region
from hub.domain.resolution import Candidate
from hub.domain.rules import (LEAD_ID_PREFIX, RECOMMENDED_ACTION, Fact, LeadDraft, RuleFamily, evaluate,
                              history_horizon, kept_history, to_fact)
from hub.settings import LifecycleSettings, RuleSettings


DEFAULT_DEADLINES = LifecycleSettings()  # frozen: one instance serves every call


class Accepted(Enum):
    """What became of an event offered to a business's state."""

    NEW = "new"
    REOPENED = "reopened"  # new, and it reopened a closed lead
    DUPLICATE = "duplicate"  # same agency and source record seen before
    NEAR_DUPLICATE = "near_duplicate"  # the same finding under another source ID: merged into it
    # a near-duplicate of a report resolved here before it, both merged
    # already under their provisional key
    REMERGED = "remerged"
    EXPLAINED = "explained"  # a resolved record again, with a new explanation
    EXPIRED = "expired"  # older than the history kept, so it can change no lead
    REGISTERED = "registered"  # a registry entry: it teaches the registry and is no evidence

    @property
    def changes_state(self) -> bool:
        return self in (Accepted.NEW, Accepted.REOPENED, Accepted.NEAR_DUPLICATE, Accepted.REMERGED,
                        Accepted.EXPLAINED)

    @property
    def is_evidence(self) -> bool:
        """New evidence of something (a record without a USCC then waits for its business)."""
        return self in (Accepted.NEW, Accepted.REOPENED, Accepted.NEAR_DUPLICATE)


@dataclass
class BusinessState:
    """One business's recent history, keyed by its business key."""

    name: str = ""
    business_id: str | None = None
    region_code: str | None = None
    facts: dict[str, Fact] = field(default_factory=dict)
    leads: dict[str, LeadMark] = field(default_factory=dict)
    # Facts on or before this date were dropped from the history.
    pruned_through: dt.date | None = None
    registered: Candidate | None = None  # what its identified records taught the registry
    # Keyed tokens (pii:…) of the people its records named: feedback on its
    # leads is scrubbed of their names without any name in clear.
    persons: set[str] = field(default_factory=set)
    # The leads whose records the last write owed the topics, and which
    # incarnation of a worker wrote it: a worker that died between writing
    # the state and publishing leaves them to the next (see ``resume``).
    outbox: set[str] = field(default_factory=set)
    writer: str = ""
    # Rectifications (by their starting order's event ID) a tick found
    # overdue: each has its RECTIFICATION_OVERDUE lead.
    flagged: set[str] = field(default_factory=set)
    # New signals (hub.domain.signals): the business's standing on the
    # serious-violation list; complainants (keyed hashes) it was told file
    # serially; its legal representatives (keyed hashes); what it last told
    # their indexes (so it tells them only of a change).
    credit: signals.Credit | None = None
    serial: set[str] = field(default_factory=set)
    representatives: set[str] = field(default_factory=set)
    member_told: str = ""

    def accept(self, event: Event, rules: RuleSettings, restore: bool = False) -> Accepted:
        """``restore``: the event comes from resolution, which may bring back a
        record it had moved off this business before, or explain it anew."""
        seen = self._seen_before(event, restore)
        if seen is not None:
            return seen
        if event["kind"] == EventKind.CREDIT_LISTING.value:
            return self._list(event)
        fact = to_fact(event, rules)
        if self.facts and fact.occurred_on < self._horizon(rules):
            return Accepted.EXPIRED
        twins = self._twins(fact, rules)
        if twins:
            return self._merge(fact, twins, restore)
        reopened = self._add(fact, event)
        self._name_from(event)
        self.prune(rules)
        return Accepted.REOPENED if reopened else Accepted.NEW

    def _seen_before(self, event: Event, restore: bool) -> Accepted | None:
        """A record this state holds already: explained anew (resolution
        brought it back with another explanation), or a duplicate."""
        event_id = event["event_id"]
        known = self.facts.get(event_id)
        if known is not None and restore and not known.moved_to and known.resolution != (event["resolution"] or ""):
            self.facts[event_id] = dataclasses.replace(known, resolution=event["resolution"] or "")
            return Accepted.EXPLAINED
        if known is not None and not (restore and known.moved_to):
            return Accepted.DUPLICATE
        if any(event_id == e for f in self.facts.values() for e, *_ in f.also_reported):
            return Accepted.DUPLICATE
        return None

    def _twins(self, fact: Fact, rules: RuleSettings) -> list[Fact]:
        """Other reports of the same finding, within near_duplicate_days of any report of it."""
        if not fact.identity:
            return []
        return [f for f in self.facts.values() if f.identity == fact.identity and not f.moved_to
                and f.event_id != fact.event_id
                and any(abs((day - fact.occurred_on).days) <= rules.near_duplicate_days for day in f.report_dates())]

    def _merge(self, fact: Fact, twins: list[Fact], restore: bool) -> Accepted:
        """One finding, reported more than once: reports within
        near_duplicate_days of any other report of it are one finding (a
        chain of them too, so three reports merge alike whatever order they
        come in), and the report with the smallest event ID stands for it."""
        primary, *others = sorted((fact, *twins), key=lambda f: f.event_id)
        reports = {r for f in (fact, *twins) for r in f.also_reported} | \
            {(f.event_id, f.source_record_id, f.occurred_on.toordinal()) for f in others}
        for twin in twins:
            del self.facts[twin.event_id]
        self.facts[primary.event_id] = dataclasses.replace(primary, also_reported=tuple(sorted(reports)))
        return Accepted.REMERGED if restore and any(t.resolution for t in twins) else Accepted.NEAR_DUPLICATE

    def _add(self, fact: Fact, event: Event) -> bool:
        """A new finding in the history: the persons it names, the closed lead
        it reopens (whether it did), the open leads it corroborates."""
        self.facts[fact.event_id] = fact
        if not self.persons.issuperset(event["person_refs"]):
            self.persons.update(event["person_refs"])
            self._republish_active()  # their records carry the persons
        reopened = fact.adverse and self._reopen_latest_closed(fact)
        if _corroborates(fact):
            # A complaint corroborates what is open on the business (and a lead
            # drawn later takes the complaints already here: ``lead_updates``).
            for mark in self.leads.values():
                if mark.status in ACTIVE and _corroborated_by(mark, fact):
                    mark.chained += (fact.event_id,)
                    mark.dirty = True
        return reopened

    def _republish_active(self) -> None:
        for mark in self.leads.values():
            mark.dirty = mark.dirty or mark.status in ACTIVE

    def _name_from(self, event: Event) -> None:
        business = event["business"]
        if not self.name or not event.get("resolution"):  # a resolved record's spelling is not the register's
            self.name = business["name"]
        self._identify(event)

    def _list(self, event: Event) -> Accepted:
        """A listing record (列入 or 移出): the latest decides the standing,
        and every lead on the business shows it."""
        credit = signals.Credit.of(event)
        if self.credit is not None and (self.credit.event_id == credit.event_id or credit.as_of < self.credit.as_of):
            return Accepted.DUPLICATE
        self.credit = credit
        self._identify(event)
        self._republish_active()
        return Accepted.NEW

    def represented_by(self, event: Event) -> bool:
        """A registry entry or a listing names the business's legal
        representative (by keyed hash); whether it is a new one."""
        ref = signals.legal_representative(event)
        if ref is None or ref in self.representatives:
            return False
        self.representatives.add(ref)
        self._identify(event)
        return True

    def _identify(self, event: Event) -> None:
        business = event["business"]
        self.name = self.name or business["name"]
        self.business_id = self.business_id or business["business_id"]
        self.region_code = self.region_code or business["region_code"]

    def party(self, key: str, on: dt.date) -> signals.Party:
        """This business as its legal representatives' indexes hear of it."""
        reasons = signals.reasons(self.credit, self.leads.values())
        return signals.Party(key, self.business_id, self.name, self.region_code, reasons, on)

    def learn(self, event: Event) -> Candidate | None:
        """What a record that carries its USCC teaches the registry: the
        business's knowledge, when it grew (else None). A record tied to its
        business by resolution teaches nothing: inferences must not breed."""
        business = event["business"]
        if not business["business_id"] or event.get("resolution"):
            return None
        learned = Candidate(
            business["business_id"], business["name"], business["region_code"] or uscc_region(business["business_id"]),
            frozenset({normalise_name(business["name"])}),
            frozenset({normalise_name(business["address"])} if business["address"] else ()),
            frozenset(filter(None, [business["licence_number"], *_registered_licences(event)])),
            frozenset({business["registration_number"]} if business["registration_number"] else ()))
        merged = self.registered.merge(learned) if self.registered else learned
        if merged == self.registered:
            return None
        self.registered = merged
        return merged

    def move(self, event_id: str, to: str) -> bool:
        """Resolution moved a record off this business (``to``: where it went),
        or back onto it (``to`` = ""). True when that changed anything."""
        fact = self.facts.get(event_id)
        if fact is None or fact.moved_to == to:
            return False
        self.facts[event_id] = dataclasses.replace(fact, moved_to=to)
        return True

    def _horizon(self, rules: RuleSettings) -> dt.date:
        return history_horizon(self.facts.values(), rules)

    def prune(self, rules: RuleSettings) -> None:
        horizon = self._horizon(rules)
        # accept() runs this per event: sort only when something has to go
        if len(self.facts) > rules.history_max_events or any(f.occurred_on < horizon for f in self.facts.values()):
            self._forget(horizon, rules.history_max_events)
        self.leads = {k: m for k, m in self.leads.items() if m.window_start >= horizon}
        self.flagged = {f for f in self.flagged if f in self.facts}

    def _forget(self, horizon: dt.date, most: int) -> None:
        """Keep the ``most`` latest facts from ``horizon`` on; remember up to
        which date facts were dropped."""
        kept = kept_history(self.facts.values(), horizon, most)
        kept_ids = {f.event_id for f in kept}
        dropped = max(f.occurred_on for f in self.facts.values() if f.event_id not in kept_ids)
        self.pruned_through = max(dropped, self.pruned_through or dropped)
        self.facts = {f.event_id: f for f in kept}

    def _reopen_latest_closed(self, fact: Fact) -> bool:
        """回头看: adverse news after closure reopens the business's most
        recently closed lead (a re-checked one too). The police taking up a
        referral's case is its follow-up, not news."""
        if followup.is_police_follow_up(fact, self.leads):
            return False
        closed = [m for m in self.leads.values() if m.status in (LeadStatus.CLOSED, LeadStatus.RECHECKED)]
        if closed:
            lifecycle.reopen(max(closed, key=lambda m: m.closed_ms or 0), fact.event_id, fact.received_ms)
        return bool(closed)

    def resume(self, incarnation: str) -> bool:
        """Loaded by ``incarnation``: if another wrote this state last, the
        leads its write owed may never have reached the topics (it may have
        died in between), so they are marked to be published again. Whether
        any were."""
        if self.writer == incarnation or not self.outbox:
            return False
        for lead_id in self.outbox & self.leads.keys():
            mark = self.leads[lead_id]
            mark.dirty = True
        return True

    # -- lifecycle --------------------------------------------------------
    def routing_view(self, lead_id: str) -> dict[str, Any] | None:
        """What routing reads of a lead (``teams.recipients``), from what
        this state keeps of it: to tell which teams received it. An
        escalation raised since the lead (re)opened counts, so a parent
        jurisdiction that received it may answer. None: no such lead."""
        mark = self.leads.get(lead_id)
        if mark is None:
            return None
        holder = self._holders()
        facts = [holder[e] for e in (*mark.evidence, *mark.chained) if e in holder]
        return {"region": {"code": self.region_code}, "rules": [mark.rule], "severity": mark.severity,
                "also_regions": signals.also_regions(mark.rule, facts, self.region_code),
                "categories": sorted({f.category for f in facts if f.category}),
                "findings": [_finding(f) for f in facts],
                "escalation": mark.escalated[-1] if mark.escalated else None, "oversight": mark.oversight}

    def apply_feedback(self, lead_id: str, action: str, team: str | None, note: str | None,
                       at_ms: int) -> LeadMark | None:
        """The lead the feedback changed, or None when it had been applied already (a replay)."""
        mark = self.leads.get(lead_id)
        if mark is None:
            raise FeedbackRejected("unknown_lead", f"no lead {lead_id} on this business (or it aged out)")
        return mark if lifecycle.apply_feedback(mark, action, team, note, at_ms) else None

    def escalate_due(self, settings: LifecycleSettings, now_ms: int) -> list[str]:
        """Every escalation due by ``now_ms``, and every rectification
        overdue by then (each opens its lead at the next ``lead_updates``)."""
        levels = [level for m in self.leads.values()
                  if (level := lifecycle.escalate_if_due(m, settings, now_ms, self.found_ms(m)))]
        overdue = followup.newly_overdue(followup.rectifications(self.facts.values()), self.flagged,
                                         cst_day(now_ms), settings.rectification_grace_days)
        self.flagged.update(overdue)
        return levels + [Escalation.RECTIFICATION_OVERDUE.value] * len(overdue)

    def found_ms(self, mark: LeadMark) -> int | None:
        """When an administrative agency found a criminal referral's crime: the
        start (CST) of the day of the earliest criminal finding of market
        supervision or agriculture in its evidence, from which the 310
        transfer clock runs. None for other leads, for a referral the police's
        own case raised (they have it: nothing to transfer), or when its
        evidence has aged out."""
        if mark.rule != RuleFamily.CRIMINAL_REFERRAL:  # asked of every lead at every update: the cheap test first
            return None
        days = [f.occurred_on for e in mark.evidence if (f := self.facts.get(e)) is not None and f.criminal
                and f.agency != Agency.POLICE.value]
        return cst_start_ms(min(days)) if days else None

    def next_deadline(self, settings: LifecycleSettings) -> int | None:
        due = [d for m in self.leads.values()
               if (d := lifecycle.pending_deadline(m, settings, self.found_ms(m))) is not None]
        rectification = followup.next_due_ms(followup.rectifications(self.facts.values()), self.flagged,
                                             settings.rectification_grace_days)
        if rectification is not None:
            due.append(rectification)
        return min(due) if due else None

    # -- leads ------------------------------------------------------------
    def lead_updates(self, business_key: str, rules: RuleSettings, now_ms: int,
                     deadlines: LifecycleSettings = DEFAULT_DEADLINES) -> list[Lead]:
        """Lead records to publish: new leads, leads with new evidence or a new
        status, and leads a late older event superseded. Marks them published."""
        rectifications = followup.rectifications(self.facts.values())
        settled = self._settled(rules)
        drafts = [d for d in self._drafts(business_key, rules, deadlines, rectifications)
                  if settled is None or d.window_start > settled]
        holder = self._holders()
        for draft in drafts:
            self._draw(draft, now_ms, deadlines)
        self._supersede_undrawn(drafts, settled, holder, now_ms)
        followup.link(business_key, self.leads, self.facts.values(), rectifications, now_ms)
        for mark in self.leads.values():
            lifecycle.withdraw_if_answered(mark, deadlines, self.found_ms(mark), now_ms)
        out = self._records(business_key, {d.lead_id: d for d in drafts}, now_ms, deadlines, holder)
        self.outbox = {lead["lead_id"] for lead in out}
        return out

    def _drafts(self, business_key: str, rules: RuleSettings, deadlines: LifecycleSettings,
                rectifications: list[followup.Rectification]) -> list[LeadDraft]:
        """What the history makes: a business's leads, or an index's own
        (an area's; none at another index)."""
        index = signals.IndexKey.parse(business_key)
        if index is not None:
            return signals.area_drafts(business_key, self.facts.values(), rules) \
                if index.kind is signals.IndexKind.AREA else []
        facts = list(self.facts.values())
        return evaluate(business_key, facts, rules) + signals.drafts(business_key, facts, self.serial, rules) \
            + followup.overdue_drafts(business_key, rectifications, self.flagged, deadlines.rectification_grace_days)

    def _settled(self, rules: RuleSettings) -> dt.date | None:
        """A window that could reach back to forgotten facts would be re-drawn
        from part of its evidence: leads up to this date are final as published."""
        if self.pruned_through is None:
            return None
        return self.pruned_through + dt.timedelta(
            days=max(rules.cross_agency_window_days, rules.repeat_offender_window_days))

    def _draw(self, draft: LeadDraft, now_ms: int, deadlines: LifecycleSettings) -> None:
        """A draft's lead: opened, or marked to republish when its evidence
        changed (or it held none a while: superseded, now drawn again)."""
        mark = self.leads.get(draft.lead_id)
        fingerprint = draft.fingerprint()
        evidence = tuple(f.event_id for f in draft.evidence)
        if mark is None:
            self._open(draft, fingerprint, evidence, now_ms, deadlines)
        elif mark.fingerprint != fingerprint or mark.status is LeadStatus.SUPERSEDED:
            if mark.status is LeadStatus.SUPERSEDED:
                mark.status = LeadStatus.OPEN
                mark.note(now_ms, LeadStatus.OPEN, None, "its window holds evidence again")
            mark.fingerprint, mark.evidence, mark.dirty = fingerprint, evidence, True

    def _open(self, draft: LeadDraft, fingerprint: str, evidence: tuple[str, ...], now_ms: int,
              deadlines: LifecycleSettings) -> None:
        mark = self.leads[draft.lead_id] = LeadMark(now_ms, fingerprint, draft.rule.value, draft.window_start,
                                                    evidence, opened_ms=now_ms)
        mark.note(now_ms, LeadStatus.OPEN)
        # The complaints that came first: whichever of a complaint and a lead
        # is processed first, the lead shows it (two workers' partitions, or
        # a replay, take them in either order).
        mark.chained = tuple(sorted(f.event_id for f in self.facts.values()
                                    if _corroborates(f) and _corroborated_by(mark, f)))
        if draft.rule is RuleFamily.RECTIFICATION_OVERDUE:  # opened by a deadline: escalated from the start
            mark.flag(Escalation.RECTIFICATION_OVERDUE, now_ms)
        elif draft.rule is RuleFamily.CRIMINAL_REFERRAL:  # a finding reported late: overdue on arrival
            lifecycle.escalate_if_due(mark, deadlines, now_ms, self.found_ms(mark))
        elif draft.rule is RuleFamily.REVERSE_REFERRAL:  # 两法衔接 both ways: the procuratorate watches it
            mark.oversight = True

    def _supersede_undrawn(self, drafts: list[LeadDraft], settled: dt.date | None, holder: dict[str, Fact],
                           now_ms: int) -> None:
        """A late, older event re-drew an active lead's window: say so on the
        topic, pointing at the lead that now holds its evidence."""
        drawn = {d.lead_id for d in drafts}
        for old_id, mark in self.leads.items():
            if old_id in drawn or mark.status not in ACTIVE or (settled is not None and mark.window_start <= settled):
                continue
            mark.status = LeadStatus.SUPERSEDED
            mark.note(now_ms, LeadStatus.SUPERSEDED, None, _why_superseded(mark, drafts, holder))

    def _records(self, business_key: str, by_id: dict[str, LeadDraft], now_ms: int, deadlines: LifecycleSettings,
                 holder: dict[str, Fact]) -> list[Lead]:
        """The records of the leads marked to publish; marks them published."""
        out = []
        for lead_id, mark in self.leads.items():
            if not mark.dirty:
                continue
            mark.dirty = False
            draft = by_id.get(lead_id) or _remains(lead_id, mark, holder)
            if draft is not None:
                out.append(self._record(business_key, draft, mark, now_ms, deadlines, holder))
        return out

    def _holders(self) -> dict[str, Fact]:
        """Event ID -> the fact that holds it: a report merged into its
        near-duplicate twin lives on in the twin."""
        return {**{e: f for f in self.facts.values() for e, *_ in f.also_reported}, **self.facts}

    def _record(self, business_key: str, draft: LeadDraft, mark: LeadMark, now_ms: int,
                deadlines: LifecycleSettings, holder: dict[str, Fact]) -> Lead:
        code = self.region_code
        evidence = self._evidence(draft, mark)
        due = lifecycle.deadlines(mark, deadlines, self.found_ms(mark))
        late = max((f.delay_days for f in evidence), default=0)
        return {
            "lead_id": draft.lead_id,
            "business_id": self.business_id,
            "business_key": business_key,
            "business_name": self.name,
            "region": _region(code),
            "rules": [draft.rule.value],
            "severity": draft.severity.value,
            "agencies": draft.agencies,
            "evidence": [_evidence_entry(f, mark) for f in evidence],
            "recommended_action": _recommended_action(draft),
            "status": mark.status,
            "superseded_by": _successor(mark),
            "categories": sorted({f.category for f in evidence if f.category}),
            "history": [{"at": _from_ms(at), "status": status, "team": team, "note": note}
                        for at, status, team, note in mark.history],
            "acknowledge_by": _maybe_ms(due.get(lifecycle.ACKNOWLEDGE_OVERDUE)),
            "close_by": _maybe_ms(due.get(lifecycle.CLOSE_OVERDUE)),
            "recheck_on": _maybe_ms(due.get(lifecycle.RECHECK_DUE)),
            "escalation": mark.escalated[-1] if mark.escalated else None,
            "escalations": mark.escalations,
            "transfer_by": _maybe_ms(due.get(Escalation.TRANSFER_OVERDUE)),
            "police_filing_by": _maybe_ms(due.get(Escalation.TRANSFER_UNFILED)),
            "links": _links(mark, holder),
            "oversight": mark.oversight,
            **(self.credit.record() if self.credit else NEVER_LISTED),
            # the rule's own evidence names them, not what corroborates it
            "parties": signals.parties(draft.rule.value, draft.evidence),
            "also_regions": signals.also_regions(draft.rule.value, draft.evidence, code),
            "reported_late_days": late if late > deadlines.late_report_days else None,
            "reopened": mark.reopened,
            "team": None,
            "withheld": [],
            "person_refs": sorted(self.persons),
            "window_start": draft.window_start,
            "window_end": draft.window_end,
            "first_seen": _from_ms(mark.first_seen_ms),
            "updated_at": _from_ms(now_ms),
            "version": mark.next_version(now_ms),
            "triggered_by_received_at": _from_ms(max(f.received_ms for f in evidence)),
        }

    def _evidence(self, draft: LeadDraft, mark: LeadMark) -> list[Fact]:
        """The draft's evidence and the complaints chained to the lead, by date."""
        in_draft = {f.event_id for f in draft.evidence}
        chained = [self.facts[e] for e in mark.chained if e in self.facts and e not in in_draft]
        return sorted((*draft.evidence, *chained), key=lambda f: (f.occurred_on, f.event_id))

    def snapshot(self) -> BusinessState:
        """A copy that later changes to this state leave alone: to roll back
        to. Facts and candidates are immutable, so sharing them is safe."""
        return dataclasses.replace(
            self, facts=dict(self.facts), leads={k: m.copy() for k, m in self.leads.items()},
            persons=set(self.persons), outbox=set(self.outbox), flagged=set(self.flagged), serial=set(self.serial),
            representatives=set(self.representatives))

    # -- storage ----------------------------------------------------------
    def to_bytes(self) -> bytes:
        return storage.dump_business(storage.BusinessRecord(
            self.name, self.business_id, self.region_code,
            self.pruned_through.toordinal() if self.pruned_through else None,
            [storage.fact_record(f) for f in self.facts.values()],
            {k: storage.mark_record(m) for k, m in self.leads.items()},
            self.registered.to_json() if self.registered else None, sorted(self.persons), sorted(self.outbox),
            self.writer, sorted(self.flagged), self.credit.to_json() if self.credit else None, sorted(self.serial),
            sorted(self.representatives), self.member_told, storage.BUSINESS_STATE_VERSION))

    @classmethod
    def from_bytes(cls, data: bytes) -> BusinessState:
        raw = storage.load_business(data)
        facts = [storage.fact_of(f) for f in raw.f]
        return cls(raw.n, raw.b, raw.r, {f.event_id: f for f in facts},
                   {k: storage.mark_of(v) for k, v in raw.l.items()},
                   dt.date.fromordinal(raw.p) if raw.p else None,
                   Candidate.from_json(raw.k) if raw.k else None, set(raw.q), set(raw.o), raw.w,
                   set(raw.x), signals.Credit.from_json(raw.c) if raw.c else None, set(raw.s),
                   set(raw.y), raw.m)


def _why_superseded(mark: LeadMark, drafts: list[LeadDraft], holder: dict[str, Fact]) -> str:
    """The lead that now holds a superseded lead's evidence; else where its
    evidence was resolved to; else that it no longer makes the lead."""
    held = {holder[e].event_id for e in mark.evidence if e in holder}
    successor = next((d for d in drafts if d.rule.value == mark.rule and held & {f.event_id for f in d.evidence}),
                     None)
    if successor is not None:
        return successor.lead_id
    moved = {holder[e].moved_to for e in mark.evidence if e in holder} - {""}
    return f"{MOVED_NOTE}{', '.join(sorted(moved))}" if moved else NO_LONGER_NOTE


def _remains(lead_id: str, mark: LeadMark, holder: dict[str, Fact]) -> LeadDraft | None:
    """A lead not drawn again (superseded, or in the settled zone): what is
    left of its evidence, or None when nothing is."""
    kept = tuple({holder[e].event_id: holder[e] for e in mark.evidence if e in holder}.values())
    if not kept:
        return None
    return LeadDraft(lead_id, RuleFamily(mark.rule), mark.window_start, kept[-1].occurred_on, kept)


def _region(code: str | None) -> Region:
    place = region(code) if code else None
    return {"code": code, "name": place.name if place else None}


def _evidence_entry(fact: Fact, mark: LeadMark) -> Evidence:
    return {"agency": fact.agency, "kind": fact.kind, "event_id": fact.event_id,
            "source_record_id": fact.source_record_id, "occurred_on": fact.occurred_on,
            "finding": _finding(fact),
            "also_reported_as": [srid for _, srid, _ in fact.also_reported],
            "resolution": fact.resolution or None, "category": fact.category or None,
            "chained": fact.event_id in mark.chained, "reported_after_days": fact.delay_days}


def _links(mark: LeadMark, holder: dict[str, Fact]) -> list[FollowUp]:
    """The lead's follow-up links (移送, 整改, 回头看 …), with the agency of the record each names."""
    return [{"kind": kind, "event_id": event_id or None, "lead_id": other or None,
             "agency": holder[event_id].agency if event_id in holder else None,
             "occurred_on": dt.date.fromordinal(day)} for kind, event_id, day, other in mark.links]


def _registered_licences(event: Event) -> list[str]:
    return list(detail_of(event).get("licences") or []) if event["kind"] == "REGISTRATION" else []


NEVER_LISTED: CreditFields = {"credit_status": None, "credit_listed_on": None, "credit_reason": None,
                              "credit_authority": None,
                "credit_removed_on": None}
MOVED_NOTE = "its evidence was resolved to "
# Superseded with no successor and nothing moved: the records no longer make
# the rule's lead (a late record re-drew the window), and the desk is told so.
NO_LONGER_NOTE = "its evidence no longer makes this lead: a record that arrived since re-drew the window"
# A lead holds up to history_max_events findings: each is clipped so that the
# lead record stays far below the broker's message limit.
FINDING_CHARS = 500


def _finding(fact: Fact) -> str:
    text = f"{fact.summary}; {fact.criminal}" if fact.criminal else fact.summary
    return text if len(text) <= FINDING_CHARS else text[:FINDING_CHARS - 1] + "…"


def _successor(mark: LeadMark) -> str | None:
    """The lead that took over a superseded one's evidence, if one did."""
    note = mark.history[-1][3] if mark.status is LeadStatus.SUPERSEDED else None
    return note if note and note.startswith(LEAD_ID_PREFIX) else None


def _maybe_ms(ms: int | None) -> dt.datetime | None:
    return None if ms is None else _from_ms(ms)


def _recommended_action(draft: LeadDraft) -> str:
    """The rule's action; a reverse referral also tells the desk which police
    case was dropped and when, which 310 hands back to the agency with the
    case (its 撤案 reason is not in the police export: the desk asks for
    the 撤案决定书)."""
    action = RECOMMENDED_ACTION[draft.rule]
    if draft.rule is not RuleFamily.REVERSE_REFERRAL:
        return action
    dropped = sorted({(f.occurred_on, f.source_record_id) for f in draft.evidence
                      if f.outcome == Outcome.POLICE_DROPPED.value})
    return action + "".join(f"；公安机关撤案：案件编号 {case}，{day.isoformat()}，"
                            "撤案原因未随数据报送，请向办案单位调取撤案决定书" for day, case in dropped)


def _from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def _corroborates(fact: Fact) -> bool:
    """An accepted complaint or tip-off, still on this business."""
    return fact.kind in COMPLAINT_KINDS and fact.outcome != Outcome.NOT_ACCEPTED.value and not fact.moved_to


def _corroborated_by(mark: LeadMark, complaint: Fact) -> bool:
    """A lead other than the complaints' own, whose window had begun when the complaint was made."""
    return mark.rule != RuleFamily.COMPLAINTS.value and mark.window_start <= complaint.occurred_on
