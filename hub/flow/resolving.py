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
from hub.domain.resolution import Candidate, Move, ParkedRecord, ResolverState, is_lookup_key
from hub.flow import events, signalling
from hub.flow.batch import Batch, Context
from hub.flow.effects import Observation, Seen
from hub.flow.messages import Refused, ResolutionKind, ResolutionMessage, resolution_message


def apply(ctx: Context, message: ResolutionMessage, batch: Batch) -> None:
    kind, key, body = message.kind, message.key, message.body
    if kind in signalling.KINDS:
        signalling.apply(ctx, message, batch)
    elif kind is ResolutionKind.EVENT:  # a resolved record reaches its business
        events.apply(ctx, message, key, batch, restore=True)
    elif kind is ResolutionKind.MOVED:
        state = batch.state(key, message.record.partition)
        if state.move(body["event_id"], body["moved_to"]):
            batch.changed[key] = state
    else:
        _at_lookup_key(ctx, message, batch)


def _at_lookup_key(ctx: Context, message: ResolutionMessage, batch: Batch) -> None:
    """REGISTER, WATCH and PARK: what the registry knows at one lookup key."""
    lookup_key = message.key.decode()
    if not is_lookup_key(lookup_key):
        raise Refused("misrouted_resolution", f"{message.kind} sent to a key that is no lookup key")
    resolver = batch.resolver(message.key)
    moves: list[Move] = []
    if message.kind is ResolutionKind.REGISTER:
        moves = _register(resolver, message, batch)
    elif message.kind is ResolutionKind.WATCH:
        for candidate in resolver.watch(message.body["watcher"]):
            batch.resolve(message.body["watcher"], resolution_message(
                ResolutionKind.REGISTER, candidate=candidate.to_json(), relayed=True))
    elif message.kind is ResolutionKind.PARK and message.event is not None:
        body = message.body
        record = _parked(message.event, body["provisional_key"], body["event_topic"], body["event"],
                         int(ctx.clock() * 1000))
        watch, moves = resolver.park(record)
        for watched in watch:
            batch.resolve(watched, resolution_message(ResolutionKind.WATCH, watcher=lookup_key))
    batch.changed_resolvers[message.key] = resolver
    for move in moves:
        _move(ctx, move, batch)


def _register(resolver: ResolverState, message: ResolutionMessage, batch: Batch) -> list[Move]:
    """A business's knowledge at a lookup key; relayed (once) to the keys
    that watch it when it grew."""
    body = message.body
    candidate = Candidate.from_json(body["candidate"][1])  # (record name, fields): a union
    before = resolver.candidates.get(candidate.business_id)
    moves = resolver.register(candidate, body["relayed"])
    merged = resolver.candidates[candidate.business_id]
    if not body["relayed"] and merged != before:
        for watcher in resolver.relay_to():
            batch.resolve(watcher, resolution_message(ResolutionKind.REGISTER, candidate=merged.to_json(),
                                                      relayed=True))
    return moves


def _move(ctx: Context, move: Move, batch: Batch) -> None:
    """Publish a changed decision: the record leaves where it was and reaches
    where it now belongs, or, still on the same business, is sent there
    again with the new explanation."""
    record, old, new = move.record, move.old.business_id, move.new.business_id
    if old is not None and old != new:
        batch.resolve(old, resolution_message(ResolutionKind.MOVED, event_id=record.event_id,
                                              moved_to=record.provisional_key))
    if new is not None and move.candidate is not None:
        if old != new:
            batch.effects.observations.append(Observation(Seen.RESOLVED, move.new.method))
            batch.resolve(record.provisional_key, resolution_message(
                ResolutionKind.MOVED, event_id=record.event_id, moved_to=new))
        event = dict(ctx.reader.decode_event(record.event))
        event["business"] = {**event["business"], "business_id": new, "region_code": move.candidate.region_code}
        event["resolution"] = move.new.explanation
        batch.resolve(new, resolution_message(ResolutionKind.EVENT, event=ctx.encode_event(record.topic, event)))
    elif old is not None:
        batch.resolve(record.provisional_key, resolution_message(
            ResolutionKind.MOVED, event_id=record.event_id, moved_to=""))


def _parked(event: Event, provisional_key: str, topic: str, value: bytes, now_ms: int) -> ParkedRecord:
    business = event["business"]
    return ParkedRecord(event["event_id"], provisional_key, topic, value, normalise_name(business["name"]),
                        business["name"], business["region_code"],
                        normalise_name(business["address"]) if business["address"] else None,
                        business["licence_number"], business["registration_number"], now_ms)
