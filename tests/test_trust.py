"""Identities, signatures and who may write where (issue 15), without a
broker: the keys and the trust store, the signature scheme under
tampering, and every attack on the worker's flow reproduced on the bus."""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from hub.domain.events import event_key
from hub.edge.feedback import TICK_KEY, feedback, tick
from hub.flow import Record
from hub.flow.topics import FEEDBACK_TOPIC, events_topic, feedback_topic
from hub.domain.events import Agency
from hub.devtools.samples import LIQUOR
from hub.trust import Role, TrustError, TrustStore
from hub.trust.keys import Identity, board_token, create_key, key_file, load_key, provision
from hub.trust.signatures import HEADER, Signer, TrustStoreFile, Untrusted, Verifier
from hub.testing.bus import Bus
from tests.scenario import scenario_bus

NOW = dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC)
POLICE_TEAM = "police-jinzhong-food-crime"
UTC_NOW = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


# -- keys and the trust store ---------------------------------------------
def test_keys_are_private_to_their_holder_and_revocable(tmp_path: Path) -> None:
    store = TrustStore({})
    made = create_key(tmp_path / "keys", store, Role.TEAM, "samr-taigu", "SAMR", UTC_NOW)
    store.save(tmp_path / "trust.json")
    path = key_file(tmp_path / "keys", Role.TEAM, "samr-taigu")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_IMODE(os.stat(tmp_path / "keys").st_mode) == 0o700
    assert b"PRIVATE KEY" not in (tmp_path / "trust.json").read_bytes()
    loaded = load_key(path, TrustStore.load(tmp_path / "trust.json"))
    assert loaded.trusted == made.trusted and loaded.trusted.identity == "team:samr-taigu"
    assert TrustStore.load(tmp_path / "trust.json").holder_of_token(board_token(loaded.private)) == made.trusted
    store.revoke("team:samr-taigu", UTC_NOW)
    store.save(tmp_path / "trust.json")
    with pytest.raises(TrustError, match="revoked"):
        load_key(path, TrustStore.load(tmp_path / "trust.json"))
    assert TrustStore.load(tmp_path / "trust.json").holder_of_token(board_token(loaded.private)) is None


def test_a_key_the_trust_store_does_not_hold_is_nobody(tmp_path: Path) -> None:
    create_key(tmp_path, TrustStore({}), Role.CONNECTOR, "samr.penalty", "SAMR", UTC_NOW)  # never saved
    with pytest.raises(TrustError, match="not in the trust store"):
        load_key(key_file(tmp_path, Role.CONNECTOR, "samr.penalty"), TrustStore.load(tmp_path / "trust.json"))


def test_a_trust_store_of_another_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / "trust.json").write_text('{"v": 7, "keys": []}')
    with pytest.raises(TrustError, match="version 7"):
        TrustStore.load(tmp_path / "trust.json")


def test_provisioning_makes_missing_keys_only(tmp_path: Path) -> None:
    who = [Identity(Role.WORKER, "worker"), Identity(Role.TEAM, "samr-taigu", "SAMR")]
    assert provision(tmp_path, tmp_path / "trust.json", who, UTC_NOW) == who
    assert provision(tmp_path, tmp_path / "trust.json", who, UTC_NOW) == []
    key_file(tmp_path, Role.WORKER, "worker").unlink()  # its private half lost: a new key, the old one revoked
    assert provision(tmp_path, tmp_path / "trust.json", who, UTC_NOW) == who[:1]
    store = TrustStore.load(tmp_path / "trust.json")
    assert sorted(k.revoked for k in store.keys.values() if k.name == "worker") == [False, True]


def test_provisioning_never_replaces_a_key_it_did_not_make(tmp_path: Path) -> None:
    """Issue 31: a team that keeps its key outside the keys folder lost its
    identity when a connector run provisioned the demo keys."""
    store_path = tmp_path / "keys" / "trust.json"
    store = TrustStore({})
    kept = create_key(tmp_path / "elsewhere", store, Role.TEAM, "samr-taigu", "SAMR", UTC_NOW)
    store.save(store_path)
    who = [Identity(Role.WORKER, "worker"), Identity(Role.TEAM, "samr-taigu", "SAMR")]
    assert provision(tmp_path / "keys", store_path, who, UTC_NOW) == who[:1]
    [live] = TrustStore.load(store_path).active(Role.TEAM, "samr-taigu")
    assert live.key_id == kept.trusted.key_id and not key_file(tmp_path / "keys", Role.TEAM, "samr-taigu").exists()


# -- the signature ----------------------------------------------------------
@pytest.fixture
def signed(tmp_path: Path) -> tuple[Signer, Verifier, Path]:
    store = TrustStore({})
    key = create_key(tmp_path, store, Role.CONNECTOR, "samr.penalty", "SAMR", UTC_NOW)
    store.save(tmp_path / "trust.json")
    clock = [UTC_NOW.timestamp()]
    trust = TrustStoreFile(tmp_path / "trust.json", clock=lambda: clock[0])
    return Signer(key, clock=lambda: UTC_NOW.timestamp()), Verifier(trust), tmp_path


def _code(verifier: Verifier, topic: str, key: bytes | None, value: bytes, headers, at_ms: int | None) -> str:
    with pytest.raises(Untrusted) as refused:
        verifier.verify(topic, key, value, headers, at_ms)
    return refused.value.code


def test_any_change_to_a_signed_record_breaks_its_signature(signed) -> None:
    signer, verifier, _ = signed
    topic, key, value = "hub.events.samr", b"91140702MA0KD7H3XL", b"\x00\x00\x00\x00\x01" + b"x" * 300
    headers = signer.headers(topic, key, value)
    at = int(UTC_NOW.timestamp() * 1000)
    assert verifier.verify(topic, key, value, headers, at).signer.name == "samr.penalty"
    for i in (0, 1, 4, 5, len(value) - 1):  # the magic byte, the schema ID, the payload
        flipped = bytearray(value)
        flipped[i] ^= 0x01
        assert _code(verifier, topic, key, bytes(flipped), headers, at) == "bad_signature"
    assert _code(verifier, "hub.events.police", key, value, headers, at) == "bad_signature"
    assert _code(verifier, topic, b"91410502MA3XK1Q2Y8", value, headers, at) == "bad_signature"
    assert _code(verifier, topic, None, value, headers, at) == "bad_signature"
    assert _code(verifier, topic, key, value, [], at) == "unsigned"
    assert _code(verifier, topic, key, value, [("other", b"x")], at) == "unsigned"
    raw = headers[0][1]
    assert isinstance(raw, bytes)
    assert _code(verifier, topic, key, value, [(HEADER, raw[:-1])], at) == "malformed_signature"
    assert _code(verifier, topic, key, value, [(HEADER, raw), (HEADER, raw)], at) == "malformed_signature"
    forged_time = raw[:9] + (int.from_bytes(raw[9:17], "big") + 1).to_bytes(8, "big") + raw[17:]
    assert _code(verifier, topic, key, value, [(HEADER, forged_time)], at) == "bad_signature"
    unknown = raw[:1] + b"\xff" * 8 + raw[9:]
    assert _code(verifier, topic, key, value, [(HEADER, unknown)], at) == "unknown_key"


def test_an_old_copy_is_a_replay_and_a_revoked_key_is_refused_at_once(signed) -> None:
    signer, verifier, path = signed
    topic, key, value = "hub.events.samr", b"k", b"v"
    headers = signer.headers(topic, key, value)
    at = int(UTC_NOW.timestamp() * 1000)
    assert _code(verifier, topic, key, value, headers, at + 301_000) == "replayed"
    assert _code(verifier, topic, key, value, headers, at - 301_000) == "signed_in_future"
    verifier.verify(topic, key, value, headers, at + 299_000)
    store = TrustStore.load(path / "trust.json")
    store.revoke(signer.key.key_id, UTC_NOW)
    store.save(path / "trust.json")
    verifier.trust.clock = lambda: UTC_NOW.timestamp() + 2  # it looks again within a second
    assert _code(verifier, topic, key, value, headers, at) == "revoked_key"


# -- the attacks, on the worker's flow ------------------------------------------
@pytest.fixture
def bus(tmp_path: Path) -> Bus:
    """The scenario's exports through the flow, every record signed by its connector."""
    bus = scenario_bus(tmp_path / "data", NOW)
    assert bus.dead_letters == []
    return bus


def _liquor(bus: Bus) -> dict:
    return next(lead for lead in bus.leads.values()
                if lead["business_id"] == LIQUOR.uscc and lead["rules"] == ["CRIMINAL_REFERRAL"])


def _codes(bus: Bus) -> list[str]:
    return [d["reason_code"] for d in bus.dead_letters]


def _untrusted(bus: Bus, code: str) -> float:
    return bus.metrics.worker.untrusted.labels(code)._value.get()


def test_forged_events_never_make_a_lead(bus: Bus) -> None:
    """Issue 15: any Kafka client could publish an event that became a
    CRITICAL "移送公安机关" lead against any USCC, routed to the police."""
    genuine = next(r for r in bus.delivered if r.topic == events_topic(Agency.POLICE))
    leads_before, states_before = dict(bus.leads), dict(bus.businesses)
    event = bus.flow.reader.decode_event(genuine.value)
    forged = dict(
        event,
        event_id="forged-1",
        source_record_id="A9999",
        business=dict(event["business"], business_id="91410502MA3XK1Q2Y8", name="无辜的公司"),
    )
    police = events_topic(Agency.POLICE)
    value = bus.serde.encoder(police, "event")(forged)
    key = event_key(forged).encode()
    samr_as_police = bus.serde.encoder(police, "event")(dict(forged, agency="SAMR"))
    bus.process(
        [
            bus.record(police, key, value, signed=False),  # anyone's client
            bus.record(police, key, value, by=bus.sender("hub.events.samr")),  # a SAMR connector's key
            bus.record(police, key, value, by=bus.sender(feedback_topic(POLICE_TEAM))),  # a team's key
            bus.record(police, key, samr_as_police),  # a police connector's key, a SAMR event
        ]
    )
    assert _codes(bus) == ["unsigned", "wrong_agency", "not_authorised", "wrong_agency"]
    assert bus.leads == leads_before and bus.businesses == states_before
    assert _untrusted(bus, "wrong_agency") == 2


def test_a_connectors_key_speaks_for_that_connector_alone(bus: Bus) -> None:
    """Issue 31: the 12315 connector's key (a SAMR key) published a
    samr.penalty event that raised a CRITICAL referral."""
    genuine = next(
        r
        for r in bus.delivered
        if r.topic == events_topic(Agency.SAMR)
        and bus.flow.reader.decode_event(r.value)["source"]["connector"] == "samr.penalty"
    )
    leads_before, states_before = dict(bus.leads), dict(bus.businesses)
    event = bus.flow.reader.decode_event(genuine.value)
    forged = dict(
        event,
        event_id="samr.penalty:forged-1",
        source_record_id="forged-1",
        business=dict(event["business"], business_id="91410502MA3XK1Q2Y8", name="无辜的公司"),
    )
    samr = events_topic(Agency.SAMR)
    bus.process(
        [
            bus.record(
                samr,
                event_key(forged).encode(),
                bus.serde.encoder(samr, "event")(forged),
                by=bus.signer(Role.CONNECTOR, "samr.complaint"),
            )
        ]
    )
    assert _codes(bus) == ["wrong_connector"]
    assert bus.leads == leads_before and bus.businesses == states_before
    assert _untrusted(bus, "wrong_connector") == 1


def test_replayed_flipped_or_stripped_records_never_change_a_lead(bus: Bus) -> None:
    """Every real record of the scenario, taken from its topic: replayed
    late, one byte flipped, its headers stripped, or moved to another topic."""
    lead = _liquor(bus)
    bus.publish_feedback(lead, "ACKNOWLEDGED", POLICE_TEAM, at=NOW)
    bus.run()
    leads_before, states_before = dict(bus.leads), dict(bus.businesses)
    letters = len(bus.dead_letters)
    late = 10 * 60 * 1000  # the broker takes the copy ten minutes after it was signed
    attempts = 0
    for i, real in enumerate(bus.delivered):
        assert real.value is not None
        flipped = bytearray(real.value)
        flipped[(i * 7919) % len(flipped)] ^= 0x20
        other = "hub.events.agri" if real.topic != "hub.events.agri" else "hub.events.samr"
        for copy in (
            real._replace(timestamp_ms=(real.timestamp_ms or 0) + late),
            real._replace(value=bytes(flipped)),
            real._replace(headers=()),
            real._replace(topic=other),
        ):
            bus.process([copy])
            attempts += 1
    assert bus.leads == leads_before and bus.businesses == states_before
    codes = set(_codes(bus)[letters:])
    assert len(bus.dead_letters) - letters == attempts
    assert codes == {"replayed", "bad_signature", "unsigned"}


def test_a_copy_within_the_window_is_the_same_record_twice(bus: Bus) -> None:
    """Within the replay window a copy cannot be told from a redelivery: it
    changes nothing, as a redelivered record does not."""
    leads_before, states_before = dict(bus.leads), dict(bus.businesses)
    bus.process(bus.delivered[:50])
    assert bus.leads == leads_before and bus.businesses == states_before and bus.dead_letters == []


def test_a_teams_old_answer_replayed_changes_nothing_or_is_refused(bus: Bus) -> None:
    lead = _liquor(bus)
    topic, key = feedback_topic(POLICE_TEAM), lead["business_key"].encode()
    # A CLOSED the team signed, held back by someone on the way, delivered
    # after the team's later answers: older than its last answer, refused.
    held = bus.record(
        topic,
        key,
        bus.serde.encoder(topic, "feedback")(feedback(lead, "CLOSED", POLICE_TEAM, "结案", None, NOW.timestamp())),
        at=NOW.timestamp(),
    )
    bus.publish_feedback(lead, "ACKNOWLEDGED", POLICE_TEAM, at=NOW + dt.timedelta(minutes=1))
    bus.run()
    ack = bus.delivered[-1]
    bus.publish_feedback(lead, "INVESTIGATING", POLICE_TEAM, "已受理", at=NOW + dt.timedelta(minutes=2))
    bus.run()
    bus.process([held._replace(timestamp_ms=(held.timestamp_ms or 0) + 240_000)])
    assert _codes(bus) == ["replayed"]
    # The acknowledgement again: already in the lead's history, no change
    # (the same as a worker reading it twice after a crash).
    bus.process([ack._replace(timestamp_ms=(ack.timestamp_ms or 0) + 60_000)])
    assert _codes(bus) == ["replayed"] and bus.leads[lead["lead_id"]]["status"] == "INVESTIGATING"
    assert [h["status"] for h in bus.leads[lead["lead_id"]]["history"]] == ["OPEN", "ACKNOWLEDGED", "INVESTIGATING"]


def test_a_team_cannot_date_its_answer_before_its_deadline(bus: Bus) -> None:
    lead = _liquor(bus)
    topic = feedback_topic(POLICE_TEAM)
    backdated = bus.serde.encoder(topic, "feedback")(
        feedback(lead, "ACKNOWLEDGED", POLICE_TEAM, None, None, (NOW - dt.timedelta(hours=20)).timestamp())
    )
    bus.process([bus.record(topic, lead["business_key"].encode(), backdated)])  # signed now
    assert _codes(bus) == ["bad_timestamp"] and bus.leads[lead["lead_id"]]["status"] == "OPEN"


def test_a_revoked_connector_is_refused_from_the_next_record(bus: Bus, tmp_path: Path) -> None:
    store = TrustStore.load(bus.settings.trust_path)
    store.revoke("connector:police.case", UTC_NOW)
    store.save(bus.settings.trust_path)
    bus.flow.reader.verifier.trust.refresh(force=True)
    leads_before = dict(bus.leads)
    genuine = next(r for r in bus.delivered if r.topic == events_topic(Agency.POLICE))
    bus.process([genuine])
    assert _codes(bus) == ["revoked_key"] and bus.leads == leads_before


def test_only_workers_tick_the_clock_and_only_operators_drill(bus: Bus) -> None:
    """Issue 15: `hub leads tick --at 2099-…` escalated every lead at once, and
    anyone could send it."""
    lead = _liquor(bus)
    value = bus.serde.encoder(FEEDBACK_TOPIC, "feedback")(tick((NOW + dt.timedelta(days=3)).timestamp()))
    no_drills = Bus(dataclasses.replace(bus.settings, allow_drills=False), clock=bus.clock)
    no_drills.store, no_drills.topics = bus.store, bus.topics
    no_drills.restart()
    no_drills.process(
        [
            no_drills.record(FEEDBACK_TOPIC, TICK_KEY, value, by=no_drills.signer(Role.WORKER, "worker")),
            no_drills.record(FEEDBACK_TOPIC, TICK_KEY, value),  # an operator, but drills are off
            no_drills.record(FEEDBACK_TOPIC, TICK_KEY, value, by=no_drills.sender(feedback_topic(POLICE_TEAM))),
            no_drills.record(feedback_topic(POLICE_TEAM), TICK_KEY, value),
            no_drills.record(FEEDBACK_TOPIC, TICK_KEY, value, signed=False),
        ]
    )
    assert _codes(no_drills) == ["tick_too_far_ahead", "tick_too_far_ahead", "not_authorised", "wrong_team", "unsigned"]
    assert bus.leads[lead["lead_id"]].get("escalation") is None
    # a worker's tick at its own time, and an operator's drill where drills are allowed, do tick
    now_tick = bus.serde.encoder(FEEDBACK_TOPIC, "feedback")(tick(NOW.timestamp()))
    bus.process(
        [
            bus.record(FEEDBACK_TOPIC, TICK_KEY, now_tick, by=bus.signer(Role.WORKER, "worker")),
            bus.record(FEEDBACK_TOPIC, TICK_KEY, value),
        ]
    )
    assert _codes(bus) == [] and bus.leads[lead["lead_id"]]["escalation"] == "ACKNOWLEDGE_OVERDUE"


def test_a_record_signed_for_one_partition_key_cannot_be_moved_to_another(bus: Bus) -> None:
    lead = _liquor(bus)
    topic = feedback_topic(POLICE_TEAM)
    value = bus.serde.encoder(topic, "feedback")(
        feedback(lead, "ACKNOWLEDGED", POLICE_TEAM, None, None, NOW.timestamp())
    )
    record = bus.record(topic, lead["business_key"].encode(), value)
    bus.process([Record(*record[:2], b"another-business", *record[3:])])
    assert _codes(bus) == ["bad_signature"] and bus.leads[lead["lead_id"]]["status"] == "OPEN"


def test_the_readmes_example_verifies_a_lead_from_the_hub(bus: Bus, monkeypatch) -> None:
    """The snippet a team's own consumer can use (docs/design/trust.md), run as written."""
    from hub.settings import REPO_ROOT

    text = (REPO_ROOT / "docs" / "design" / "trust.md").read_text()
    code = text[text.index("```python\nimport hashlib, json, struct") :].split("```")[1].removeprefix("python\n")
    monkeypatch.chdir(bus.settings.trust_path.parent)
    namespace: dict = {}
    exec(code, namespace)
    lead = _liquor(bus)
    topic, key = "hub.team.police-jinzhong-food-crime", lead["lead_id"].encode()
    value = bus.serde.encoder(topic, "lead")(lead)
    worker = bus.signer(Role.WORKER, "worker")
    assert namespace["from_the_hub"](topic, key, value, worker.headers(topic, key, value))
    assert not namespace["from_the_hub"](topic, key, value + b"x", worker.headers(topic, key, value))
    connector = bus.sender("hub.events.samr")
    assert not namespace["from_the_hub"](topic, key, value, connector.headers(topic, key, value))
    batch = [(topic, f"lead-{i:020x}".encode(), value + bytes([i])) for i in range(5)] + [(topic, key, value)]
    signed = worker.batch(batch)  # as the workers send: one signature for a step's records
    assert all(namespace["from_the_hub"](*record, h) for record, h in zip(batch, signed, strict=False))
    assert not namespace["from_the_hub"](topic, key, value, signed[0])


def test_a_record_keyed_by_another_business_is_refused(bus: Bus) -> None:
    """A signer's record must land where its business's state lives: an event
    or an answer keyed by another business would join (or create) that
    business's state in a partition that is not its own."""
    genuine = next(r for r in bus.delivered if r.topic == events_topic(Agency.POLICE))
    leads_before, states_before = dict(bus.leads), dict(bus.businesses)
    lead = _liquor(bus)
    topic = feedback_topic(POLICE_TEAM)
    answer = bus.serde.encoder(topic, "feedback")(
        feedback(lead, "ACKNOWLEDGED", POLICE_TEAM, None, None, NOW.timestamp())
    )
    bus.process(
        [
            bus.record(genuine.topic, b"91410502MA3XK1Q2Y8", genuine.value),  # re-signed under another key
            bus.record(topic, b"91410502MA3XK1Q2Y8", answer),
        ]
    )
    assert _codes(bus) == ["misrouted_event", "misrouted_feedback"]
    assert bus.leads == leads_before and bus.businesses == states_before


def test_a_batch_signature_covers_each_record_and_nothing_else(signed) -> None:
    """One signature over a hash tree of a batch's records: each record
    verifies alone (in any order, with the others absent), and none can be
    changed, moved or given another's path."""
    signer, verifier, _ = signed
    records = [("hub.events.samr", f"k{i}".encode(), f"value {i}".encode() * 20) for i in range(37)]
    headers = signer.batch(records)
    at = int(UTC_NOW.timestamp() * 1000)
    for (topic, key, value), h in reversed(list(zip(records, headers, strict=False))):
        assert verifier.verify(topic, key, value, h, at).signer.name == "samr.penalty"
    topic, key, value = records[5]
    assert _code(verifier, topic, key, value + b"x", headers[5], at) == "bad_signature"
    assert _code(verifier, "hub.events.police", key, value, headers[5], at) == "bad_signature"
    assert _code(verifier, topic, key, value, headers[6], at) == "bad_signature"  # another record's path
    raw = headers[5][0][1]
    assert isinstance(raw, bytes)
    assert _code(verifier, topic, key, value, [(HEADER, raw[:-1])], at) == "malformed_signature"
    bent = raw[:-1] + bytes([raw[-1] ^ 1])
    assert _code(verifier, topic, key, value, [(HEADER, bent)], at) == "bad_signature"
    assert _code(verifier, topic, key, value, headers[5], at + 301_000) == "replayed"
    assert [len(h) for h in signer.batch(records[:1])] == [1] and signer.batch([]) == []


def test_a_trust_store_edited_badly_keeps_the_last_good_one(signed) -> None:
    signer, verifier, path = signed
    topic, key, value = "hub.events.samr", b"k", b"v"
    headers = signer.headers(topic, key, value)
    (path / "trust.json").write_text('{"v": 1, "keys": [')  # half an edit
    verifier.trust.clock = lambda: UTC_NOW.timestamp() + 5
    assert verifier.verify(topic, key, value, headers, None).signer.name == "samr.penalty"
