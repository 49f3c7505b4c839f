"""The flow: a batch of records in, ``Effects`` out. No Kafka, no metrics, no
Avro here: the edge (``hub.edge.worker``, or the in-memory bus of the tests)
feeds it records and carries out its effects.

Four kinds of message meet a business's state, all keyed by business:
events (the rules), teams' feedback (the lead lifecycle), clock ticks, one
per partition, at which the deadlines of that partition's leads are
checked, and resolved records coming back from entity resolution. Time
reaches the lifecycle only through ticks and feedback, so a test (or a
replay) controls it by what it publishes. Resolution's own traffic
(``hub.flow.resolving``) keeps per lookup key what the registry knows.

Each record is applied on its own: one that cannot be decoded, validated or
processed becomes a dead letter, its changes are rolled back, and its
batch-mates go on. Only ``RegistryUnavailable`` (the infrastructure, not the
record) escapes, so the edge retries the whole batch without acknowledging it.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, Callable, Iterable, Mapping, TypeVar

from hub.audit.entries import UNPROVEN, AuditAction, Note
from hub.domain.events import EventKind, reporting_delay_s
from hub.domain.leads import Accepted, BusinessState
from hub.domain.lifecycle import Action, FeedbackRejected
from hub.domain.names import normalise_name
from hub.domain.pii import PersonalDataHasher, describe
from hub.domain.rules import Severity
from hub.domain.resolution import ResolverState, record_keys
from hub.domain.teams import Team, recipients, route
from hub.domain.validation import latest_date
from hub.flow import resolving, signalling
from hub.flow.codec import Codec, RegistryUnavailable
from hub.flow.effects import Effects, Observation, Seen, Send, Stage, StateWrite, Unresolved
from hub.flow.messages import (UNTRUSTED_CODES, EventMessage, FeedbackMessage, Message, Reader, Record, Refused,
                               ResolutionKind, ResolutionMessage, Tick, resolution_message)
from hub.flow.store import Store
from hub.flow.topics import (BUSINESS_TABLE, DEADLETTER_TOPIC, LEADS_TOPIC, RESOLUTION_TOPIC, RESOLVER_TABLE,
                             outcomes_topic)
from hub.settings import Settings
from hub.trust import Role, Verifier

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """One batch in hand: the states it loaded and changed, and what it owes
    to roll back the record being applied if that record fails."""

    effects: Effects
    states: dict[bytes, BusinessState] = field(default_factory=dict)  # loaded
    changed: dict[bytes, BusinessState] = field(default_factory=dict)  # to write
    partition_of: dict[bytes, int] = field(default_factory=dict)
    resolvers: dict[bytes, ResolverState] = field(default_factory=dict)
    changed_resolvers: dict[bytes, ResolverState] = field(default_factory=dict)
    # business key -> the records applied to it, each with its proven sender
    applied: dict[bytes, list[tuple[Record, str]]] = field(default_factory=dict)
    # What the record being applied touched: a key first loaded by it is
    # forgotten on rollback; one an earlier record had loaded gets back its
    # state from before (a snapshot; a resolver's bytes).
    undo: dict[bytes, BusinessState | None] = field(default_factory=dict)
    undo_resolvers: dict[bytes, bytes | None] = field(default_factory=dict)
    current: Record | None = None
    sender: str = UNPROVEN  # the identity that signed the record being applied
    fresh: set[str] = field(default_factory=set)  # event IDs first seen in this batch (for late reports)


class Flow:
    """The worker's logic for the partitions it owns (``assign``)."""

    def __init__(self, settings: Settings, codec: Codec, store: Store, teams: Mapping[str, Team],
                 verifier: Verifier, clock: Callable[[], float] = time.time) -> None:
        self.rules = settings.rules
        self.lifecycle = settings.lifecycle
        self.limits = settings.validation
        self.hasher = PersonalDataHasher(settings.pii_key)
        self.reader = Reader(codec.decoder, settings, verifier, teams)
        self.encoders: dict[str, Callable[[dict[str, Any]], bytes]] = {}
        self.codec = codec
        self.store = store
        self.teams = dict(teams)
        self.clock = clock
        self.identity = f"{Role.WORKER}:{settings.worker_name}"  # who publishes the leads
        # Who writes the states this flow changes: see BusinessState.resume.
        self.incarnation = uuid.uuid4().hex
        # partition -> business key -> its earliest pending deadline (epoch ms)
        self.deadlines: dict[int, dict[bytes, int]] = {}
        # lookup key -> (parked, ambiguous, oldest parked ms), for keys with records waiting only
        self.unresolved: dict[bytes, tuple[int, int, int]] = {}
        # Business key -> partition, of the stored states whose leads the next
        # batch republishes; each batch checks the store again, so a batch the
        # edge retries (its writes not done) republishes them too.
        self._owed: dict[bytes, int] = {}
        self.decoded = DecodedStates(settings.state_cache_businesses)

    # -- partitions ------------------------------------------------------
    def assign(self, partitions: frozenset[int]) -> None:
        """After a (re)start, a rebalance or ``renew``, and before the next
        batch: one pass over the stored states of ``partitions``. It rebuilds
        the deadline index and the count of unresolved records, and finds the
        states another incarnation wrote whose leads may never have reached
        the topics (it died or was fenced in between): the next batch
        republishes them, because waiting for each business's next record
        would leave them unpublished for good where none comes."""
        self.deadlines, self.unresolved, self._owed = {}, {}, {}
        self.decoded.clear()
        for key, data in self.store.businesses.items():
            partition = self.store.partition_of(key)
            if partition in partitions and (state := _readable(BusinessState.from_bytes, data)) is not None:
                self._index(key, state, partition)
                if state.resume(self.incarnation):
                    self._owed[key] = partition
                else:
                    self.decoded.keep(key, data, state)
        for key, data in self.store.resolver.items():
            if self.store.partition_of(key) in partitions and \
                    (resolver := _readable(ResolverState.from_bytes, data)) is not None:
                self._summarise_unresolved(key, resolver)

    def revoke(self, partitions: frozenset[int]) -> None:
        """These partitions went to another worker: nothing of theirs is
        kept in hand (their deadlines, their owed leads). ``assign`` follows
        before the next batch."""
        for partition in partitions:
            self.deadlines.pop(partition, None)
        self.decoded.clear()
        self._owed = {k: p for k, p in self._owed.items() if p not in partitions}
        self.unresolved = {k: v for k, v in self.unresolved.items()
                           if self.store.partition_of(k) not in partitions}

    def renew(self) -> None:
        """This worker was fenced: states it wrote may owe leads it did not
        publish. As another incarnation it republishes them; ``assign`` must
        be called again before the next batch."""
        self.incarnation = uuid.uuid4().hex
        self.decoded.clear()

    # -- a batch ---------------------------------------------------------
    def process(self, records: Iterable[Record | tuple[Any, ...]]) -> Effects:
        effects = Effects()
        batch = Batch(effects)
        now = self.clock()  # one clock reading for the batch
        latest = latest_date(now, self.limits)
        for key, partition in list(self._owed.items()):
            stored = self.store.businesses.get(key)
            state = None if stored is None else BusinessState.from_bytes(stored)
            if state is None or not state.resume(self.incarnation):  # written since
                del self._owed[key]
                continue
            batch.states[key] = batch.changed[key] = state
            batch.partition_of[key] = partition
        for raw in records:
            record = Record(*raw)
            batch.current = record
            batch.undo.clear()
            batch.undo_resolvers.clear()
            marks = (len(effects.first), len(effects.observations), len(effects.audit), effects.oldest_received_at)
            batch.sender = UNPROVEN
            started = perf_counter()
            try:
                signed = self.reader.verify(record)
                batch.sender = signed.signer.identity
                verified = perf_counter()
                effects.seconds[Stage.VERIFY] += verified - started
                message = self.reader.read(record, signed, latest, int(now * 1000))
                read = perf_counter()
                effects.seconds[Stage.DECODE] += read - verified
                self._apply(message, batch)
                effects.seconds[Stage.RULES] += perf_counter() - read
            except RegistryUnavailable:
                raise
            except Refused as exc:
                self._roll_back(batch, marks)
                self.dead(effects, exc.code, str(exc), record, batch.sender)
            except Exception as exc:  # a bug or a record nobody foresaw: it alone fails
                self._roll_back(batch, marks)
                log.warning("%s[%s]@%s failed: %s", record.topic, record.partition, record.offset, describe(exc))
                self.dead(effects, "processing_error", f"processing failed: {type(exc).__name__}", record, batch.sender)
        self._draw_leads(batch)
        started = perf_counter()
        for key, resolver in batch.changed_resolvers.items():
            self._summarise_unresolved(key, resolver)
            effects.states.append(StateWrite(RESOLVER_TABLE, key, resolver.to_bytes()))
        effects.seconds[Stage.STATE_ENCODE] += perf_counter() - started
        effects.seconds[Stage.RULES] -= effects.seconds[Stage.STATE_LOAD]  # timed inside the rules' time
        effects.unresolved = self.unresolved_now()
        return effects

    def _roll_back(self, batch: Batch, marks: tuple[int, int, int, float | None]) -> None:
        for key in batch.undo:
            batch.applied[key].pop()
        _restore(batch.undo, batch.states, batch.changed, lambda state: state)
        _restore(batch.undo_resolvers, batch.resolvers, batch.changed_resolvers, ResolverState.from_bytes)
        del batch.effects.first[marks[0]:], batch.effects.observations[marks[1]:], batch.effects.audit[marks[2]:]
        batch.effects.oldest_received_at = marks[3]

    def state(self, batch: Batch, key: bytes, partition: int) -> BusinessState:
        """A business's state, loaded once a batch; remembered for the rollback."""
        state = batch.states.get(key)
        if key not in batch.undo:  # the first touch by this record
            batch.undo[key] = None if state is None else state.snapshot()
            assert batch.current is not None
            batch.applied.setdefault(key, []).append((batch.current, batch.sender))
        if state is None:
            started = perf_counter()
            raw = self.store.businesses.get(key)
            state = batch.states[key] = self.decoded.take(key, raw) or (
                BusinessState.from_bytes(raw) if raw is not None else BusinessState())
            batch.effects.seconds[Stage.STATE_LOAD] += perf_counter() - started
            batch.partition_of[key] = partition
            if state.resume(self.incarnation):
                batch.changed[key] = state
        return state

    def resolver(self, batch: Batch, key: bytes) -> ResolverState:
        state = batch.resolvers.get(key)
        if key not in batch.undo_resolvers:
            batch.undo_resolvers[key] = None if state is None else state.to_bytes()
        if state is None:
            raw = self.store.resolver.get(key)
            state = batch.resolvers[key] = ResolverState.from_bytes(raw) if raw is not None else ResolverState()
        return state

    def _apply(self, message: Message, batch: Batch) -> None:
        if isinstance(message, EventMessage):
            self.event(message, message.key, batch)
        elif isinstance(message, FeedbackMessage):
            self._feedback(message, batch)
        elif isinstance(message, Tick):
            self._tick(message, batch)
        else:
            resolving.apply(self, message, batch)

    # -- events ----------------------------------------------------------
    def event(self, message: EventMessage | ResolutionMessage, key: bytes, batch: Batch,
              restore: bool = False) -> None:
        """``restore``: a resolved record coming back to its business (counted when it arrived)."""
        event = message.event
        assert event is not None
        record, effects = message.record, batch.effects
        state = self.state(batch, key, record.partition)
        received = event["received_at"].timestamp()
        if effects.oldest_received_at is None or received < effects.oldest_received_at:
            effects.oldest_received_at = received
        agency = event["agency"]
        if not restore:
            effects.observations.append(Observation(Seen.EVENT, agency))
        # A registry entry teaches the registry and is no evidence of anything.
        outcome = Accepted.REGISTERED if event["kind"] == EventKind.REGISTRATION.value else \
            state.accept(event, self.rules, restore)
        if not restore:
            effects.audit.append(Note(batch.sender, AuditAction.EVENT_ACCEPTED, event["event_id"], outcome.value,
                                      source=position(record), detail={"business": key.decode()}))
        if outcome is Accepted.DUPLICATE:
            effects.observations.append(Observation(Seen.DUPLICATE, agency))
        elif outcome.changes_state:
            batch.changed[key] = state
            if outcome is Accepted.NEAR_DUPLICATE:
                effects.observations.append(Observation(Seen.NEAR_DUPLICATE, agency))
            elif outcome is Accepted.REOPENED:
                effects.observations.append(Observation(Seen.REOPENED))
        if outcome in (Accepted.NEW, Accepted.REOPENED) and not restore:
            batch.fresh.add(event["event_id"])
            effects.observations.append(Observation(Seen.REPORTING_DELAY, event["source"]["connector"],
                                                    reporting_delay_s(event), event["kind"]))
        if state.represented_by(event):
            batch.changed[key] = state
        encoded = record.value if isinstance(message, EventMessage) else message.body["event"]
        assert encoded is not None  # the reader refuses tombstones and resolved records without their event
        signalling.send_for_event(self, effects, key, state, event, outcome, encoded)
        learned = state.learn(event)
        if learned is not None:
            batch.changed[key] = state
            effects.first += [self.resolution(k, resolution_message(ResolutionKind.REGISTER,
                                                                    candidate=learned.to_json()))
                              for k in learned.lookup_keys()]
        if outcome.is_evidence and not event["business"]["business_id"] and not restore:
            # No USCC: the rules see it under its provisional key, and it waits for its business.
            business = event["business"]
            home = record_keys(normalise_name(business["name"]), business["licence_number"],
                               business["registration_number"])[0]
            effects.first.append(self.resolution(home, resolution_message(
                ResolutionKind.PARK, event=record.value, event_topic=record.topic, provisional_key=key.decode())))

    def resolution(self, key: str, message: dict[str, Any]) -> Send:
        return Send(RESOLUTION_TOPIC, key.encode(), "resolution", message)

    def encode_event(self, topic: str, event: dict[str, Any]) -> bytes:
        encode = self.encoders.get(topic)
        if encode is None:
            encode = self.encoders[topic] = self.codec.encoder(topic, "event")
        return encode(event)

    # -- the lifecycle ---------------------------------------------------
    def _tick(self, tick: Tick, batch: Batch) -> None:
        partition = tick.record.partition
        escalated = 0
        for business in [k for k, due in self.deadlines.get(partition, {}).items() if due <= tick.at_ms]:
            state = self.state(batch, business, partition)
            for level in state.escalate_due(self.lifecycle, tick.at_ms):
                batch.effects.observations.append(Observation(Seen.ESCALATED, level))
                batch.changed[business] = state
                escalated += 1
            self._index(business, state, partition)
        batch.effects.observations.append(Observation(Seen.TICK, str(partition)))
        drill = batch.sender.startswith(f"{Role.OPERATOR}:")
        batch.effects.audit.append(Note(batch.sender, AuditAction.DRILL if drill else AuditAction.TICK,
                                        f"partition {partition}", f"{escalated} escalated",
                                        source=position(tick.record), detail={"at_ms": str(tick.at_ms)}))

    def _feedback(self, message: FeedbackMessage, batch: Batch) -> None:
        state = self.state(batch, message.business, message.record.partition)
        team = self.teams.get(message.feedback["team"])
        if team is not None and team.oversees:
            raise Refused("oversight_read_only", "an oversight team reads leads and does not change them")
        view = state.routing_view(message.feedback["lead_id"])
        if view is not None and message.feedback["team"] not in {t.name for t in recipients(view, self.teams)}:
            # Only a team the lead was routed to may change it. The name is
            # not echoed: a forged field may hold anything.
            raise Refused("team_not_recipient",
                          f"feedback on {message.feedback['lead_id']} from a team that does not receive it")
        # Scrubbed before anything is kept or sent on, whoever produced it.
        feedback = {**message.feedback, "note": self.hasher.scrub_feedback(message.feedback["note"], state.persons),
                    "by": self.hasher.desk(message.feedback["by"])}
        try:
            mark = state.apply_feedback(feedback["lead_id"], feedback["action"], feedback["team"],
                                        feedback["note"], message.at_ms)
        except FeedbackRejected as exc:
            raise Refused(exc.code, f"feedback on {feedback['lead_id']}: {exc}") from None
        audit = Note(batch.sender, AuditAction.FEEDBACK_APPLIED, feedback["lead_id"], str(feedback["action"]),
                     source=position(message.record), detail={"team": feedback["team"]})
        if mark is None:  # replayed after a crash: applied, and its outcomes sent, the first time
            batch.effects.audit.append(dataclasses.replace(audit, outcome="unchanged"))
            return
        batch.effects.audit.append(audit)
        batch.changed[message.business] = state
        flagged = mark.history[-1][1]
        if flagged.startswith("ESCALATED_"):  # the answer flagged the lead itself (NOT_TRANSFERRED)
            batch.effects.observations.append(Observation(Seen.ESCALATED, flagged.removeprefix("ESCALATED_")))
        waited = max(0.0, (message.at_ms - mark.opened_ms) / 1000)
        observations = batch.effects.observations
        if len([h for h in mark.history if h[0] >= mark.opened_ms and h[2] is not None]) == 1:
            observations.append(Observation(Seen.ACKNOWLEDGED_AFTER, mark.severity, waited))  # the first answer
        if feedback["action"] == Action.CLOSED:
            observations.append(Observation(Seen.CLOSED_AFTER, mark.severity, waited))
        agencies = {state.facts[e].agency for e in (*mark.evidence, *mark.chained) if e in state.facts}
        batch.effects.first += [Send(outcomes_topic(a), feedback["lead_id"].encode(), "feedback", feedback)
                                for a in sorted(agencies)]

    # -- leads -----------------------------------------------------------
    def _draw_leads(self, batch: Batch) -> None:
        """Every changed state's lead records, routed to the teams; then the states to write."""
        effects = batch.effects
        now = self.clock()
        for key, state in batch.changed.items():
            started = perf_counter()
            try:
                leads = state.lead_updates(key.decode(), self.rules, int(now * 1000), self.lifecycle)
            except Exception as exc:
                # The business's leads cannot be drawn: none of this batch's
                # changes to it are kept, and every record that made them is
                # a dead letter (replaying them would fail the same way).
                failed = batch.applied.get(key, [])
                undone = {position(record) for record, _ in failed}  # what they did to the state is not kept
                effects.audit[:] = [n for n in effects.audit if n.source not in undone]
                for record, sender in failed:
                    self.dead(effects, "processing_error", f"drawing leads failed: {type(exc).__name__}", record,
                              sender)
                continue
            for lead in leads:
                effects.leads.append(Send(LEADS_TOPIC, lead["lead_id"].encode(), "lead", lead))
                routed = route(lead, self.teams)
                effects.leads += [Send(team.topic, lead["lead_id"].encode(), "lead", copy) for team, copy in routed]
                effects.audit.append(Note(self.identity, AuditAction.LEAD_PUBLISHED, lead["lead_id"], lead["status"],
                                          detail=_published(lead, [team.name for team, _ in routed])))
                effects.observations.append(Observation(Seen.LEAD_PUBLISHED, lead["rules"][0]))
                if lead["severity"] == Severity.CRITICAL:
                    effects.observations += [
                        Observation(Seen.LATE_CRITICAL, e["event_id"].split(":", 1)[0])
                        for e in lead["evidence"] if e["event_id"] in batch.fresh
                        and e["reported_after_days"] > self.lifecycle.late_report_days]
                triggered = lead["triggered_by_received_at"].timestamp()
                if effects.oldest_received_at is not None and triggered >= effects.oldest_received_at:
                    # new evidence in this batch, not feedback or a tick
                    effects.observations.append(Observation(Seen.EVENT_TO_LEAD, value=max(0.0, now - triggered)))
            signalling.send_for_state(self, effects, key, state, int(now * 1000))
            state.writer = self.incarnation
            self._index(key, state, batch.partition_of[key])
            encoding = perf_counter()
            effects.seconds[Stage.LEAD_BUILD] += encoding - started
            data = state.to_bytes()
            effects.states.append(StateWrite(BUSINESS_TABLE, key, data))
            self.decoded.keep(key, data, state)
            effects.seconds[Stage.STATE_ENCODE] += perf_counter() - encoding

    def _index(self, key: bytes, state: BusinessState, partition: int) -> None:
        due = state.next_deadline(self.lifecycle)
        if due is None:
            self.deadlines.get(partition, {}).pop(key, None)
        else:
            self.deadlines.setdefault(partition, {})[key] = due

    # -- unresolved records ----------------------------------------------
    def _summarise_unresolved(self, key: bytes, state: ResolverState) -> None:
        waiting = state.unresolved()
        if not waiting:
            self.unresolved.pop(key, None)
            return
        ambiguous = sum(r.decision.ambiguous for r in waiting)
        self.unresolved[key] = (len(waiting) - ambiguous, ambiguous, min(r.parked_ms for r in waiting))

    def unresolved_now(self) -> Unresolved:
        values = self.unresolved.values()
        return Unresolved(sum(p for p, _, _ in values), sum(a for _, a, _ in values),
                          min((o for _, _, o in values), default=None))

    # -- dead letters ----------------------------------------------------
    def dead(self, effects: Effects, code: str, reason: str, record: Record, sender: str = UNPROVEN) -> None:
        effects.first.append(Send(DEADLETTER_TOPIC, b"worker", "deadletter", dead_letter(code, reason, record)))
        effects.observations.append(Observation(Seen.DEAD_LETTER, code))
        claimed = self.reader.claimed(record)
        effects.audit.append(Note(sender, AuditAction.RECORD_REFUSED, claimed or record.topic, "refused", code,
                                  position(record),
                                  {"topic": record.topic, **({"claimed_lead": claimed} if claimed else {})}))
        if code in UNTRUSTED_CODES:
            effects.observations.append(Observation(Seen.UNTRUSTED, code))


class DecodedStates:
    """Business states as last written by this flow, decoded, so that the
    next batch to touch a business need not parse its stored JSON again;
    the most recently written ``size`` of them.

    A state is handed out once (``take``) and only while the store still
    holds the bytes it was written as: a batch the edge did not write
    (retried, fenced) or one whose record failed leaves the store behind the
    object, which is then not reused. The next write keeps it again."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: dict[bytes, tuple[bytes, BusinessState]] = {}

    def keep(self, key: bytes, data: bytes, state: BusinessState) -> None:
        if self.size <= 0:
            return
        self._kept.pop(key, None)  # to the end: the most recent
        self._kept[key] = (data, state)
        while len(self._kept) > self.size:
            del self._kept[next(iter(self._kept))]

    def take(self, key: bytes, stored: bytes | None) -> BusinessState | None:
        kept = self._kept.pop(key, None)
        return kept[1] if kept is not None and stored is not None and kept[0] == stored else None

    def clear(self) -> None:
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)


S = TypeVar("S")


def _readable(parse: Callable[[bytes], S], data: bytes) -> S | None:
    """A stored state, or None (logged) if it cannot be read: one bad entry
    must not stop a worker from taking its partitions. Its business's records
    become dead letters when they come (the state fails to load for them)."""
    try:
        return parse(data)
    except Exception as exc:
        log.error("a stored state cannot be read and is left out of the pass over the states: %s", describe(exc))
        return None


def _restore(undo: dict[bytes, Any], loaded: dict[bytes, Any], changed: dict[bytes, Any],
             parse: Callable[[Any], Any]) -> None:
    """Put back the states a failed record touched: one it loaded first is
    forgotten (the next touch loads it again), one loaded earlier in the
    batch gets back what it was before the record."""
    for key, raw in undo.items():
        if raw is None:
            loaded.pop(key, None)  # absent if loading it is what failed
            changed.pop(key, None)
        else:
            loaded[key] = parse(raw)
            if key in changed:
                changed[key] = loaded[key]


def dead_letter(code: str, reason: str, record: Record) -> dict[str, Any]:
    """Where the record is and what it was, never what it said: a forged or
    mistyped record may carry personal data in any byte. ``offset`` finds it
    on its topic; the digests tell two dead letters of the same bytes apart."""
    key, value = record.key, record.value
    original = {"topic": record.topic, "partition": str(record.partition), "offset": str(record.offset),
                "key_sha256": hashlib.sha256(key).hexdigest() if key is not None else "none",
                "value_bytes": str(len(value)) if value is not None else "none",
                "value_sha256": hashlib.sha256(value).hexdigest() if value is not None else "none"}
    return {"stage": "worker", "source_file": None, "source_row": None, "column": None,
            "reason_code": code, "reason": reason, "original": original,
            "failed_at": dt.datetime.now(dt.timezone.utc)}



def position(record: Record) -> str:
    """Where a record sits: a replay of it has the same position."""
    return f"{record.topic}/{record.partition}/{record.offset}"


def _published(lead: dict[str, Any], teams: list[str]) -> dict[str, str]:
    return {"teams": ",".join(sorted(teams)), "severity": lead["severity"], "rules": ",".join(lead["rules"]),
            "evidence": ",".join(e["event_id"] for e in lead["evidence"] if e["event_id"]),
            **({"escalation": lead["escalation"]} if lead.get("escalation") else {})}
