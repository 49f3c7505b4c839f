"""Entity resolution's traffic in the flow (实体识别). Records that carry a
USCC teach the registry (REGISTER to each of the business's lookup keys),
records without one are parked at a lookup key (PARK), and when the
resolver's answer for a record changes the record moves (EVENT to its
business, MOVED to the key it leaves). The decisions themselves are the
domain's (``hub.domain.resolution``); this module routes the messages.
The index signals share the topic (``hub.flow.signalling``)."""
from __future__ import annotations

from hub.domain.events import Event
from hub.domain.names import normalise_name
from hub.domain.resolution import Move, ParkedRecord, ResolverState, is_lookup_key
from hub.flow import events, signalling
from hub.flow.batch import Batch, Context
from hub.flow.effects import Observation, Seen
from hub.flow.messages import (Link, Membership, Moved, Park, Refused, Register, Resolved, ResolutionMessage, Serial,
                               Signal, Watch)


def apply(ctx: Context, message: ResolutionMessage, batch: Batch) -> None:
    body, key = message.body, message.key
    if isinstance(body, (Signal, Serial, Membership, Link)):
        signalling.apply(ctx, message, batch)
    elif isinstance(body, Resolved):  # a resolved record reaches its business
        events.apply(ctx, message, key, batch, restore=True)
    elif isinstance(body, Moved):
        state = batch.state(key, message.record.partition)
        if state.move(body.event_id, body.moved_to):
            batch.changed[key] = state
    else:
        _at_lookup_key(ctx, message, body, batch)


def _at_lookup_key(ctx: Context, message: ResolutionMessage, body: Register | Watch | Park, batch: Batch) -> None:
    """REGISTER, WATCH and PARK: what the registry knows at one lookup key."""
    lookup_key = message.key.decode()
    if not is_lookup_key(lookup_key):
        raise Refused("misrouted_resolution", f"{message.kind} sent to a key that is no lookup key")
    resolver = batch.resolver(message.key)
    moves: list[Move] = []
    if isinstance(body, Register):
        moves = _register(resolver, body, batch)
    elif isinstance(body, Watch):
        for candidate in resolver.watch(body.watcher):
            batch.resolve(body.watcher, Register(candidate, relayed=True))
    else:
        assert message.event is not None  # the reader refuses a PARK without its event
        record = _parked(message.event, body.provisional_key, body.event_topic, body.event, int(ctx.clock() * 1000))
        watch, moves = resolver.park(record)
        for watched in watch:
            batch.resolve(watched, Watch(lookup_key))
    batch.changed_resolvers[message.key] = resolver
    for move in moves:
        _move(ctx, move, batch)


def _register(resolver: ResolverState, body: Register, batch: Batch) -> list[Move]:
    """A business's knowledge at a lookup key; relayed (once) to the keys
    that watch it when it grew."""
    candidate = body.candidate
    before = resolver.candidates.get(candidate.business_id)
    moves = resolver.register(candidate, body.relayed)
    merged = resolver.candidates[candidate.business_id]
    if not body.relayed and merged != before:
        for watcher in resolver.relay_to():
            batch.resolve(watcher, Register(merged, relayed=True))
    return moves


def _move(ctx: Context, move: Move, batch: Batch) -> None:
    """Publish a changed decision: the record leaves where it was and reaches
    where it now belongs, or, still on the same business, is sent there
    again with the new explanation."""
    record, old, new = move.record, move.old.business_id, move.new.business_id
    if old is not None and old != new:
        batch.resolve(old, Moved(record.event_id, record.provisional_key))
    if new is not None and move.candidate is not None:
        if old != new:
            batch.effects.observations.append(Observation(Seen.RESOLVED, move.new.method))
            batch.resolve(record.provisional_key, Moved(record.event_id, new))
        event = ctx.reader.decode_event(record.event)
        event = {**event, "business": {**event["business"], "business_id": new,
                                       "region_code": move.candidate.region_code},
                 "resolution": move.new.explanation}
        batch.resolve(new, Resolved(ctx.encode_event(record.topic, event)))
    elif old is not None:
        batch.resolve(record.provisional_key, Moved(record.event_id, ""))


def _parked(event: Event, provisional_key: str, topic: str, value: bytes, now_ms: int) -> ParkedRecord:
    business = event["business"]
    return ParkedRecord(event["event_id"], provisional_key, topic, value, normalise_name(business["name"]),
                        business["name"], business["region_code"],
                        normalise_name(business["address"]) if business["address"] else None,
                        business["licence_number"], business["registration_number"], now_ms)
