"""An agency's record (事件) reaching its business: accepted into the
business's history (or not: a duplicate, a near-duplicate, too old),
counted, audited, and passed on to what it teaches: the registry (a record
with its USCC), the indexes it counts in (``signalling``), and, for a
record without a USCC, entity resolution, where it waits for its business."""
from __future__ import annotations

from hub.audit.entries import AuditAction, Note
from hub.domain.events import Event, EventKind, reporting_delay_s
from hub.domain.leads import Accepted, BusinessState
from hub.domain.names import normalise_name
from hub.domain.resolution import record_keys
from hub.flow import signalling
from hub.flow.batch import Batch, Context
from hub.flow.deadletters import position
from hub.flow.effects import Effects, Observation, Seen
from hub.flow.messages import EventMessage, Park, Register, Resolved, ResolutionMessage

# What an outcome is counted as, beyond the event itself.
_SEEN = {Accepted.DUPLICATE: Seen.DUPLICATE, Accepted.NEAR_DUPLICATE: Seen.NEAR_DUPLICATE}


def apply(ctx: Context, message: EventMessage | ResolutionMessage, key: bytes, batch: Batch,
          restore: bool = False) -> None:
    """``restore``: a resolved record coming back to its business (counted when it arrived)."""
    event = message.event
    assert event is not None
    state = batch.state(key, message.record.partition)
    _note_received(batch.effects, event)
    outcome = _accept(ctx, state, event, restore)
    if not restore:
        _note_arrival(batch, message, key, event, outcome)
    _count(batch.effects, event, outcome)
    if not restore and outcome in (Accepted.NEW, Accepted.REOPENED):
        _note_fresh(batch, event)
    represented = state.represented_by(event)  # a new legal representative is kept, whatever the outcome
    if outcome.changes_state or represented:
        batch.changed[key] = state
    encoded = message.record.value if isinstance(message, EventMessage) else _carried(message)
    assert encoded is not None  # the reader refuses tombstones
    signalling.send_for_event(batch, key, state, event, outcome, encoded)
    _teach_registry(batch, key, state, event)
    if outcome.is_evidence and not event["business"]["business_id"] and not restore:
        _park(batch, message, key, event)


def _note_received(effects: Effects, event: Event) -> None:
    received = event["received_at"].timestamp()
    if effects.oldest_received_at is None or received < effects.oldest_received_at:
        effects.oldest_received_at = received


def _accept(ctx: Context, state: BusinessState, event: Event, restore: bool) -> Accepted:
    # A registry entry teaches the registry and is no evidence of anything.
    if event["kind"] == EventKind.REGISTRATION.value:
        return Accepted.REGISTERED
    return state.accept(event, ctx.rules, restore)


def _note_arrival(batch: Batch, message: EventMessage | ResolutionMessage, key: bytes, event: Event,
                  outcome: Accepted) -> None:
    """A record counted when it arrived (not when resolution brings it back)."""
    batch.effects.observations.append(Observation(Seen.EVENT, event["agency"]))
    batch.effects.audit.append(Note(batch.sender, AuditAction.EVENT_ACCEPTED, event["event_id"], outcome.value,
                                    source=position(message.record), detail={"business": key.decode()}))


def _note_fresh(batch: Batch, event: Event) -> None:
    """New evidence first seen in this batch: how late its agency reported it."""
    batch.fresh.add(event["event_id"])
    batch.effects.observations.append(Observation(Seen.REPORTING_DELAY, event["source"]["connector"],
                                                  reporting_delay_s(event), event["kind"]))


def _count(effects: Effects, event: Event, outcome: Accepted) -> None:
    if outcome in _SEEN:
        effects.observations.append(Observation(_SEEN[outcome], event["agency"]))
    elif outcome is Accepted.REOPENED:
        effects.observations.append(Observation(Seen.REOPENED))


def _teach_registry(batch: Batch, key: bytes, state: BusinessState, event: Event) -> None:
    learned = state.learn(event)
    if learned is None:
        return
    batch.changed[key] = state
    for lookup_key in learned.lookup_keys():
        batch.resolve(lookup_key, Register(learned))


def _park(batch: Batch, message: EventMessage | ResolutionMessage, key: bytes, event: Event) -> None:
    """No USCC: the rules see it under its provisional key, and it waits for its business."""
    business = event["business"]
    home = record_keys(normalise_name(business["name"]), business["licence_number"],
                       business["registration_number"])[0]
    assert message.record.value is not None
    batch.resolve(home, Park(message.record.value, message.record.topic, key.decode()))


def _carried(message: ResolutionMessage) -> bytes:
    assert isinstance(message.body, Resolved)  # the only resolution message that reaches a business's events
    return message.body.event
