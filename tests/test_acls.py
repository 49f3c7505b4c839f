"""The Kafka ACLs the hub generates (``hub acls``): literal names only, each
principal its own topics and nothing else. No Kafka with an authorizer can
run here, so the bindings themselves are what is tested, down to the
admin-API objects ``hub acls --apply`` sends."""
from __future__ import annotations


import pytest
from confluent_kafka.admin import AclBinding, ResourcePatternType

from connectors.discovery import available
from hub.kafka.acls import Binding, Operation, Resource, bindings, principals, to_admin
from hub.domain.events import Agency
from hub.domain.teams import load_teams, parse_teams
from hub.flow.topics import FEEDBACK_TOPIC, LEADS_TOPIC, events_topic, feedback_topic
from hub.settings import REPO_ROOT

TEAMS = load_teams(REPO_ROOT / "ops" / "teams.toml")
CONNECTORS = {name: c.agency for name, c in available().items()}
CHANGELOGS = ["supervision-hub-businesses-changelog", "supervision-hub-resolver-changelog"]


@pytest.fixture
def rules() -> list[Binding]:
    return bindings(TEAMS, CONNECTORS, "supervision-hub", CHANGELOGS)


def _allowed(rules: list[Binding], principal: str, operation: Operation) -> set[str]:
    return {b.name for b in rules if b.principal == principal and b.operation == operation
            and b.resource == Resource.TOPIC}


def test_a_team_reads_its_topic_and_writes_its_feedback_topic_only(rules: list[Binding]) -> None:
    for team in TEAMS.values():
        principal = f"User:team-{team.name}"
        assert _allowed(rules, principal, Operation.READ) == {team.topic}
        # an oversight team reads and answers nothing
        assert _allowed(rules, principal, Operation.WRITE) == (set() if team.oversees else {feedback_topic(team.name)})
    assert any(team.oversees for team in TEAMS.values())
    assert all(LEADS_TOPIC not in _allowed(rules, f"User:team-{t}", Operation.READ) for t in TEAMS)


def test_a_team_named_like_the_start_of_another_gets_nothing_of_it() -> None:
    """Issue 15: prefixed patterns gave samr-anyang the topic of samr-anyang-meat."""
    teams = parse_teams({"teams": [{"name": "samr-anyang", "agency": "SAMR"},
                                   {"name": "samr-anyang-meat", "agency": "SAMR"}]})
    rules = bindings(teams, CONNECTORS, "supervision-hub", CHANGELOGS)
    assert _allowed(rules, "User:team-samr-anyang", Operation.READ) == {"hub.team.samr-anyang"}
    assert _allowed(rules, "User:team-samr-anyang", Operation.WRITE) == {"hub.feedback.samr-anyang"}
    admin = [to_admin(b) for b in rules]
    assert all(isinstance(a, AclBinding) and a.resource_pattern_type == ResourcePatternType.LITERAL for a in admin)


def test_a_connector_writes_its_own_agencys_events_only(rules: list[Binding]) -> None:
    for name, agency in CONNECTORS.items():
        written = _allowed(rules, f"User:connector-{name}", Operation.WRITE)
        assert {t for t in written if t.startswith("hub.events.")} == {events_topic(agency)}
        # its own cursors, no other connector's (their keys name other agencies' files)
        assert _allowed(rules, f"User:connector-{name}", Operation.READ) == {f"hub.connector-offsets.{name}"}


def test_workers_read_every_source_and_only_workers_and_operators_tick(rules: list[Binding]) -> None:
    reads = _allowed(rules, "User:hub-worker", Operation.READ)
    answering = {feedback_topic(t.name) for t in TEAMS.values() if not t.oversees}
    assert {events_topic(a) for a in Agency} | answering | {FEEDBACK_TOPIC} <= reads
    assert not {feedback_topic(t.name) for t in TEAMS.values() if t.oversees} & reads  # oversight has none
    tickers = {b.principal for b in rules if b.name == FEEDBACK_TOPIC and b.operation == Operation.WRITE}
    assert tickers == {"User:hub-worker", "User:hub-operator"}
    assert {b.principal for b in rules if b.name == LEADS_TOPIC and b.operation == Operation.READ} == \
        {"User:hub-operator"}


def test_every_principal_is_a_scram_user_name(rules: list[Binding]) -> None:
    names = principals(rules)
    assert "hub-worker" in names and "team-samr-taigu" in names and "connector-samr.penalty" in names
    assert all(n and " " not in n and not n.startswith("User:") for n in names)


def test_only_workers_write_the_audit_trail(rules: list[Binding]) -> None:
    writers = {b.principal for b in rules if b.name == "hub.audit" and b.operation == Operation.WRITE}
    readers = {b.principal for b in rules if b.name == "hub.audit" and b.operation == Operation.READ}
    assert writers == {"User:hub-worker"} and readers == {"User:hub-worker", "User:hub-operator"}


def test_the_registry_keeps_to_its_topic_and_operators_see_cursors_and_lag_only(rules: list[Binding]) -> None:
    registry = {(b.resource, b.name) for b in rules if b.principal == "User:schema-registry"}
    assert registry == {(Resource.TOPIC, "_schemas"), (Resource.GROUP, "schema-registry"),
                        (Resource.CLUSTER, "kafka-cluster")}
    assert "schema-registry" not in principals(rules)  # its client certificate, no SCRAM user
    operator = "User:hub-operator"
    assert {f"hub.connector-offsets.{n}" for n in CONNECTORS} <= _allowed(rules, operator, Operation.READ)
    described_only = _allowed(rules, operator, Operation.DESCRIBE) - _allowed(rules, operator, Operation.READ)
    # the lag, not the events; and the clock it writes drills to
    assert described_only == {events_topic(a) for a in Agency} | {"hub.resolution", FEEDBACK_TOPIC}
    assert LEADS_TOPIC not in _allowed(rules, operator, Operation.WRITE)
