"""Issue 33, item 3: brokers fail under load. The chaos data set through
two workers and the connectors, each process its own principal, on the
secured three-node cluster of docker-compose.yml (tests/cluster.py) while
one broker is killed (kill -9) and restarted, then the controller quorum's
leader, then a broker is paused (SIGSTOP) past its session. The open leads
must be those of a clean run on the embedded broker, no event lost or
applied twice, no row rejected that the clean run kept; workers that exit
are restarted, as a supervisor would."""
from __future__ import annotations

from pathlib import Path

import pytest

from hub.devtools import chaos
from hub.kafka.clients import KafkaClients
from tests.cluster import NODES, secured_cluster

pytestmark = pytest.mark.broker


def test_the_cluster_rides_through_broker_kills_and_a_pause(tmp_path: Path) -> None:
    said: list[str] = []
    sources = chaos.write_dataset(tmp_path / "exports", seed=33, rows=300)
    clean, problems = chaos.run(sources, tmp_path / "clean", None)
    assert not clean.faults() and not problems and clean.open_leads

    with secured_cluster(tmp_path / "cluster") as cluster:
        # read and ticked as the administrator; the same PII key as the clean run
        clients = KafkaClients(cluster.settings("hub-admin", pii_key=chaos.CHAOS_PII_KEY))  # the run's

        def principal_env(principal: str) -> dict[str, str]:
            return {k: v for k, v in cluster.env(principal).items() if k != "HUB_PII_KEY_FILE"}

        (tmp_path / "run").mkdir()
        fleet = chaos.Fleet(clients, tmp_path / "run", principal_env)

        def disrupt() -> None:
            fleet.sleep(5)
            victim = next(n for n in NODES if n != cluster.controller_leader())
            said.append(f"kill -9 {victim}")
            cluster.kill(victim)
            fleet.sleep(8)
            cluster.start(victim)
            fleet.sleep(10)
            leader = cluster.controller_leader()
            said.append(f"kill -9 {leader}, the controller quorum's leader")
            cluster.kill(leader)
            fleet.sleep(8)
            cluster.start(leader)
            fleet.sleep(10)
            paused = next(n for n in NODES if n != leader)
            said.append(f"SIGSTOP {paused} for 15 s (its broker session: 9 s)")
            cluster.pause(paused)
            fleet.sleep(15)
            cluster.resume(paused)

        try:
            result, problems = chaos.drive(fleet, sources, 60 / len(sources), None, disrupt, said.append,
                                           timeout_s=600)
        finally:
            clients.close()
        assert cluster.controller_leader() in NODES  # the quorum answers after it all
    difference = chaos.compare(clean, result)
    difference.other += problems
    print("\n".join(said))  # what happened, for `pytest -s`
    assert not difference, f"{difference.line()}; {said}"
    assert len(said) >= 3, said
