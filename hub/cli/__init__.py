"""The ``hub`` command line: the group and shared helpers in ``common``, a
module per command group (``infra``: broker, topics, schemas; ``connector``;
``run``: worker, backfill, demo, status, unresolved, bench, chaos;
``leads``: leads and teams; ``report``: the 通报; ``security``: keys, ACLs, certificates, the audit trail)."""
from hub.cli import connector, infra, leads, report, run, security  # noqa: F401  (they register their commands)
from hub.cli.common import main

__all__ = ["main"]
