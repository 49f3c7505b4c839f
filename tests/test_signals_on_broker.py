"""The new signals end to end on the embedded broker: the demo's complaints,
credit list, registry, inspections and samples through their connectors, a
real `hub worker`, and the indexes' messages on the resolution topic. The
rules themselves are tested without a broker in `test_signals`."""
from __future__ import annotations

from pathlib import Path

import pytest

from hub.kafka.readers import final_leads
from hub.edge.metrics import Metrics
from hub.apps.pipeline import run_connectors, wait_until_processed
from hub.settings import load_settings
from hub.devtools.signal_samples import (
    COMPLAINANTS,
    HAM_MAKER,
    LISTED,
    NEWCO,
    REPRESENTATIVE,
    SERIAL,
    SWEETS,
    TEA,
    write_signals,
)
from hub.kafka.topics import create_topics
from hub.trust import ensure_keys
from tests.conftest import TEST_PII_KEY
from tests.helpers import raw_bytes_by_topic, worker_process
from tests.test_lead_lifecycle import _team_topic

pytestmark = pytest.mark.broker


def test_the_new_signals_on_the_embedded_broker(broker, tmp_path: Path, make_clients) -> None:
    settings = load_settings(environ={}).on_embedded(
        broker.bootstrap, app_id="hub-signals", pii_key=TEST_PII_KEY, lifecycle_tick_s=0, state_dir=tmp_path / "state"
    )
    clients = make_clients(settings)
    create_topics(clients)
    ensure_keys(settings)
    runs = run_connectors(clients, write_signals(tmp_path / "data"), Metrics())
    assert all(run.rows_rejected == 0 for run in runs), [run.line() for run in runs]
    worker, _ = worker_process(settings, tmp_path, HUB_WEB_PORT="-1")
    try:
        wait_until_processed(clients, 120)
    finally:
        worker.terminate()
        _, log = worker.communicate(timeout=30)
    leads = {(lead["business_name"], lead["rules"][0]): lead for lead in final_leads(clients).values()}
    active = {k for k, lead in leads.items() if lead["status"] == "OPEN"}
    # three complainants raise COMPLAINTS; the serial filer's complaints do not
    assert (SWEETS.name, "COMPLAINTS") in active and (TEA.name, "COMPLAINTS") not in active
    # one batch failing at three sellers in two counties: one lead on the producer, no repeat offender
    batch = leads[(HAM_MAKER[0], "BATCH_TRACE")]
    assert len(batch["parties"]) == 3 and batch["also_regions"] == ["410502", "410522"]
    assert (HAM_MAKER[0], "REPEAT_OFFENDER") not in leads
    # lead (铅) in vegetables at three businesses of 滑县: one area lead; two in 内黄县: none
    areas = [lead for lead in leads.values() if lead["rules"] == ["AREA_RISK"]]
    assert [(a["region"]["code"], len(a["parties"])) for a in areas] == [("410526", 3)]
    agri = final_leads(clients, _team_topic("agri-anyang"))
    assert areas[0]["lead_id"] in agri  # the county's agriculture desk has it too
    # a listed business's leads show its standing; a new business of its representative is a related party
    assert leads[(LISTED.name, "REPEAT_OFFENDER")]["credit_status"] == "LISTED"
    [related] = leads[(NEWCO.name, "RELATED_PARTY")]["parties"]
    assert (related["business_id"], related["link"]) == (LISTED.uscc, "LEGAL_REPRESENTATIVE:LISTED")
    # no complainant and no representative in clear on any topic or in the worker's log
    secrets = [s for who in (*COMPLAINANTS, SERIAL) for s in who] + list(REPRESENTATIVE)
    everything = b"".join(raw_bytes_by_topic(clients).values())
    for secret in secrets:
        for form in {secret.encode(), secret.encode("gbk")}:
            assert form not in everything, f"{secret} on a topic"
        assert secret not in log, f"{secret} in the worker's log"
