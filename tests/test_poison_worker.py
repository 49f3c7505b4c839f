"""The worker's flow under poison: each bad message is a dead letter with a
reason, never the fate of the genuine CRITICAL event beside it (no broker)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from connectors.samr_complaint import SamrComplaintConnector
from hub.audit.entries import AuditAction
from hub.domain.events import event_key
from hub.domain.leads import BusinessState
from hub.domain.pii import PersonalDataHasher
from hub.edge.feedback import TICK_KEY, feedback, tick
from hub.devtools.samples import LIQUOR, _headers, write_csv
from hub.flow.codec import RegistryUnavailable
from hub.flow.topics import DEADLETTER_TOPIC, FEEDBACK_TOPIC, feedback_topic
from hub.trust import Role
from hub.testing.bus import RECEIVED, Bus, Delivered
from tests.poison import BAD_EVENT_CODES, SECRET, bad_events, critical_event, encoded, spoiled

TOPIC = "hub.events.samr"
POLICE = feedback_topic("police-jinzhong-food-crime")


@pytest.fixture
def good(tmp_path: Path) -> dict[str, Any]:
    return critical_event(tmp_path, RECEIVED)


def _run(bus: Bus, messages: list[tuple[str, bytes | None, bytes | None]]) -> Delivered:
    """One batch on one partition, in this order, against the bus's stored states."""
    return bus.process([bus.record(topic, key, value, offset) for offset, (topic, key, value) in enumerate(messages)])


def _criticals(result: Delivered) -> list[dict[str, Any]]:
    return [lead for lead in result.leads if lead["severity"] == "CRITICAL" and lead["status"] == "OPEN"]


def _no_secret_in_dead_letters(bus: Bus, result: Delivered) -> None:
    encode = bus.serde.encoder(DEADLETTER_TOPIC, "deadletter")
    for dead in result.dead_letters:
        raw = encode(dead)
        assert SECRET.encode() not in raw and "王建国".encode() not in raw, dead


RAW_POISON = {
    "tombstone": (None, "tombstone"),
    "garbage": (b"\x00\x00\x00\x00\x01\xff\xff\xff garbage " + SECRET.encode(), "undecodable_event"),
    "no_magic_byte": (SECRET.encode(), "undecodable_event"),
    "unknown_schema_id": (b"\x00\x00\x00\x7f\xff" + SECRET.encode(), "unknown_schema"),
    "1.8_MB": (b"\x00\x00\x00\x00\x01" + b"x" * 1_800_000, "oversized_message"),
    "10_MB": (b"\x00\x00\x00\x00\x01" + b"x" * 10_000_000, "oversized_message"),
}


@pytest.mark.parametrize("first", [True, False], ids=["bad-first", "good-first"])
@pytest.mark.parametrize("kind", sorted(RAW_POISON))
def test_a_bad_message_beside_a_critical_event_is_a_dead_letter(good, kind: str, first: bool) -> None:
    bus = Bus()
    value, code = RAW_POISON[kind]
    key = event_key(good).encode()
    bad = (TOPIC, key, value)
    genuine = (TOPIC, key, encoded(bus.settings, good))
    result = _run(bus, [bad, genuine] if first else [genuine, bad])
    [lead] = _criticals(result)
    assert lead["rules"] == ["CRIMINAL_REFERRAL"] and [e["event_id"] for e in lead["evidence"]] == [good["event_id"]]
    [dead] = result.dead_letters
    assert dead["reason_code"] == code
    assert dead["original"]["offset"] == ("0" if first else "1") and dead["original"]["topic"] == TOPIC
    _no_secret_in_dead_letters(bus, result)


@pytest.mark.parametrize("first", [True, False], ids=["bad-first", "good-first"])
def test_another_contracts_record_on_an_event_topic_is_an_unknown_schema(good, first: bool) -> None:
    """A well-formed, signed record of another contract (a team's answer,
    its note holding a name and ID number) sent to an agency's event topic:
    its schema cannot be read as an event, so it is a dead letter, the same
    every time, and the critical event beside it still makes its lead."""
    bus = Bus()
    key = event_key(good).encode()
    answer = bus.serde.encoder(FEEDBACK_TOPIC, "feedback")({**tick(RECEIVED.timestamp()), "note": SECRET})
    bad, genuine = (TOPIC, key, answer), (TOPIC, key, encoded(bus.settings, good))
    result = _run(bus, [bad, genuine] if first else [genuine, bad])
    [lead] = _criticals(result)
    assert [e["event_id"] for e in lead["evidence"]] == [good["event_id"]]
    assert [d["reason_code"] for d in result.dead_letters] == ["unknown_schema"]
    again = _run(bus, [bad])  # the decoder remembers the schema it cannot read: refused alike
    assert [d["reason_code"] for d in again.dead_letters] == ["unknown_schema"]
    _no_secret_in_dead_letters(bus, result)
    _no_secret_in_dead_letters(bus, again)


@pytest.mark.parametrize("kind", sorted(BAD_EVENT_CODES))
def test_implausible_events_are_dead_letters_and_never_a_business_now(good, kind: str) -> None:
    bus = Bus()
    bad = bad_events(good)[kind]
    key = event_key(good).encode()
    result = _run(bus, [(TOPIC, key, encoded(bus.settings, bad)), (TOPIC, key, encoded(bus.settings, good))])
    assert [d["reason_code"] for d in result.dead_letters] == [BAD_EVENT_CODES[kind]]
    assert len(_criticals(result)) == 1
    state = BusinessState.from_bytes(bus.businesses[key])
    assert set(state.facts) == {good["event_id"]}
    _no_secret_in_dead_letters(bus, result)


def test_a_clerks_2062_typo_does_not_blind_the_business(good, tmp_path: Path) -> None:
    """The typo first, alone; then genuine events on the business make leads,
    and a team's feedback on them is applied."""
    bus = Bus()
    key = event_key(good).encode()
    typo = spoiled(good, "typo", occurred_on=dt.date(2062, 10, 20))
    first = _run(bus, [(TOPIC, key, encoded(bus.settings, typo))])
    assert [d["reason_code"] for d in first.dead_letters] == ["date_out_of_range"] and not first.leads
    later = critical_event(tmp_path, RECEIVED, "晋太市监罚〔2026〕10号")
    second = _run(bus, [(TOPIC, key, encoded(bus.settings, good)), (TOPIC, key, encoded(bus.settings, later))])
    [lead] = _criticals(second)
    assert {e["event_id"] for e in lead["evidence"]} >= {good["event_id"]}
    ack = bus.serde.encoder(POLICE, "feedback")(
        feedback(lead, "ACKNOWLEDGED", "police-jinzhong-food-crime", None, None, RECEIVED.timestamp()))
    third = _run(bus, [(POLICE, key, ack)])
    assert not third.dead_letters and third.leads[0]["status"] == "ACKNOWLEDGED"


def test_feedback_and_ticks_from_the_end_of_the_calendar_are_dead_letters(good) -> None:
    bus = Bus()
    key = event_key(good).encode()
    encode = bus.serde.encoder(FEEDBACK_TOPIC, "feedback")
    far = dt.datetime(9999, 12, 31, tzinfo=dt.UTC).timestamp()
    opened = _run(bus, [(TOPIC, key, encoded(bus.settings, good))])
    [lead] = _criticals(opened)
    result = _run(bus, [
        (POLICE, key, encode(feedback(lead, "ACKNOWLEDGED", "police-jinzhong-food-crime", None, None, far))),
        (FEEDBACK_TOPIC, TICK_KEY, encode(tick(far))),
        # a tick days ahead is a drill, and allowed
        (FEEDBACK_TOPIC, TICK_KEY, encode(tick(RECEIVED.timestamp() + 49 * 3600))),
    ])
    assert [d["reason_code"] for d in result.dead_letters] == ["date_out_of_range", "date_out_of_range"]
    assert result.leads and result.leads[0]["escalation"] == "ACKNOWLEDGE_OVERDUE"


def test_an_unexpected_exception_fails_its_message_alone_and_rolls_it_back(good, monkeypatch) -> None:
    """The failure strikes after the bad event changed the state: that change
    is undone, the genuine event before and after it stand."""
    bus = Bus()
    key = event_key(good).encode()
    prune = BusinessState.prune

    def exploding(self: BusinessState, rules: Any) -> None:
        if "samr.penalty:boom" in self.facts:
            raise KeyError("boom")
        prune(self, rules)

    monkeypatch.setattr(BusinessState, "prune", exploding)
    boom = spoiled(good, "boom")
    after = spoiled(good, "after")
    after["summary"] = good["summary"]
    result = _run(bus, [(TOPIC, key, encoded(bus.settings, good)), (TOPIC, key, encoded(bus.settings, boom)),
                        (TOPIC, key, encoded(bus.settings, after))])
    [dead] = result.dead_letters
    assert dead["reason_code"] == "processing_error" and dead["reason"] == "processing failed: KeyError"
    assert dead["original"]["offset"] == "1"
    state = BusinessState.from_bytes(bus.businesses[key])
    assert set(state.facts) == {good["event_id"], after["event_id"]}
    assert {e["event_id"] for lead in _criticals(result) for e in lead["evidence"]} == set(state.facts)


def test_a_business_whose_leads_cannot_be_drawn_fails_alone(good, tmp_path: Path, monkeypatch) -> None:
    bus = Bus()
    other = spoiled(good, "other", business_id="91140702MA0KD7H3X4")
    other["summary"] = good["summary"]
    doomed = event_key(good).encode()
    draw = BusinessState.lead_updates

    def failing(self: BusinessState, business_key: str, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        if business_key == doomed.decode():
            raise ValueError("cannot draw")
        return draw(self, business_key, *args, **kwargs)

    monkeypatch.setattr(BusinessState, "lead_updates", failing)
    penalty = bus.signer(Role.CONNECTOR, "samr.penalty")  # the connector both events name
    result = bus.process([bus.record(TOPIC, doomed, encoded(bus.settings, good), 0, by=penalty),
                          bus.record(TOPIC, event_key(other).encode(), encoded(bus.settings, other), 1, by=penalty)])
    assert [(d["reason_code"], d["original"]["offset"]) for d in result.dead_letters] == [("processing_error", "0")]
    assert doomed not in result.states and {lead["business_key"] for lead in result.leads} == {event_key(other)}
    # The audit trail: the doomed record refused, in its own sender's name, and not also accepted
    told = [(n.action, n.actor, n.source) for n in result.effects.audit if n.source == f"{TOPIC}/0/0"]
    assert told == [(AuditAction.RECORD_REFUSED, "connector:samr.penalty", f"{TOPIC}/0/0")]


def test_an_unreachable_registry_fails_the_whole_batch_for_a_retry(good) -> None:
    """Not a dead letter: the record is fine, the infrastructure is not."""
    bus = Bus()

    def down(data: bytes) -> dict[str, Any]:
        raise RegistryUnavailable("schema registry unreachable: ConnectError")

    bus.flow.reader.decode_event = down
    with pytest.raises(RegistryUnavailable):
        _run(bus, [(TOPIC, event_key(good).encode(), encoded(bus.settings, good))])
    assert bus.businesses == {}


def test_forged_feedback_fields_are_never_echoed(good) -> None:
    bus = Bus()
    key = event_key(good).encode()
    forged = {"lead_id": f"lead-{SECRET}", "business_key": key.decode()}
    value = bus.serde.encoder(POLICE, "feedback")(
        feedback(forged, "ACKNOWLEDGED", "police-jinzhong-food-crime", SECRET, SECRET, RECEIVED.timestamp()))
    result = _run(bus, [(POLICE, key, value)])
    assert [d["reason_code"] for d in result.dead_letters] == ["unknown_lead"]
    _no_secret_in_dead_letters(bus, result)


@pytest.mark.parametrize("stored", [b"\x00garbage", b'{"v": 9, "n": 1}', b"[]", b'{"v": 2}'],
                         ids=["bytes", "newer-version-other-shape", "a-list", "fields-missing"])
def test_a_stored_state_that_cannot_be_read_fails_its_own_records_only(good, stored: bytes) -> None:
    """A changelog entry nobody can read (a bug, a tampered topic) must not
    stop the worker taking its partitions, nor its other businesses."""
    bus = Bus()
    key = event_key(good).encode()
    other = spoiled(good, "other")
    other["business"] = dict(other["business"], business_id="91410502MA3XK1Q2Y8")
    bus.businesses[key] = stored
    bus.restart()  # the pass over the stored states after a (re)start
    result = _run(bus, [(TOPIC, key, encoded(bus.settings, good)),
                        (TOPIC, event_key(other).encode(), encoded(bus.settings, other))])
    assert [(d["reason_code"], d["original"]["offset"]) for d in result.dead_letters] == [("processing_error", "0")]
    assert _criticals(result) and all(lead["business_key"] == event_key(other) for lead in result.leads)
    assert bus.businesses[key] == stored  # left as it was, for an operator to look at


def _complaint(tmp_path: Path, no: str, day: str, complainant: str) -> dict[str, Any]:
    """A 12315 complaint against the genuine event's business, as its connector publishes it."""
    connector = SamrComplaintConnector(PersonalDataHasher("poison-test-key"))
    h = _headers(SamrComplaintConnector)
    values = dict.fromkeys(h, "")
    values.update({"登记编号": no, "登记日期": day, "诉求类型": "举报", "被投诉举报对象名称": LIQUOR.name,
                   "被投诉举报对象统一社会信用代码": LIQUOR.uscc, "问题描述": "白酒有异味", "诉求人姓名": complainant,
                   "诉求人联系电话": "13803721001", "处理状态": "已受理"})
    [row] = list(connector.read(write_csv(tmp_path / f"{no}.csv", h, [[values[c] for c in h]])))
    [event] = connector.events(row, RECEIVED)
    return event


@pytest.mark.parametrize("complaint_first", [True, False], ids=["complaint-first", "penalty-first"])
def test_poisoned_complaints_beside_a_genuine_one_never_join_the_critical_lead(good, tmp_path: Path,
                                                                              complaint_first: bool) -> None:
    """Complaints join the leads open on their business (hub.domain.leads):
    a forged, replayed, implausible or oversized one is a dead letter and
    joins nothing; the genuine one joins the CRITICAL lead, before or after
    the penalty in the batch (the lead is drawn after both), and names no
    party."""
    bus = Bus()
    key = event_key(good).encode()
    genuine = _complaint(tmp_path, "12315-1", "2026-10-25", "李娜")
    year_9999 = {**_complaint(tmp_path, "12315-2", "2026-10-26", "张伟"), "occurred_on": dt.date(9999, 12, 31)}
    huge = {**_complaint(tmp_path, "12315-3", "2026-10-27", "王芳"), "summary": "伪" * 1_000_000 + SECRET}
    forged = bus.record(TOPIC, key, encoded(bus.settings, _complaint(tmp_path, "12315-4", "2026-10-28", "赵强")),
                        by=bus.signer(Role.TEAM, "police-jinzhong-food-crime"))
    replayed = bus.record(TOPIC, key, encoded(bus.settings, _complaint(tmp_path, "12315-5", "2026-10-29", "钱多")),
                          at=RECEIVED.timestamp() - 3600)
    replayed = replayed._replace(timestamp_ms=int(RECEIVED.timestamp() * 1000))
    records = [bus.record(TOPIC, key, encoded(bus.settings, e)) for e in (genuine, year_9999, huge)]
    penalty = bus.record(TOPIC, key, encoded(bus.settings, good))
    batch = [*records[:1], forged, *records[1:], replayed]
    result = bus.process([*batch, penalty] if complaint_first else [penalty, *batch])
    assert sorted(d["reason_code"] for d in result.dead_letters) == \
        ["date_out_of_range", "not_authorised", "oversized_message", "replayed"], result.dead_letters
    [lead] = _criticals(result)
    assert [(e["kind"], e["chained"]) for e in lead["evidence"]] == [("PENALTY", False), ("TIP_OFF", True)]
    assert lead["parties"] == [] and SECRET not in repr(result.leads)
    _no_secret_in_dead_letters(bus, result)
