"""A team's answer on a lead (反馈) reaching the lead's business: authorised
(only a team the lead was routed to, and never an oversight team), scrubbed
of personal data, applied to the lead's lifecycle, counted, audited, and
sent on to the agencies whose evidence raised the lead."""
from __future__ import annotations

import dataclasses

from hub.audit.entries import AuditAction, Note
from hub.domain.leads import BusinessState
from hub.domain.lifecycle import Action, FeedbackRejected, LeadMark
from hub.domain.records import Feedback
from hub.domain.teams import recipients
from hub.flow.batch import Batch, Context
from hub.flow.deadletters import position
from hub.flow.effects import Observation, Seen, Send
from hub.flow.messages import FeedbackMessage, Refused
from hub.flow.topics import outcomes_topic


def apply(ctx: Context, message: FeedbackMessage, batch: Batch) -> None:
    state = batch.state(message.business, message.record.partition)
    _authorise(ctx, state, message)
    # Scrubbed before anything is kept or sent on, whoever produced it.
    feedback: Feedback = {**message.feedback,
                          "note": ctx.hasher.scrub_feedback(message.feedback["note"], state.persons),
                          "by": ctx.hasher.desk(message.feedback["by"])}
    try:
        mark = state.apply_feedback(feedback["lead_id"], feedback["action"], feedback["team"],
                                    feedback["note"], message.at_ms)
    except FeedbackRejected as exc:
        raise Refused(exc.code, f"feedback on {feedback['lead_id']}: {exc}") from None
    audit = Note(batch.sender, AuditAction.FEEDBACK_APPLIED, feedback["lead_id"], str(feedback["action"]),
                 source=position(message.record), detail={"team": feedback["team"] or ""})
    if mark is None:  # replayed after a crash: applied, and its outcomes sent, the first time
        batch.effects.audit.append(dataclasses.replace(audit, outcome="unchanged"))
        return
    batch.effects.audit.append(audit)
    batch.changed[message.business] = state
    _observe(batch, mark, feedback["action"], message.at_ms)
    _send_outcomes(batch, state, mark, feedback)


def _authorise(ctx: Context, state: BusinessState, message: FeedbackMessage) -> None:
    team = ctx.teams.get(message.feedback["team"] or "")  # the reader checked it is the signing team's
    if team is not None and team.oversees:
        raise Refused("oversight_read_only", "an oversight team reads leads and does not change them")
    view = state.routing_view(message.feedback["lead_id"])
    if view is not None and message.feedback["team"] not in {t.name for t in recipients(view, ctx.teams)}:
        # Only a team the lead was routed to may change it. The name is
        # not echoed: a forged field may hold anything.
        raise Refused("team_not_recipient",
                      f"feedback on {message.feedback['lead_id']} from a team that does not receive it")


def _observe(batch: Batch, mark: LeadMark, action: str, at_ms: int) -> None:
    """The escalation an answer raised itself, and how long the lead waited
    for its first answer and for its closing."""
    observations = batch.effects.observations
    flagged = mark.history[-1][1]
    if flagged.startswith("ESCALATED_"):  # the answer flagged the lead itself (NOT_TRANSFERRED)
        observations.append(Observation(Seen.ESCALATED, flagged.removeprefix("ESCALATED_")))
    waited = max(0.0, (at_ms - mark.opened_ms) / 1000)
    if len([h for h in mark.history if h[0] >= mark.opened_ms and h[2] is not None]) == 1:
        observations.append(Observation(Seen.ACKNOWLEDGED_AFTER, mark.severity, waited))  # the first answer
    if action == Action.CLOSED:
        observations.append(Observation(Seen.CLOSED_AFTER, mark.severity, waited))


def _send_outcomes(batch: Batch, state: BusinessState, mark: LeadMark, feedback: Feedback) -> None:
    """The answer, to each agency whose evidence (or corroboration) the lead holds."""
    agencies = {state.facts[e].agency for e in (*mark.evidence, *mark.chained) if e in state.facts}
    batch.effects.first += [Send(outcomes_topic(a), feedback["lead_id"].encode(), "feedback", feedback)
                            for a in sorted(agencies)]
