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

from hub.domain import indexes, signals
from hub.domain.events import Event, cst_day
from hub.domain.signals import IndexKey, IndexKind
from hub.domain.leads import Accepted, BusinessState
from hub.flow.batch import Batch, Context
from hub.flow.effects import Observation, Seen
from hub.flow.messages import (Link, Membership, Refused, ResolutionBody, ResolutionKind, ResolutionMessage, Serial,
                               Signal)

# Where each kind may be sent: to an index of these kinds (None: to a business).
_TARGETS: dict[ResolutionKind, frozenset[IndexKind] | None] = {
    ResolutionKind.SIGNAL: frozenset({IndexKind.COMPLAINANT, IndexKind.AREA}),
    ResolutionKind.MEMBER: frozenset({IndexKind.PERSON}), ResolutionKind.SERIAL: None, ResolutionKind.LINK: None}


def send_for_event(batch: Batch, key: bytes, state: BusinessState, event: Event, accepted: Accepted,
                   encoded: bytes) -> None:
    """What an event newly on a business tells the indexes it counts in."""
    if not accepted.is_evidence:
        return
    targets = [k for k in (signals.complainant_key(event), *signals.area_keys(event)) if k]
    subject = signals.Party(key.decode(), state.business_id, state.name, state.region_code, (), event["occurred_on"])
    _send(batch, targets, Signal(encoded, subject))


def send_for_state(batch: Batch, key: bytes, state: BusinessState, now_ms: int) -> None:
    """What a changed business tells its legal representatives' indexes:
    itself, whenever its name, identity or reasons to matter changed."""
    if not state.representatives or signals.is_index_key(key.decode()):
        return
    party = state.party(key.decode(), cst_day(now_ms))
    told = f"{sorted(state.representatives)}|{party.business_id}|{party.name}|{','.join(party.reasons)}"
    if told != state.member_told:
        state.member_told = told
        _send(batch, signals.person_keys(state.representatives), Membership(party))


def _send(batch: Batch, targets: list[str], body: ResolutionBody) -> None:
    for target in targets:
        batch.resolve(target, body)
    batch.effects.observations += [Observation(Seen.SIGNAL, body.kind.value)] * len(targets)


def apply(ctx: Context, message: ResolutionMessage, batch: Batch) -> None:
    target = IndexKey.parse(message.key.decode())
    if _misrouted(target, _TARGETS[message.kind]):
        raise Refused("misrouted_resolution", f"{message.kind} sent to a key of another kind")
    body = message.body
    if isinstance(body, Signal):
        assert message.event is not None and target is not None  # the reader refuses a SIGNAL without its event
        _signal(ctx, message, body, batch, target)
    elif isinstance(body, Membership):
        assert target is not None
        _member(ctx, message, body, batch, target)
    elif isinstance(body, Serial):
        _serial(message, body, batch)
    elif isinstance(body, Link):
        _link(message, body, batch)


def _misrouted(target: IndexKey | None, allowed: frozenset[IndexKind] | None) -> bool:
    if allowed is None:  # for a business
        return target is not None
    return target is None or target.kind not in allowed


def _signal(ctx: Context, message: ResolutionMessage, body: Signal, batch: Batch, target: IndexKey) -> None:
    """A complaint at its complainant's index (which may tell the businesses
    that the complainant files serially), or a failed sample at an area's."""
    assert message.event is not None
    if target.kind is IndexKind.AREA:
        state = batch.state(message.key, message.record.partition)
        if indexes.count_sample(state, target, message.event, body.party, ctx.rules):
            batch.changed[message.key] = state
        return
    index = batch.index(message.key, target.kind)
    assert isinstance(index, indexes.ComplainantIndex)
    if indexes.count(index, message.event, body.party, ctx.rules):
        batch.changed_indexes[message.key] = index
        _send(batch, indexes.serial_to_tell(index, ctx.rules), Serial(str(target)))


def _member(ctx: Context, message: ResolutionMessage, body: Membership, batch: Batch, target: IndexKey) -> None:
    """A business at its legal representative's index: the links to tell."""
    index = batch.index(message.key, target.kind)
    assert isinstance(index, indexes.PersonIndex)
    for to, other in indexes.member(index, body.party, ctx.rules):
        _send(batch, [to], Link(other))
    batch.changed_indexes[message.key] = index


def _serial(message: ResolutionMessage, body: Serial, batch: Batch) -> None:
    """A business told that one of its complainants files serially."""
    state = batch.state(message.key, message.record.partition)
    ref = body.index_key.removeprefix(f"{IndexKind.COMPLAINANT}:")
    if ref not in state.serial:
        state.serial.add(ref)
        batch.changed[message.key] = state


def _link(message: ResolutionMessage, body: Link, batch: Batch) -> None:
    """A business told of another of its legal representative's that matters."""
    state = batch.state(message.key, message.record.partition)
    fact = signals.link_fact(body.party)
    known = state.facts.get(fact.event_id)
    if known is None or known.outcome != fact.outcome:  # new, withdrawn, or told again after that
        state.facts[fact.event_id] = fact
        batch.changed[message.key] = state
