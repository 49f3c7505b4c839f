"""Entity resolution's traffic in the flow (实体识别). Records that carry a
USCC teach the registry (REGISTER to each of the business's lookup keys),
records without one are parked at a lookup key (PARK), and when the
resolver's answer for a record changes the record moves (EVENT to its
business, MOVED to the key it leaves). The decisions themselves are the
domain's (``hub.domain.resolution``); this module routes the messages."""
from __future__ import annotations

from typing import TYPE_CHECKING

from hub.domain.events import Event
from hub.domain.names import normalise_name
from hub.domain.resolution import Candidate, Move, ParkedRecord, is_lookup_key
from hub.flow import signalling
from hub.flow.effects import Observation, Seen
from hub.flow.messages import Refused, ResolutionKind, ResolutionMessage, resolution_message

if TYPE_CHECKING:
    from hub.flow.core import Batch, Flow


def apply(flow: Flow, message: ResolutionMessage, batch: Batch) -> None:
    kind, key, body = message.kind, message.key, message.body
    if kind in signalling.KINDS:
        signalling.apply(flow, message, batch)
        return
    if kind is ResolutionKind.EVENT:  # a resolved record reaches its business
        flow.event(message, key, batch, restore=True)
        return
    if kind is ResolutionKind.MOVED:
        state = flow.state(batch, key, message.record.partition)
        if state.move(body["event_id"], body["moved_to"]):
            batch.changed[key] = state
        return
    lookup_key = key.decode()
    if not is_lookup_key(lookup_key):
        raise Refused("misrouted_resolution", f"{kind} sent to a key that is no lookup key")
    resolver = flow.resolver(batch, key)
    first = batch.effects.first
    moves: list[Move] = []
    if kind is ResolutionKind.REGISTER:
        candidate = Candidate.from_json(body["candidate"][1])  # (record name, fields): a union
        before = resolver.candidates.get(candidate.business_id)
        moves = resolver.register(candidate, body["relayed"])
        merged = resolver.candidates[candidate.business_id]
        if not body["relayed"] and merged != before:
            first += [flow.resolution(w, resolution_message(ResolutionKind.REGISTER, candidate=merged.to_json(),
                                                            relayed=True))
                      for w in resolver.relay_to()]
    elif kind is ResolutionKind.WATCH:
        first += [flow.resolution(body["watcher"], resolution_message(ResolutionKind.REGISTER,
                                                                      candidate=c.to_json(), relayed=True))
                  for c in resolver.watch(body["watcher"])]
    elif kind is ResolutionKind.PARK and message.event is not None:
        record = _parked(message.event, body["provisional_key"], body["event_topic"], body["event"],
                         int(flow.clock() * 1000))
        watch, moves = resolver.park(record)
        first += [flow.resolution(k, resolution_message(ResolutionKind.WATCH, watcher=lookup_key)) for k in watch]
    batch.changed_resolvers[key] = resolver
    for move in moves:
        _move(flow, move, batch)


def _move(flow: Flow, move: Move, batch: Batch) -> None:
    """Publish a changed decision: the record leaves where it was and reaches
    where it now belongs, or, still on the same business, is sent there
    again with the new explanation."""
    record, old, new = move.record, move.old.business_id, move.new.business_id
    first = batch.effects.first
    if old is not None and old != new:
        first.append(flow.resolution(old, resolution_message(ResolutionKind.MOVED, event_id=record.event_id,
                                                             moved_to=record.provisional_key)))
    if new is not None and move.candidate is not None:
        if old != new:
            batch.effects.observations.append(Observation(Seen.RESOLVED, move.new.method))
            first.append(flow.resolution(record.provisional_key, resolution_message(
                ResolutionKind.MOVED, event_id=record.event_id, moved_to=new)))
        event = dict(flow.reader.decode_event(record.event))
        event["business"] = {**event["business"], "business_id": new, "region_code": move.candidate.region_code}
        event["resolution"] = move.new.explanation
        first.append(flow.resolution(new, resolution_message(
            ResolutionKind.EVENT, event=flow.encode_event(record.topic, event))))
    elif old is not None:
        first.append(flow.resolution(record.provisional_key, resolution_message(
            ResolutionKind.MOVED, event_id=record.event_id, moved_to="")))


def _parked(event: Event, provisional_key: str, topic: str, value: bytes, now_ms: int) -> ParkedRecord:
    business = event["business"]
    return ParkedRecord(event["event_id"], provisional_key, topic, value, normalise_name(business["name"]),
                        business["name"], business["region_code"],
                        normalise_name(business["address"]) if business["address"] else None,
                        business["licence_number"], business["registration_number"], now_ms)
