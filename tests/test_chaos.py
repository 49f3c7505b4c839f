"""The crash-consistency claim, tested Jepsen-style: the same exports through
a clean run and through a storm (two workers SIGKILLed and restarted, one
SIGSTOPped beyond the session timeout, the broker's JVM SIGKILLed and
restarted on its log directory, then stopped and started again, a connector
killed mid-file) give the
same open leads field by field, every event applied to state exactly once,
every rejected row in the dead letters. The exports carry the signals
between businesses as well (complaints and a serial filer, legal
representatives and a credit list, batches failing at two sellers, area
risk), so their messages between businesses and indexes are killed mid-way
too, with 撤案 and rectifications met, missed and left open; `hub backfill`
over the same files gives the same open leads. `hub chaos` is the long
version."""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from connectors.discovery import load
from connectors.sdk import RowRejected
from hub.devtools.chaos import BIG_FILE, CHAOS_PII_KEY, Storm, backfilled, compare, run, write_dataset
from hub.domain.pii import PersonalDataHasher

pytestmark = pytest.mark.broker


def _bad_rows(sources: list[tuple[str, Path]]) -> set[tuple[str, int]]:
    """The rows the connectors reject, found without a broker."""
    bad = set()
    for name, path in sources:
        connector = load(name)(PersonalDataHasher(CHAOS_PII_KEY))
        for row in connector.read(path):
            try:
                connector.events(row, dt.datetime.now(dt.UTC))
            except RowRejected:
                bad.add((path.name, row.number))
    assert len(bad) > 50
    return bad


def test_a_storm_of_kills_and_a_pause_leaves_the_clean_runs_leads(tmp_path: Path) -> None:
    sources = write_dataset(tmp_path / "exports", seed=5, rows=300, parts=3, big_file_rows=3000)
    clean, problems = run(sources, tmp_path / "clean", None)
    assert not problems and not clean.faults()
    assert len(clean.open_leads) > 300 and len(clean.events) > 4000
    assert clean.rejected_rows == _bad_rows(sources)  # every bad row of the exports, dead-lettered
    assert any(key.startswith("unresolved:") for lead in clean.open_leads.values() for key in [lead["business_key"]])
    assert any(e["resolution"] for lead in clean.open_leads.values() for e in lead["evidence"])
    # the signals between businesses go through the storm too: indexes, links, complaints, batches
    rules = {rule for lead in clean.open_leads.values() for rule in lead["rules"]}
    assert {"COMPLAINTS", "BATCH_TRACE", "AREA_RISK", "RELATED_PARTY"} <= rules, rules
    assert any(lead["credit_status"] == "LISTED" for lead in clean.open_leads.values())
    # and every rule family of follow-through: 撤案 (reverse referrals), rectifications missed, escalations
    assert {"REVERSE_REFERRAL", "RECTIFICATION_OVERDUE", "CRIMINAL_REFERRAL", "CROSS_AGENCY"} <= rules, rules
    assert {"RECTIFICATION_OVERDUE", "TRANSFER_OVERDUE"} <= {e for lead in clean.open_leads.values()
                                                             for e in lead["escalations"]}
    # the same files through `hub backfill` (every file first, then the worker): the same open leads
    filled = backfilled(sources, tmp_path / "backfill", timeout_s=600)
    assert not (apart := compare(clean, dataclasses.replace(clean, open_leads=filled))), apart.line()

    said: list[str] = []
    storm, problems = run(sources, tmp_path / "storm", Storm(kills=4, pauses=1, broker_kills=1, broker_stops=1, seed=5),
                          said.append)
    assert sum("kill worker" in line for line in said) == 4 and sum("pause worker" in line for line in said) == 1
    assert sum("kill the broker" in line for line in said) == 1 and sum("stop the broker" in line for line in said) == 1
    [rerun] = [line for line in said if BIG_FILE in line]
    assert "rows already delivered" in rerun or "sent again" in rerun, rerun  # killed mid-file, not before or after
    difference = compare(clean, storm)
    assert not difference and not problems, (difference.line(), problems)


def test_a_relative_workdir_reaches_the_runs_as_an_absolute_one(tmp_path, monkeypatch) -> None:
    """`hub chaos` defaults to `.hub-state/chaos`, relative; its connectors and
    backfill run with that folder's subfolders as their working directory, so
    a relative export path there names nothing (every connector exited 2)."""
    import hub.devtools.chaos as chaos

    class Written(Exception):
        pass

    def write_dataset(folder: Path, seed: int, rows: int) -> None:
        raise Written(folder)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(chaos, "write_dataset", write_dataset)
    with pytest.raises(Written) as written:
        chaos.storms(Path(".hub-state/chaos"), 0, Storm(), 10, 1, print)
    assert written.value.args[0] == tmp_path / ".hub-state" / "chaos" / "exports"
