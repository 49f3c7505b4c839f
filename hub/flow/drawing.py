"""At the end of a batch: every changed state's lead records (执法线索),
routed to the teams, counted and audited; then the states to write."""
from __future__ import annotations

from time import perf_counter

from hub.audit.entries import AuditAction, Note
from hub.domain.leads import BusinessState
from hub.domain.records import Lead
from hub.domain.rules import Severity
from hub.domain.teams import route
from hub.flow import signalling
from hub.flow.batch import Batch, Context
from hub.flow.deadletters import position, refuse
from hub.flow.effects import Observation, Seen, Send, Stage, StateWrite
from hub.flow.topics import BUSINESS_TABLE, LEADS_TOPIC


def draw_leads(ctx: Context, batch: Batch) -> None:
    now = ctx.clock()
    for key, state in batch.changed.items():
        started = perf_counter()
        try:
            leads = state.lead_updates(key.decode(), ctx.rules, int(now * 1000), ctx.lifecycle)
        except Exception as exc:
            _undraw(ctx, batch, key, exc)
            continue
        for lead in leads:
            _publish(ctx, batch, lead, now)
        signalling.send_for_state(batch, key, state, int(now * 1000))
        _write(ctx, batch, key, state, started)


def _undraw(ctx: Context, batch: Batch, key: bytes, exc: Exception) -> None:
    """The business's leads cannot be drawn: none of this batch's changes
    to it are kept, and every record that made them is a dead letter
    (replaying them would fail the same way)."""
    effects = batch.effects
    failed = batch.applied.get(key, [])
    undone = {position(record) for record, _ in failed}  # what they did to the state is not kept
    effects.audit[:] = [n for n in effects.audit if n.source not in undone]
    for record, sender in failed:
        refuse(effects, ctx.reader, "processing_error", f"drawing leads failed: {type(exc).__name__}", record,
               sender)


def _publish(ctx: Context, batch: Batch, lead: Lead, now: float) -> None:
    """A lead on the leads topic and, redacted to each one's clearance, on its teams' topics."""
    effects = batch.effects
    effects.leads.append(Send(LEADS_TOPIC, lead["lead_id"].encode(), "lead", lead))
    routed = route(lead, ctx.teams)
    effects.leads += [Send(team.topic, lead["lead_id"].encode(), "lead", copy) for team, copy in routed]
    effects.audit.append(Note(ctx.identity, AuditAction.LEAD_PUBLISHED, lead["lead_id"], lead["status"],
                              detail=_published(lead, [team.name for team, _ in routed])))
    effects.observations.append(Observation(Seen.LEAD_PUBLISHED, lead["rules"][0]))
    if lead["severity"] == Severity.CRITICAL:
        effects.observations += [
            Observation(Seen.LATE_CRITICAL, e["event_id"].split(":", 1)[0])
            for e in lead["evidence"] if e["event_id"] in batch.fresh
            and e["reported_after_days"] > ctx.lifecycle.late_report_days]
    triggered = lead["triggered_by_received_at"].timestamp()
    if effects.oldest_received_at is not None and triggered >= effects.oldest_received_at:
        # new evidence in this batch, not feedback or a tick
        effects.observations.append(Observation(Seen.EVENT_TO_LEAD, value=max(0.0, now - triggered)))


def _write(ctx: Context, batch: Batch, key: bytes, state: BusinessState, started: float) -> None:
    effects = batch.effects
    state.writer = batch.loader.incarnation
    ctx.deadlines.index(key, state, batch.partition_of[key])
    encoding = perf_counter()
    effects.seconds[Stage.LEAD_BUILD] += encoding - started
    data = state.to_bytes()
    effects.states.append(StateWrite(BUSINESS_TABLE, key, data))
    batch.loader.decoded.keep(key, data, state)
    effects.seconds[Stage.STATE_ENCODE] += perf_counter() - encoding


def _published(lead: Lead, teams: list[str]) -> dict[str, str]:
    detail = {"teams": ",".join(sorted(teams)), "severity": lead["severity"], "rules": ",".join(lead["rules"]),
              "evidence": ",".join(e["event_id"] for e in lead["evidence"] if e["event_id"])}
    if lead["escalation"]:
        detail["escalation"] = lead["escalation"]
    return detail
