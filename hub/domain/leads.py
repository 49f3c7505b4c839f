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
    status: str = "OPEN"


@dataclass
class BusinessState:
    """One business's recent history, keyed by its business key."""

    name: str = ""
    business_id: str | None = None
    region_code: str | None = None
    facts: dict[str, Fact] = field(default_factory=dict)
    leads: dict[str, LeadMark] = field(default_factory=dict)

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
        kept = sorted((f for f in self.facts.values() if f.occurred_on >= horizon),
                      key=lambda f: (f.occurred_on, f.event_id))[-rules.history_max_events:]
        if len(kept) != len(self.facts):
            self.facts = {f.event_id: f for f in kept}
        self.leads = {k: m for k, m in self.leads.items() if m.window_start >= horizon}

    # -- leads ------------------------------------------------------------
    def lead_updates(self, business_key: str, rules: RuleSettings, now_ms: int) -> list[dict[str, Any]]:
        """Lead records to publish: new leads, leads with new evidence, and leads
        a late older event superseded. Marks them published."""
        drafts = evaluate(business_key, self.facts.values(), rules)
        out: list[dict[str, Any]] = []
        current = {d.lead_id for d in drafts}
        for draft in drafts:
            mark = self.leads.get(draft.lead_id)
            fingerprint = draft.fingerprint()
            if mark is not None and mark.fingerprint == fingerprint and mark.status == "OPEN":
                continue
            first_seen = mark.first_seen_ms if mark else now_ms
            self.leads[draft.lead_id] = LeadMark(first_seen, fingerprint, draft.rule.value, draft.window_start)
            out.append(self._record(business_key, draft, first_seen, now_ms, "OPEN", None))
        for old_id, mark in list(self.leads.items()):
            if old_id in current or mark.status != "OPEN":
                continue
            successor = next((d for d in drafts if d.rule.value == mark.rule
                              and d.window_start <= mark.window_start <= d.window_end), None)
            mark.status = "SUPERSEDED"
            if successor is not None:
                out.append(self._record(business_key, successor, mark.first_seen_ms, now_ms, "SUPERSEDED",
                                        successor.lead_id, lead_id=old_id))
        return out

    def _record(self, business_key: str, draft: LeadDraft, first_seen_ms: int, now_ms: int, status: str,
                superseded_by: str | None, lead_id: str | None = None) -> dict[str, Any]:
        code = self.region_code
        place = region(code) if code else None
        return {
            "lead_id": lead_id or draft.lead_id,
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
            "f": [f.to_json() for f in self.facts.values()],
            "l": {k: [m.first_seen_ms, m.fingerprint, m.rule, m.window_start.toordinal(), m.status]
                  for k, m in self.leads.items()},
        }, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "BusinessState":
        raw = json.loads(data)
        facts = [Fact.from_json(f) for f in raw["f"]]
        return cls(raw["n"], raw["b"], raw["r"], {f.event_id: f for f in facts},
                   {k: LeadMark(int(v[0]), v[1], v[2], dt.date.fromordinal(int(v[3])), v[4])
                    for k, v in raw["l"].items()})


def _from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
