"""A lead's lifecycle on one business's state: feedback, deadlines, re-check
and reopening, as plain functions with time passed in."""
from __future__ import annotations

import pytest

from hub.domain.leads import Accepted, BusinessState
from hub.domain.lifecycle import FeedbackRejected, is_overdue
from hub.settings import LifecycleSettings
from tests.test_rules import KEY, RULES, days, event

H = 3_600_000  # an hour in ms
LIFE = LifecycleSettings(acknowledge_hours_medium=72, close_hours_medium=240, recheck_hours=720)


def _repeat_offender(t0: int = 0) -> tuple[BusinessState, dict]:
    state = BusinessState()
    state.accept(event("m1", days(0)), RULES)
    state.accept(event("m2", days(5)), RULES)
    [lead] = state.lead_updates(KEY, RULES, t0, LIFE)
    return state, lead


def _publish(state: BusinessState, now_ms: int) -> list[dict]:
    return state.lead_updates(KEY, RULES, now_ms, LIFE)


def test_a_new_lead_carries_its_deadlines_and_history() -> None:
    _, lead = _repeat_offender(t0=1_000)
    assert lead["status"] == "OPEN" and lead["severity"] == "MEDIUM"
    assert lead["acknowledge_by"].timestamp() * 1000 == 1_000 + 72 * H
    assert lead["close_by"].timestamp() * 1000 == 1_000 + 240 * H
    assert [h["status"] for h in lead["history"]] == ["OPEN"] and lead["recheck_on"] is None


def test_feedback_moves_the_lead_and_is_kept_in_its_history() -> None:
    state, lead = _repeat_offender()
    state.apply_feedback(lead["lead_id"], "ACKNOWLEDGED", "samr-anyang", None, 2 * H)
    state.apply_feedback(lead["lead_id"], "CLOSED", "samr-anyang", "罚款2万元, 责令整改", 30 * H)
    [closed] = _publish(state, 30 * H)
    assert closed["status"] == "CLOSED" and closed["acknowledge_by"] is None and closed["close_by"] is None
    assert closed["recheck_on"].timestamp() * 1000 == 30 * H + 720 * H
    assert [(h["status"], h["team"], h["note"]) for h in closed["history"]] == [
        ("OPEN", None, None), ("ACKNOWLEDGED", "samr-anyang", None), ("CLOSED", "samr-anyang", "罚款2万元, 责令整改")]
    assert _publish(state, 31 * H) == []  # nothing new: nothing republished


@pytest.mark.parametrize("steps, action, note, code", [
    ([], "CLOSED", "", "missing_note"),
    ([], "REJECTED", None, "missing_note"),
    ([("CLOSED", "done")], "ACKNOWLEDGED", None, "invalid_transition"),
    ([("INVESTIGATING", None)], "ACKNOWLEDGED", None, "invalid_transition"),
    ([("REJECTED", "not this business")], "CLOSED", "x", "invalid_transition"),
    ([], "REOPENED", None, "unknown_action"),
])
def test_feedback_that_cannot_apply_is_refused_with_a_reason(steps, action, note, code) -> None:
    state, lead = _repeat_offender()
    for step, step_note in steps:
        state.apply_feedback(lead["lead_id"], step, "t", step_note, H)
    with pytest.raises(FeedbackRejected) as refused:
        state.apply_feedback(lead["lead_id"], action, "t", note, 2 * H)
    assert refused.value.code == code


def test_feedback_on_an_unknown_lead_is_refused() -> None:
    state, _ = _repeat_offender()
    with pytest.raises(FeedbackRejected) as refused:
        state.apply_feedback("lead-nope", "ACKNOWLEDGED", "t", None, H)
    assert refused.value.code == "unknown_lead"


def test_overdue_leads_escalate_once_per_deadline() -> None:
    state, lead = _repeat_offender()
    assert state.next_deadline(LIFE) == 72 * H
    assert state.escalate_due(LIFE, 71 * H) == [] and _publish(state, 71 * H) == []
    assert state.escalate_due(LIFE, 73 * H) == ["ACKNOWLEDGE_OVERDUE"]
    [escalated] = _publish(state, 73 * H)
    assert escalated["escalation"] == "ACKNOWLEDGE_OVERDUE" and is_overdue(escalated)
    assert state.escalate_due(LIFE, 74 * H) == []  # once
    state.apply_feedback(lead["lead_id"], "ACKNOWLEDGED", "t", None, 75 * H)
    [answered] = _publish(state, 75 * H)
    # acknowledged, late: no longer overdue, and its records keep the label they earned
    assert answered["escalation"] == "ACKNOWLEDGE_OVERDUE" and not is_overdue(answered)
    assert state.escalate_due(LIFE, 241 * H) == ["CLOSE_OVERDUE"]
    [late] = _publish(state, 241 * H)
    assert late["escalation"] == "CLOSE_OVERDUE" and is_overdue(late)


def test_a_closed_lead_falls_due_for_its_recheck_then_new_evidence_reopens_it() -> None:
    state, lead = _repeat_offender()
    state.apply_feedback(lead["lead_id"], "CLOSED", "t", "整改完成", 10 * H)
    _publish(state, 10 * H)
    assert state.escalate_due(LIFE, 731 * H) == ["RECHECK_DUE"]
    [due] = _publish(state, 731 * H)
    assert due["status"] == "CLOSED" and due["escalation"] == "RECHECK_DUE" and not is_overdue(due)
    assert state.accept(event("m3", days(300)), RULES) is Accepted.REOPENED  # a failure at the re-check
    updates = {u["lead_id"]: u for u in _publish(state, 800 * H)}
    reopened = updates[lead["lead_id"]]
    assert reopened["status"] == "OPEN" and reopened["reopened"] == 1
    assert [e["event_id"] for e in reopened["evidence"] if e["chained"]] == ["test:m3"]
    assert len(reopened["evidence"]) == 3 and reopened["history"][-1]["status"] == "REOPENED"
    assert reopened["acknowledge_by"].timestamp() * 1000 == state.facts["test:m3"].received_ms + 72 * H


def test_lifecycle_survives_the_state_round_trip() -> None:
    state, lead = _repeat_offender()
    state.apply_feedback(lead["lead_id"], "INVESTIGATING", "t", "现场核查中", H)
    state.escalate_due(LIFE, 250 * H)
    _publish(state, 250 * H)
    again = BusinessState.from_bytes(state.to_bytes())
    assert again == state and again.next_deadline(LIFE) == state.next_deadline(LIFE)


def test_an_escalation_republished_for_a_writer_that_died_still_escalates() -> None:
    """The escalation record's state was written, then its worker died before
    publishing it: the next worker's republication must escalate as well."""
    state, _ = _repeat_offender()
    state.writer = "the worker that died"
    assert state.escalate_due(LIFE, 73 * H) == ["ACKNOWLEDGE_OVERDUE"]
    [owed] = _publish(state, 73 * H)
    stored = BusinessState.from_bytes(state.to_bytes())  # written; the record never reached the topics
    assert stored.resume("the next worker")
    [again] = _publish(stored, 74 * H)
    assert again["lead_id"] == owed["lead_id"] and again["escalation"] == "ACKNOWLEDGE_OVERDUE"


def test_feedback_replayed_after_a_crash_changes_nothing() -> None:
    """The worker wrote the state with the feedback applied, then died before
    committing: the replay brings the same feedback again. It is no second
    change, and no invalid transition (ACKNOWLEDGED cannot become ACKNOWLEDGED)."""
    state, lead = _repeat_offender()
    assert state.apply_feedback(lead["lead_id"], "ACKNOWLEDGED", "t", None, 2 * H) is not None
    before = state.to_bytes()
    replayed = BusinessState.from_bytes(before)
    assert replayed.apply_feedback(lead["lead_id"], "ACKNOWLEDGED", "t", None, 2 * H) is None
    assert replayed.to_bytes() == before
    with pytest.raises(FeedbackRejected) as again:  # the same action later is another message: refused
        replayed.apply_feedback(lead["lead_id"], "ACKNOWLEDGED", "t", None, 3 * H)
    assert again.value.code == "invalid_transition"
