"""The audit trail without a broker: chains and signed heads under editing,
deletion and forgery; what the flow and the board tell it; a lead's story."""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from hub.audit.entries import GENESIS, AuditAction, Chain, Entry, Note, digest
from hub.audit.trail import story
from hub.audit.verify import Positioned, verify
from hub.apps.board import BoardAudit
from hub.edge.feedback import feedback
from hub.flow.topics import feedback_topic
from hub.devtools.samples import LIQUOR
from hub.trust import Role, TrustStore
from hub.trust.keys import create_key
from hub.testing.bus import Bus
from tests.scenario import scenario_bus

NOW = dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC)
POLICE_TEAM = "police-jinzhong-food-crime"


@pytest.fixture
def signed_trail(tmp_path: Path) -> tuple[list[Positioned], TrustStore]:
    """Two chains of one worker: the second (a restart) linked to the first's last head."""
    store = TrustStore({})
    key = create_key(tmp_path, store, Role.WORKER, "worker", None, NOW)
    trail: list[Entry] = []
    prev = GENESIS
    for incarnation in ("a", "b"):
        chain = Chain(f"worker:{incarnation}", prev)
        trail.append(chain.signed(Note("worker:worker", AuditAction.CHAIN_START, chain.chain, "started"), 1,
                                  key.key_id, key.private.sign))
        for i in range(6):
            trail.append(chain.append(Note("connector:samr.penalty", AuditAction.EVENT_ACCEPTED, f"e{i}", "new",
                                           source=f"hub.events.samr/0/{i}"), 2 + i))
            if i % 3 == 2:
                trail.append(chain.head(10 + i, "worker:worker", key.key_id, key.private.sign))
        prev = trail[-1].hash
    return [Positioned(f"hub.audit[0]@{n}", e) for n, e in enumerate(trail)], store


def test_an_intact_trail_verifies(signed_trail) -> None:
    trail, store = signed_trail
    report = verify(trail, store)
    assert report.ok and report.chains == 2 and report.heads == 4 and report.unsealed == 0


def test_an_edited_entry_is_found_where_it_sits(signed_trail) -> None:
    trail, store = signed_trail
    edited = dataclasses.replace(trail[3].entry, outcome="duplicate")
    report = verify([*trail[:3], Positioned(trail[3].where, edited), *trail[4:]], store)
    assert not report.ok and report.problems[0].startswith("hub.audit[0]@3: entry worker:a#3 was changed")
    # an editor who recomputes the hash breaks the next link instead
    rehashed = dataclasses.replace(edited, hash=digest(edited.body()))
    report = verify([*trail[:3], Positioned(trail[3].where, rehashed), *trail[4:]], store)
    assert not report.ok and report.problems[0].startswith("hub.audit[0]@4: entry worker:a#4 does not follow")


def test_a_deleted_entry_is_found(signed_trail) -> None:
    trail, store = signed_trail
    report = verify([*trail[:5], *trail[6:]], store)
    assert not report.ok and report.problems[0] == "hub.audit[0]@6: entries worker:a#5..5 are missing (deleted)"


def test_a_forged_or_altered_head_is_found(signed_trail, tmp_path: Path) -> None:
    trail, store = signed_trail
    [head] = [p for p in trail[:5] if p.entry.action is AuditAction.HEAD]
    signature = bytearray.fromhex(head.entry.signature or "")
    signature[0] ^= 1
    altered = Positioned(head.where, dataclasses.replace(head.entry, signature=signature.hex()))
    i = trail.index(head)
    report = verify([*trail[:i], altered, *trail[i + 1:]], store)
    assert not report.ok and "signature does not verify" in report.problems[0] and head.where in report.problems[0]
    # a head signed with a key the trust store does not hold as a worker's
    other = create_key(tmp_path / "other", TrustStore({}), Role.WORKER, "worker", None, NOW)
    chain = Chain("worker:c")
    forged = [chain.signed(Note("worker:worker", AuditAction.CHAIN_START, "worker:c", "started"), 1,
                           other.key_id, other.private.sign),
              chain.head(2, "worker:worker", other.key_id, other.private.sign)]
    report = verify([*trail, *(Positioned(f"x@{n}", e) for n, e in enumerate(forged))], store)
    assert not report.ok and "no worker's" in report.problems[0]


def test_a_chain_whose_predecessor_was_deleted_is_found(signed_trail) -> None:
    trail, store = signed_trail
    second = [p for p in trail if p.entry.chain == "worker:b"]
    report = verify(second, store)
    assert not report.ok and "names a predecessor head" in report.problems[0]
    assert verify(second, store, window=True).ok  # a worker's look at the recent trail only


def test_an_entry_sent_twice_is_harmless_and_a_fork_is_not(signed_trail) -> None:
    trail, store = signed_trail
    report = verify([*trail[:4], trail[3], *trail[4:]], store)
    assert report.ok and report.redelivered == 1
    fork = dataclasses.replace(trail[3].entry, outcome="other")
    fork = dataclasses.replace(fork, hash=digest(fork.body()))
    report = verify([*trail[:4], Positioned("x", fork), *trail[4:]], store)
    assert not report.ok and "appears again with other content" in report.problems[0]


def test_entries_after_the_last_head_are_reported_unsealed(signed_trail) -> None:
    trail, store = signed_trail
    report = verify(trail[:-1], store)  # the last head lost with a killed worker
    assert report.ok and report.unsealed == 3  # e3, e4, e5 of the second chain


def test_a_chain_forged_without_a_key_neither_verifies_nor_tells_a_story(signed_trail) -> None:
    """Issue 31: a new chain (a CHAIN_START with no predecessor, then a
    team's CLOSED feedback and a CLOSED publication, no signed head)
    appended to hub.audit gave "trail intact", and `hub audit trail`
    printed its entries as fact."""
    trail, store = signed_trail
    chain = Chain("worker:forged")
    forged = [chain.append(Note("worker:worker", AuditAction.CHAIN_START, chain.chain, "started"), 20),
              chain.append(Note("team:police-x", AuditAction.FEEDBACK_APPLIED, "lead-1", "CLOSED"), 21),
              chain.append(Note("worker:worker", AuditAction.LEAD_PUBLISHED, "lead-1", "CLOSED"), 22)]
    report = verify([*trail, *(Positioned(f"hub.audit[1]@{n}", e) for n, e in enumerate(forged))], store)
    assert not report.ok
    assert report.problems == ["hub.audit[1]@0: chain worker:forged has no signed start (signed by a key that is "
                               "no worker's in the trust store): none of its entries is the hub's"]
    assert story([p.entry for p in trail] + forged, "lead-1", report) == []


def test_an_unsigned_entry_cannot_hide_a_sealed_one_in_a_story(signed_trail) -> None:
    """Issue 31: a forged entry 1 ms before a real one, with the same
    source, action and object, took its place in the lead's story."""
    trail, store = signed_trail
    real = trail[2].entry  # worker:a#2, EVENT_ACCEPTED e1, sealed by the head after e2
    chain = Chain("worker:forged")
    forged = [chain.append(Note("worker:worker", AuditAction.CHAIN_START, chain.chain, "started"), 0),
              chain.append(Note("connector:x", real.action, real.object, "forged", source=real.source), real.at_ms - 1)]
    entries = [p.entry for p in trail] + forged
    report = verify([*trail, *(Positioned(f"x@{n}", e) for n, e in enumerate(forged))], store)
    published = dataclasses.replace(real, action=AuditAction.LEAD_PUBLISHED, object="lead-1",
                                    detail={"evidence": real.object})
    told = story([published, *entries], "lead-1", report)
    assert real in told and not any(e.chain == "worker:forged" for e in told)
    # without the report (a bare list), the earliest telling still wins: the report is what proves
    assert report.sealed(real) and not report.proven(forged[1])


# -- what the flow and the board tell the trail -----------------------------------
def _chained(bus: Bus) -> list[Entry]:
    chain = Chain("worker:test")
    return [chain.append(note, i) for i, note in enumerate(bus.audit)]


def test_a_leads_story_has_its_events_its_publications_its_answers_and_its_refusals(tmp_path: Path) -> None:
    bus = scenario_bus(tmp_path / "data", NOW)
    lead = next(entry for entry in bus.leads.values()
                if entry["business_id"] == LIQUOR.uscc and entry["rules"] == ["CRIMINAL_REFERRAL"])
    key = lead["business_key"].encode()
    topic = feedback_topic(POLICE_TEAM)
    forged = bus.serde.encoder(topic, "feedback")(feedback(lead, "REJECTED", POLICE_TEAM, "假", None, NOW.timestamp()))
    bus.process([bus.record(topic, key, forged, signed=False)])  # someone's client, no key
    bus.publish_feedback(lead, "ACKNOWLEDGED", POLICE_TEAM, at=NOW)
    bus.run()
    board = BoardAudit(lambda notes: bus.audit.extend(notes))
    board.denied(None, "samr-taigu", "no_credential")
    told = story(_chained(bus), lead["lead_id"])
    actions = [(e.action, e.actor, e.outcome, e.reason) for e in told]
    assert (AuditAction.RECORD_REFUSED, "unproven", "refused", "unsigned") in actions
    assert (AuditAction.FEEDBACK_APPLIED, f"team:{POLICE_TEAM}", "ACKNOWLEDGED", None) in actions
    assert (AuditAction.BOARD_DENIED, "unproven", "denied", "no_credential") in actions
    published = [e for e in told if e.action is AuditAction.LEAD_PUBLISHED]
    assert published and POLICE_TEAM in published[0].detail["teams"].split(",")
    evidence = {e.object for e in told if e.action is AuditAction.EVENT_ACCEPTED}
    assert evidence == {e["event_id"] for e in lead["evidence"]}
    assert all(e.actor.startswith("connector:") for e in told if e.action is AuditAction.EVENT_ACCEPTED)


def test_a_replayed_batch_is_told_once(tmp_path: Path) -> None:
    bus = scenario_bus(tmp_path / "data", NOW)
    lead = next(iter(bus.leads.values()))
    first = _chained(bus)
    bus.audit.clear()
    bus.process(bus.delivered)  # the same records again, as after a crash
    again = _chained(bus)
    told_once = story(first, lead["lead_id"])
    assert story([*first, *again], lead["lead_id"]) == told_once


def test_the_board_tells_a_view_only_when_what_it_shows_changes() -> None:
    told: list[Note] = []
    board = BoardAudit(told.extend)
    store = TrustStore({})
    holder = create_key(Path(__import__("tempfile").mkdtemp()), store, Role.TEAM, "samr-taigu", None, NOW).trusted
    for leads in (["lead-a"], ["lead-a"], ["lead-a", "lead-b"], ["lead-a", "lead-b"]):
        board.viewed(holder, "samr-taigu", leads)
    board.login(None)
    board.denied(holder, "police-jinzhong-food-crime", "not_your_team")
    assert [(n.action, n.outcome) for n in told] == [
        (AuditAction.BOARD_VIEW, "1 leads shown"),
        (AuditAction.BOARD_VIEW, "2 leads shown"),
        (AuditAction.BOARD_LOGIN, "denied"),
        (AuditAction.BOARD_DENIED, "denied"),
    ]


@pytest.mark.parametrize("spoil", ["edit", "delete", "forge", "garbage", "missing"])
def test_hub_audit_verify_names_the_break_in_a_copy(signed_trail, tmp_path: Path, spoil: str) -> None:
    """`hub audit verify --file` on a copy of the trail (JSON lines, as HUB_AUDIT_FILE keeps it)."""
    import json

    from tests.helpers import hub

    trail, store = signed_trail
    store.save(tmp_path / "trust.json")
    records = [p.entry.to_record() for p in trail]
    copy = tmp_path / "audit.jsonl"
    env = {"HUB_TRUST_FILE": str(tmp_path / "trust.json")}
    copy.write_text("".join(json.dumps(r) + "\n" for r in records))
    intact = hub("audit", "verify", "--file", str(copy), cwd=tmp_path, env=env)
    assert intact.returncode == 0 and "trail intact" in intact.stdout, intact.stdout + intact.stderr
    if spoil == "edit":
        records[7]["outcome"] = "duplicate"
    elif spoil == "delete":
        del records[7]
    elif spoil == "forge":
        head = next(r for r in records if r["action"] == "HEAD")
        head["signature"] = "00" * 64
    elif spoil == "missing":  # a line that is JSON, but no entry
        del records[7]["chain"]
    lines = [json.dumps(r) + "\n" for r in records]
    if spoil == "garbage":  # a line that is not even JSON (a torn copy)
        lines[7] = '{"chain": "worker:a", "se\n'
    copy.write_text("".join(lines))
    broken = hub("audit", "verify", "--file", str(copy), cwd=tmp_path, env=env)
    assert broken.returncode == 1 and f"BROKEN: {copy}:" in broken.stdout, broken.stdout + broken.stderr
    if spoil in ("garbage", "missing"):
        assert f"BROKEN: {copy}:8: not an audit entry" in broken.stdout, broken.stdout


def test_keys_created_and_revoked_are_told(tmp_path: Path) -> None:
    from hub.audit.entries import key_changes

    store = TrustStore({})
    first = create_key(tmp_path, store, Role.TEAM, "samr-taigu", "SAMR", NOW)
    notes, seen = key_changes({}, store)
    assert [(n.action, n.object, n.detail["identity"]) for n in notes] == [
        (AuditAction.KEY_CREATED, first.key_id, "team:samr-taigu")
    ]
    assert key_changes(seen, store)[0] == []
    second = create_key(tmp_path, store, Role.WORKER, "worker", None, NOW)
    store.revoke(first.key_id, NOW)
    notes, seen = key_changes(seen, store)
    assert sorted((n.action, n.object) for n in notes) == sorted(
        [(AuditAction.KEY_CREATED, second.key_id), (AuditAction.KEY_REVOKED, first.key_id)]
    )


def test_a_workers_start_tells_its_settings_never_its_secrets(tmp_path: Path) -> None:
    from hub.edge.audit_log import settings_detail
    from hub.settings import Settings

    base = Settings(pii_key="a-secret-key-nobody-may-see")
    detail = settings_detail(base)
    assert "a-secret-key-nobody-may-see" not in str(detail) and detail["setting.worker_name"] == "worker"
    assert settings_detail(dataclasses.replace(base, pii_key="another"))["settings_sha256"] == detail["settings_sha256"]
    changed = settings_detail(dataclasses.replace(base, max_tick_ahead_s=9999))
    assert changed["settings_sha256"] != detail["settings_sha256"] and changed["setting.max_tick_ahead_s"] == "9999"
