"""Kafka ACLs for a secured cluster, from ``ops/teams.toml`` and the
installed connectors: a principal per connector, team, agency, the
workers and the operators, each allowed exactly its topics, by LITERAL
names (a prefix would give team ``samr-anyang`` the topic of
``samr-anyang-meat``). With ``allow.everyone.if.no.acl.found=false`` the
brokers deny everything else. ``hub acls --apply`` writes them through the
admin API; SCRAM principals are ``User:<name>`` below, mTLS ones
``User:CN=<name>``."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from collections.abc import Iterable, Mapping

from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

from hub.domain.events import Agency
from hub.domain.teams import Team
from hub.flow.topics import (AUDIT_TOPIC, DEADLETTER_TOPIC, FEEDBACK_TOPIC, LEADS_TOPIC, RESOLUTION_TOPIC, cursor_topic,
                             events_topic, feedback_topic, outcomes_topic)

WORKERS = "hub-worker"
OPERATORS = "hub-operator"
# The schema registry's store: its principal is its client certificate's
# (mutual TLS), so it has no SCRAM user.
SCHEMA_REGISTRY = "schema-registry"
SCHEMA_REGISTRY_TOPIC = "_schemas"
CERTIFICATE_PRINCIPALS = frozenset({SCHEMA_REGISTRY})


class Operation(StrEnum):
    READ = "READ"
    WRITE = "WRITE"
    DESCRIBE = "DESCRIBE"
    IDEMPOTENT_WRITE = "IDEMPOTENT_WRITE"
    CREATE = "CREATE"
    DESCRIBE_CONFIGS = "DESCRIBE_CONFIGS"


class Resource(StrEnum):
    TOPIC = "TOPIC"
    GROUP = "GROUP"
    CLUSTER = "CLUSTER"


@dataclass(frozen=True, order=True)
class Binding:
    """One ALLOW rule, always a LITERAL resource name."""

    principal: str  # e.g. "User:team-samr-taigu"
    resource: Resource
    name: str
    operation: Operation


def connector_principal(name: str) -> str:
    return f"User:connector-{name}"


def team_principal(name: str) -> str:
    return f"User:team-{name}"


def agency_principal(agency: Agency) -> str:
    return f"User:agency-{agency.value.lower()}"


def _reads(principal: str, topics: Iterable[str]) -> list[Binding]:
    return [Binding(principal, Resource.TOPIC, t, op) for t in topics for op in (Operation.READ, Operation.DESCRIBE)]


def _writes(principal: str, topics: Iterable[str]) -> list[Binding]:
    return [Binding(principal, Resource.TOPIC, t, op) for t in topics for op in (Operation.WRITE, Operation.DESCRIBE)]


def _producer(principal: str) -> Binding:
    # Idempotent producers (every hub producer) need it on the cluster before Kafka 3.2.
    return Binding(principal, Resource.CLUSTER, "kafka-cluster", Operation.IDEMPOTENT_WRITE)


def bindings(teams: Mapping[str, Team], connectors: Mapping[str, Agency], app_id: str,
             changelogs: Iterable[str]) -> list[Binding]:
    """Every rule the hub needs, and no other. ``connectors``: each
    installed connector's agency."""
    out = [*_connector_bindings(connectors), *_team_bindings(teams), *_agency_bindings(),
           *_worker_bindings(teams, app_id, changelogs), *_operator_bindings(teams, connectors, app_id),
           *_registry_bindings()]
    return sorted(set(out))


def _connector_bindings(connectors: Mapping[str, Agency]) -> list[Binding]:
    out: list[Binding] = []
    for name, agency in connectors.items():
        p = connector_principal(name)
        # its agency's events, its rejected rows, its own cursors (no other's:
        # their keys name another agency's files)
        out += _writes(p, [events_topic(agency), DEADLETTER_TOPIC, cursor_topic(name)])
        out += _reads(p, [cursor_topic(name)])
        out += [_producer(p), Binding(p, Resource.GROUP, f"connector-{name}", Operation.READ)]
    return out


def _team_bindings(teams: Mapping[str, Team]) -> list[Binding]:
    out: list[Binding] = []
    for team in teams.values():
        p = team_principal(team.name)
        out += [*_reads(p, [team.topic]), Binding(p, Resource.GROUP, f"team-{team.name}", Operation.READ)]
        if not team.oversees:  # oversight reads, and answers nothing
            out += [*_writes(p, [feedback_topic(team.name)]), _producer(p)]
    return out


def _agency_bindings() -> list[Binding]:
    out: list[Binding] = []
    for agency in Agency:  # the outcomes of leads its evidence raised
        p = agency_principal(agency)
        out += _reads(p, [outcomes_topic(agency.value)])
        out.append(Binding(p, Resource.GROUP, f"agency-{agency.value.lower()}", Operation.READ))
    return out


def _worker_bindings(teams: Mapping[str, Team], app_id: str, changelogs: Iterable[str]) -> list[Binding]:
    worker_reads = [*(events_topic(a) for a in Agency), RESOLUTION_TOPIC, FEEDBACK_TOPIC, AUDIT_TOPIC,
                    *(feedback_topic(t.name) for t in teams.values() if not t.oversees),
                    *(t.topic for t in teams.values()),
                    *changelogs]
    worker_writes = [LEADS_TOPIC, DEADLETTER_TOPIC, RESOLUTION_TOPIC, FEEDBACK_TOPIC, AUDIT_TOPIC,
                     *(outcomes_topic(a.value) for a in Agency), *(t.topic for t in teams.values()), *changelogs]
    return [*_reads(f"User:{WORKERS}", worker_reads), *_writes(f"User:{WORKERS}", worker_writes),
            _producer(f"User:{WORKERS}"), Binding(f"User:{WORKERS}", Resource.GROUP, app_id, Operation.READ)]


def _operator_bindings(teams: Mapping[str, Team], connectors: Mapping[str, Agency], app_id: str) -> list[Binding]:
    # Operators: every lead in full, the dead letters, the outcomes, the
    # connectors' cursors and the workers' lag (hub status); drills on the clock topic.
    operator = f"User:{OPERATORS}"
    operator_reads = [LEADS_TOPIC, DEADLETTER_TOPIC, AUDIT_TOPIC, *(outcomes_topic(a.value) for a in Agency),
                      *(t.topic for t in teams.values()), *(cursor_topic(name) for name in connectors)]
    out = _reads(operator, operator_reads) + _writes(operator, [FEEDBACK_TOPIC])
    out += [_producer(operator), Binding(operator, Resource.GROUP, "hub-operator", Operation.READ),
            Binding(operator, Resource.GROUP, app_id, Operation.DESCRIBE)]
    # the workers' lag: where their sources end (a description, not a read)
    out += [Binding(operator, Resource.TOPIC, t, Operation.DESCRIBE) for t in (*(events_topic(a) for a in Agency),
                                                                               RESOLUTION_TOPIC)]
    return out


def _registry_bindings() -> list[Binding]:
    # The registry keeps its schemas on its own topic (made at its first start) and reads it in its own group.
    registry = f"User:{SCHEMA_REGISTRY}"
    return [*(Binding(registry, Resource.TOPIC, SCHEMA_REGISTRY_TOPIC, op) for op in Operation
              if op is not Operation.IDEMPOTENT_WRITE),
            _producer(registry), Binding(registry, Resource.GROUP, SCHEMA_REGISTRY, Operation.READ)]


def principals(rules: Iterable[Binding]) -> list[str]:
    """The SCRAM user names the rules name (without ``User:``): every
    principal but those that authenticate by certificate."""
    return sorted({b.principal.removeprefix("User:") for b in rules} - CERTIFICATE_PRINCIPALS)


def to_admin(binding: Binding) -> AclBinding:
    """The binding as confluent-kafka's admin API takes it."""
    # librdkafka calls the cluster resource BROKER
    kind = ResourceType.BROKER if binding.resource is Resource.CLUSTER else ResourceType[binding.resource.value]
    return AclBinding(kind, binding.name, ResourcePatternType.LITERAL,
                      binding.principal, "*", AclOperation[binding.operation.value], AclPermissionType.ALLOW)


def describe(binding: Binding) -> str:
    return f"ALLOW {binding.principal:<40} {binding.operation:<16} {binding.resource} {binding.name} (literal)"
