"""A business's state (its recent history and the leads published for it) and
the lead records (执法线索) that state implies."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from hub.domain.events import Event
from hub.domain.identifiers import region
from hub.domain.rules import RECOMMENDED_ACTION, Fact, LeadDraft, RuleFamily, evaluate, to_fact
from hub.settings import RuleSettings


@dataclass
class LeadMark:
    """What the hub remembers of a lead it published."""

    first_seen_ms: int
    fingerprint: str
    rule: str
    window_start: dt.date
    evidence: tuple[str, ...] = ()
    status: str = "OPEN"


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

    def accept(self, event: Event, rules: RuleSettings) -> str:
        """'new', 'duplicate' (same agency and source record seen before) or
        'expired' (older than the history kept, so it can change no lead)."""
        if event["event_id"] in self.facts:
            return "duplicate"
        fact = to_fact(event, rules)
        if self.facts and fact.occurred_on < self._horizon(rules):
            return "expired"
        self.facts[fact.event_id] = fact
        business = event["business"]
        self.name = business["name"]
        self.business_id = self.business_id or business["business_id"]
        self.region_code = self.region_code or business["region_code"]
        self._prune(rules)
        return "new"

    def _horizon(self, rules: RuleSettings) -> dt.date:
        newest = max(f.occurred_on for f in self.facts.values())
        return newest - dt.timedelta(days=rules.history_days)

    def _prune(self, rules: RuleSettings) -> None:
        horizon = self._horizon(rules)
        # accept() runs this per event: sort only when something has to go
        if len(self.facts) > rules.history_max_events or any(f.occurred_on < horizon for f in self.facts.values()):
            kept = sorted((f for f in self.facts.values() if f.occurred_on >= horizon),
                          key=lambda f: (f.occurred_on, f.event_id))[-rules.history_max_events:]
            kept_ids = {f.event_id for f in kept}
            dropped = max(f.occurred_on for f in self.facts.values() if f.event_id not in kept_ids)
            self.pruned_through = max(dropped, self.pruned_through or dropped)
            self.facts = {f.event_id: f for f in kept}
        self.leads = {k: m for k, m in self.leads.items() if m.window_start >= horizon}

    # -- leads ------------------------------------------------------------
    def lead_updates(self, business_key: str, rules: RuleSettings, now_ms: int) -> list[dict[str, Any]]:
        """Lead records to publish: new leads, leads with new evidence, and leads
        a late older event superseded. Marks them published."""
        drafts = evaluate(business_key, self.facts.values(), rules)
        if self.pruned_through is not None:
            # A window that could reach back to forgotten facts would be re-drawn
            # from part of its evidence: leads there are final as published.
            settled = self.pruned_through + dt.timedelta(
                days=max(rules.cross_agency_window_days, rules.repeat_offender_window_days))
            drafts = [d for d in drafts if d.window_start > settled]
        out: list[dict[str, Any]] = []
        current = {d.lead_id for d in drafts}
        for draft in drafts:
            mark = self.leads.get(draft.lead_id)
            fingerprint = draft.fingerprint()
            if mark is not None and mark.fingerprint == fingerprint and mark.status == "OPEN":
                continue
            first_seen = mark.first_seen_ms if mark else now_ms
            self.leads[draft.lead_id] = LeadMark(first_seen, fingerprint, draft.rule.value, draft.window_start,
                                                 tuple(f.event_id for f in draft.evidence))
            out.append(self._record(business_key, draft, first_seen, now_ms, "OPEN", None))
        for old_id, mark in list(self.leads.items()):
            if old_id in current or mark.status != "OPEN":
                continue
            if self.pruned_through is not None and mark.window_start <= settled:
                continue
            # A late, older event re-drew this lead's window: say so on the
            # topic, pointing at the lead that now holds its evidence.
            mark.status = "SUPERSEDED"
            successor = next((d for d in drafts if d.rule.value == mark.rule
                              and set(mark.evidence) & {f.event_id for f in d.evidence}), None)
            kept = tuple(self.facts[e] for e in mark.evidence if e in self.facts)
            if not kept:
                continue
            old = LeadDraft(old_id, RuleFamily(mark.rule), mark.window_start, kept[-1].occurred_on, kept)
            out.append(self._record(business_key, old, mark.first_seen_ms, now_ms, "SUPERSEDED",
                                    successor.lead_id if successor else None))
        return out

    def _record(self, business_key: str, draft: LeadDraft, first_seen_ms: int, now_ms: int, status: str,
                superseded_by: str | None) -> dict[str, Any]:
        code = self.region_code
        place = region(code) if code else None
        return {
            "lead_id": draft.lead_id,
            "business_id": self.business_id,
            "business_key": business_key,
            "business_name": self.name,
            "region": {"code": code, "name": place.name if place else None},
            "rules": [draft.rule.value],
            "severity": draft.severity.value,
            "agencies": draft.agencies,
            "evidence": [{"agency": f.agency, "kind": f.kind, "event_id": f.event_id,
                          "source_record_id": f.source_record_id, "occurred_on": f.occurred_on,
                          "finding": f"{f.summary}; {f.criminal}" if f.criminal else f.summary}
                         for f in draft.evidence],
            "recommended_action": RECOMMENDED_ACTION[RuleFamily(draft.rule)],
            "status": status,
            "superseded_by": superseded_by,
            "window_start": draft.window_start,
            "window_end": draft.window_end,
            "first_seen": _from_ms(first_seen_ms),
            "updated_at": _from_ms(now_ms),
            "triggered_by_received_at": _from_ms(max(f.received_ms for f in draft.evidence)),
        }

    # -- storage ----------------------------------------------------------
    def to_bytes(self) -> bytes:
        return json.dumps({
            "n": self.name, "b": self.business_id, "r": self.region_code,
            "p": self.pruned_through.toordinal() if self.pruned_through else None,
            "f": [f.to_json() for f in self.facts.values()],
            "l": {k: [m.first_seen_ms, m.fingerprint, m.rule, m.window_start.toordinal(), list(m.evidence),
                      m.status] for k, m in self.leads.items()},
        }, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "BusinessState":
        raw = json.loads(data)
        facts = [Fact.from_json(f) for f in raw["f"]]
        return cls(raw["n"], raw["b"], raw["r"], {f.event_id: f for f in facts},
                   {k: LeadMark(int(v[0]), v[1], v[2], dt.date.fromordinal(int(v[3])), tuple(v[4]), v[5])
                    for k, v in raw["l"].items()},
                   dt.date.fromordinal(raw["p"]) if raw.get("p") else None)


def _from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
