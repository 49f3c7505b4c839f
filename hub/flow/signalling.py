"""Cross-business signals in the flow (hub.domain.signals): what a
business's records tell the indexes they count in, and what the indexes
tell businesses back. Like entity resolution's, these messages travel on
the resolution topic keyed by their target, so each target's state is
changed only by the worker that owns its partition.

- out of a business: ``SIGNAL`` (a complaint to its complainant's index, a
  failed sample to its areas' indexes) and ``MEMBER`` (to each of its legal
  representatives' indexes, when what they should know of it changed);
- into a business: ``SERIAL`` and ``LINK``;
- into an index: ``SIGNAL`` and ``MEMBER``.
A message sent to a key of the wrong kind is refused (``misrouted_resolution``).
"""
from __future__ import annotations

from typing import Any

from hub.domain import indexes, signals
from hub.domain.events import Event, cst_day
from hub.domain.leads import Accepted, BusinessState
from hub.flow.batch import Batch, Context
from hub.flow.effects import Observation, Seen
from hub.flow.messages import Refused, ResolutionKind, ResolutionMessage, resolution_message

_TARGETS = {ResolutionKind.SIGNAL: (signals.COMPLAINANT_PREFIX, signals.AREA_PREFIX),
            ResolutionKind.MEMBER: (signals.PERSON_PREFIX,)}


def send_for_event(batch: Batch, key: bytes, state: BusinessState, event: Event, accepted: Accepted,
                   encoded: bytes) -> None:
    """What an event newly on a business tells the indexes it counts in."""
    if not accepted.is_evidence:
        return
    targets = [k for k in (signals.complainant_key(event), *signals.area_keys(event)) if k]
    if not targets:
        return
    subject = signals.Party(key.decode(), state.business_id, state.name, state.region_code, (),
                            event["occurred_on"]).to_message()
    _send(batch, ResolutionKind.SIGNAL, targets, event=encoded, party=subject)


def send_for_state(batch: Batch, key: bytes, state: BusinessState, now_ms: int) -> None:
    """What a changed business tells its legal representatives' indexes:
    itself, whenever its name, identity or reasons to matter changed."""
    if not state.representatives or signals.is_index_key(key.decode()):
        return
    party = state.party(key.decode(), cst_day(now_ms))
    told = f"{sorted(state.representatives)}|{party.business_id}|{party.name}|{','.join(party.reasons)}"
    if told != state.member_told:
        state.member_told = told
        _send(batch, ResolutionKind.MEMBER, signals.person_keys(state.representatives),
              party=party.to_message())


def _send(batch: Batch, kind: ResolutionKind, targets: list[str], **fields: Any) -> None:
    for target in targets:
        batch.resolve(target, resolution_message(kind, **fields))
    batch.effects.observations += [Observation(Seen.SIGNAL, kind.value)] * len(targets)


def apply(ctx: Context, message: ResolutionMessage, batch: Batch) -> None:
    kind, key = message.kind, message.key.decode()
    prefixes = _TARGETS.get(kind)
    if (prefixes is not None and not key.startswith(prefixes)) or (prefixes is None and signals.is_index_key(key)):
        raise Refused("misrouted_resolution", f"{kind} sent to a key of another kind")
    state = batch.state(message.key, message.record.partition)
    if _APPLY[kind](ctx, message, batch, state):
        batch.changed[message.key] = state


def _signal(ctx: Context, message: ResolutionMessage, batch: Batch, state: BusinessState) -> bool:
    """A business's record at a complainant's or an area's index."""
    assert message.event is not None  # the reader refuses a SIGNAL without one
    key = message.key.decode()
    changed = indexes.count(state, key, message.event, signals.Party.from_message(message.body["party"]), ctx.rules)
    if changed and key.startswith(signals.COMPLAINANT_PREFIX):
        _send(batch, ResolutionKind.SERIAL, indexes.serial_to_tell(state, ctx.rules), index_key=key)
    return changed


def _member(ctx: Context, message: ResolutionMessage, batch: Batch, state: BusinessState) -> bool:
    """A business at its legal representative's index: the links to tell."""
    for to, other in indexes.member(state, signals.Party.from_message(message.body["party"]), ctx.rules):
        _send(batch, ResolutionKind.LINK, [to], party=other.to_message())
    return True


def _serial(ctx: Context, message: ResolutionMessage, batch: Batch, state: BusinessState) -> bool:
    """A business told that one of its complainants files serially."""
    complainant = str(message.body["index_key"]).removeprefix(signals.COMPLAINANT_PREFIX)
    changed = complainant not in state.serial
    state.serial.add(complainant)
    return changed


def _link(ctx: Context, message: ResolutionMessage, batch: Batch, state: BusinessState) -> bool:
    """A business told of another of its legal representative's that matters."""
    fact = signals.link_fact(signals.Party.from_message(message.body["party"]))
    known = state.facts.get(fact.event_id)
    changed = known is None or known.outcome != fact.outcome  # new, withdrawn, or told again after that
    if changed:
        state.facts[fact.event_id] = fact
    return changed


_APPLY = {ResolutionKind.SIGNAL: _signal, ResolutionKind.MEMBER: _member, ResolutionKind.SERIAL: _serial,
          ResolutionKind.LINK: _link}
KINDS = frozenset(_APPLY)
