"""Index states (see ``hub.domain.signals``): what many businesses share
meets at a state keyed by what is shared (a complainant, an area, a legal
representative), kept in the businesses' table like a business's state.
These functions change an index state; the flow carries the messages."""
from __future__ import annotations

import dataclasses

from hub.domain.events import UNRESOLVED_PREFIX, Event, EventKind
from hub.domain.identifiers import region
from hub.domain.leads import BusinessState
from hub.domain.rules import Fact, to_fact
from hub.domain.signals import AREA_PREFIX, MEMBER_PREFIX, TOLD, WITHDRAWN, Party, member_name, windows
from hub.settings import RuleSettings


def count(state: BusinessState, key: str, event: Event, subject: Party, rules: RuleSettings) -> bool:
    """A business's record at a complainant's or an area's index; whether it
    is new there. No near-duplicate merging: two businesses' alike results
    are two businesses failing."""
    known = state.facts.get(event["event_id"])
    if known is not None:
        # The same record, first counted under its business's provisional key (not resolved yet), then
        # again once resolution moved it to the USCC: the index names the business by its USCC, as it
        # would had resolution come first, so the lead's parties do not depend on that race.
        if not (known.party.startswith(UNRESOLVED_PREFIX) and not subject.key.startswith(UNRESOLVED_PREFIX)):
            return False
        state.facts[known.event_id] = dataclasses.replace(known, party=subject.key, party_name=subject.name,
                                                          party_region=subject.region_code or "")
        return True
    fact = dataclasses.replace(to_fact(event, rules), party=subject.key, party_name=subject.name,
                               party_region=subject.region_code or "", identity="", resolution="")
    state.facts[fact.event_id] = fact
    if key.startswith(AREA_PREFIX) and not state.name:
        county, item, kind = key.removeprefix(AREA_PREFIX).split("|", 2)
        place = region(county)
        state.name, state.region_code = f"{place.name if place else county} {kind} {item} 区域风险", county
    state.prune(rules)
    return True


def serial_to_tell(state: BusinessState, rules: RuleSettings) -> list[str]:
    """At a complainant's index: the businesses to tell that the complainant
    is a serial filer (once it is one, every business it filed against, and
    each it files against later), each once."""
    facts = sorted(state.facts.values(), key=lambda f: (f.occurred_on, f.event_id))
    if not windows(facts, rules.complaints_window_days, rules.serial_filer_businesses, member_name):
        return []
    told = sorted({f.party for f in facts} - {t.removeprefix(TOLD) for t in state.flagged if t.startswith(TOLD)})
    state.flagged.update(TOLD + party for party in told)
    return told


def member(state: BusinessState, party: Party, rules: RuleSettings) -> list[tuple[str, Party]]:
    """At a legal representative's index: a business says it is theirs (and
    why it matters, if it does). The links to tell, each once: (to whom, the
    other business, with one reason)."""
    event_id = MEMBER_PREFIX + party.key
    members = {f.party for f in state.facts.values()}
    if party.key not in members and len(members) > rules.related_party_max_businesses:
        return []  # over-common already: it links nothing, and need not keep counting
    state.facts[event_id] = Fact(event_id, "SAMR", EventKind.REGISTRATION.value, party.on, False, "",
                                 party.business_id or "", "", 0, identity=",".join(sorted(party.reasons)),
                                 party=party.key, party_name=party.name, party_region=party.region_code or "")
    if len(state.facts) > rules.related_party_max_businesses:
        return []
    out = []
    for one in sorted(state.facts.values(), key=lambda f: f.event_id):
        for other in sorted(state.facts.values(), key=lambda f: f.event_id):
            if one.party == other.party:
                continue
            current = [r for r in other.identity.split(",") if r]
            for reason in current:
                told = f"{TOLD}{one.party}>{other.party}:{reason}"
                if told not in state.flagged:
                    state.flagged.add(told)
                    out.append((one.party, _other(one, other, reason)))
            # what was told and holds no more (a listing removed): told as withdrawn, once
            for told in sorted(t for t in state.flagged if t.startswith(f"{TOLD}{one.party}>{other.party}:")):
                reason = told.rsplit(":", 1)[1]
                if reason not in current:
                    state.flagged.discard(told)
                    out.append((one.party, _other(one, other, WITHDRAWN + reason)))
    return out


def _other(one: Fact, other: Fact, reason: str) -> Party:
    return Party(other.party, other.summary or None, other.party_name, other.party_region or None, (reason,),
                 max(one.occurred_on, other.occurred_on))
