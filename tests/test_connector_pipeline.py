"""Connectors against the real embedded broker."""
from __future__ import annotations

from pathlib import Path

import pytest

from connectors import runner as runner_module
from connectors.discovery import load
from connectors.runner import ConnectorRunner
from connectors.samr_inspection import SamrInspectionConnector
from hub.domain.pii import PersonalDataHasher
from hub.edge.metrics import Metrics
from hub.devtools.samples import (LEGAL_REP, LEGAL_REP_ID, SUSPECT2_ID, SUSPECT2_NAME, SUSPECT_ID, SUSPECT_NAME,
                         YUXIANG, inspection_rows, write_csv, write_scenario)
from tests.conftest import TEST_PII_KEY
from tests.helpers import dead_letters, events_on_broker, raw_bytes_by_topic

pytestmark = pytest.mark.broker

EXPECTED_EVENT_IDS = {
    "samr.sampling:GC26410500410230101:seller",
    "samr.sampling:GC26410500410230101:producer",
    "samr.sampling:GC26410500410230155:seller",
    "samr.sampling:GC26410500410230155:producer",
    "samr.sampling:GC26410500410230171:seller",
    "samr.sampling:GC26410500410230171:producer",
    "samr.penalty:晋榆市监罚〔2026〕58号",
    "samr.penalty:安北市监罚〔2026〕112号",
    "samr.penalty:安殷市监罚〔2026〕27号",
    "samr.inspection:JC2026-0412-001",
    "samr.inspection:JC2026-0615-007",
    "samr.inspection:JC2026-0702-013",
    "samr.inspection:JC2026-0703-002",
    "police.case:A1407022026090012:FILED",
    "police.case:A1407032026080031:FILED",
    "agri.sampling:NY2026-AY-0087:克百威",
    "agri.sampling:NY2026-AY-0087:腐霉利",
    "agri.sampling:NY2026-AY-0102:磺胺类(总量)",
    f"registry.business:{YUXIANG.uscc}",
}


def _run_all(clients, files: dict[str, Path], metrics: Metrics) -> dict[str, runner_module.RunSummary]:
    out = {}
    for name, path in files.items():
        runner = ConnectorRunner(clients, load(name)(PersonalDataHasher(clients.settings.pii_key)), metrics)
        out[name] = runner.run_file(path)
        runner.close()
    return out


@pytest.fixture(scope="module")
def scenario(broker, tmp_path_factory):
    """All six connectors over the scenario files, once per module (fresh broker)."""
    from hub.kafka.clients import KafkaClients
    from hub.settings import load_settings
    from hub.kafka.topics import create_topics

    folder = tmp_path_factory.mktemp("exports")
    settings = load_settings(environ={}).on_embedded(broker.bootstrap, pii_key=TEST_PII_KEY, state_dir=folder / "state")
    with KafkaClients(settings) as clients:  # the module's, for every test of the scenario
        create_topics(clients)
        files = write_scenario(folder)
        metrics = Metrics()
        summaries = _run_all(clients, files, metrics)
        yield clients, files, metrics, summaries


def test_connectors_publish_exactly_the_expected_events(scenario) -> None:
    clients, _, _, summaries = scenario
    events = events_on_broker(clients)
    assert sorted(e["event_id"] for e in events) == sorted(EXPECTED_EVENT_IDS)
    assert summaries["samr.penalty"].events_published == 3
    assert summaries["samr.penalty"].rejected == {"invalid_business_id": 1}


def test_events_are_keyed_by_business(scenario) -> None:
    clients, *_ = scenario
    settings = clients.settings
    from hub.kafka.topics import read_to_end

    from hub.kafka.serde import Serde

    decode = Serde(settings).decoder("event")
    for message in read_to_end(clients, "hub.events.agri"):
        event = decode(message.value())
        assert message.key().decode() == event["business"]["business_id"]


def test_bad_rows_land_in_the_dead_letter_topic(scenario) -> None:
    clients, files, _, summaries = scenario
    letters = {(d["stage"], d["source_row"]): d for d in dead_letters(clients)}
    assert set(letters) == {("samr.sampling", 5), ("samr.penalty", 5), ("samr.inspection", 6), ("agri.sampling", 5)}
    bad_uscc = letters[("samr.penalty", 5)]
    assert bad_uscc["reason_code"] == "invalid_business_id"
    assert bad_uscc["column"] == "行政相对人代码_1(统一社会信用代码)"
    assert bad_uscc["source_file"] == files["samr.penalty"].name
    assert "checksum" in bad_uscc["reason"]
    assert bad_uscc["original"]["处罚决定书文号"] == "安殷市监罚〔2026〕31号"
    assert sum(s.rows_rejected for s in summaries.values()) == 4


def test_no_personal_data_on_any_topic(scenario) -> None:
    clients, *_ = scenario
    settings = clients.settings
    hasher = PersonalDataHasher(settings.pii_key)
    secrets = [SUSPECT_NAME, SUSPECT_ID, SUSPECT2_NAME, SUSPECT2_ID, LEGAL_REP, LEGAL_REP_ID, "刘洋", "陈静"]
    topics = raw_bytes_by_topic(clients)
    assert topics["hub.events.police"] and topics["hub.deadletter"]
    for topic, data in topics.items():
        for secret in secrets:
            for encoding in ("utf-8", "gbk"):
                assert secret.encode(encoding) not in data, (topic, secret)
    # the keyed hashes are there instead, so the people can still be linked
    assert hasher.ref(SUSPECT_ID).encode() in topics["hub.events.police"]


def test_a_rerun_resends_nothing(scenario) -> None:
    clients, files, _, _ = scenario
    before = len(events_on_broker(clients))
    again = _run_all(clients, files, Metrics())
    assert all(s.rows_read == 0 and s.events_published == 0 for s in again.values())
    assert again["samr.inspection"].already_delivered == 5
    assert len(events_on_broker(clients)) == before


def test_metrics_count_the_run(scenario) -> None:
    _, _, metrics, _ = scenario
    sample = metrics.registry.get_sample_value
    assert sample("hub_connector_records_read_total", {"connector": "samr.inspection"}) == 5
    assert (
        sample("hub_connector_events_published_total", {"connector": "samr.sampling", "topic": "hub.events.samr"}) == 6
    )
    assert sample("hub_connector_records_rejected_total", {"connector": "agri.sampling", "reason": "bad_date"}) == 1
    assert sample("hub_connector_last_success_timestamp_seconds", {"connector": "police.case"}) > 0
    assert sample("hub_connector_publish_latency_seconds_count", {"connector": "police.case"}) == 2


class _Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing catches it."""


def test_a_connector_restarted_mid_file_resumes_after_its_checkpoint(clients, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(runner_module, "CHECKPOINT_ROWS", 2)
    rows = list(inspection_rows()[:4])
    for i, r in enumerate(rows):
        r[0] = f"RESTART-{i}"
    path = write_csv(tmp_path / "inspections.csv", list(SamrInspectionConnector.columns), rows, "utf-8")

    class Crashing(SamrInspectionConnector):
        def to_events(self, row, received_at):
            if row.source.number == 4:
                raise _Crash()
            return super().to_events(row, received_at)

    crashed = ConnectorRunner(clients, Crashing(PersonalDataHasher(TEST_PII_KEY)), Metrics())
    with pytest.raises(_Crash):
        crashed.run_file(path)
    # What the crashed run had handed to its client before dying (the
    # checkpoint's cursor among it) lands, as librdkafka's own thread sends
    # it: waited for here, or the rerun's read may come first (a race of
    # milliseconds the shared reader made visible). A checkpoint lost in
    # flight is the runner's documented weaker case (``_checkpoint``).
    assert crashed.producer.flush(10) == 0
    summary = ConnectorRunner(clients, SamrInspectionConnector(PersonalDataHasher(TEST_PII_KEY)), Metrics()).run_file(
        path
    )
    assert summary.already_delivered == 2 and summary.rows_read == 2
    # The crashed run had claimed rows 4 and 5 (the next checkpoint's worth) before it died on row 4.
    assert summary.resent == 2 and "2 rows sent again that an interrupted run may have sent" in summary.line()
    finished = ConnectorRunner(clients, SamrInspectionConnector(PersonalDataHasher(TEST_PII_KEY)), Metrics()).run_file(
        path
    )
    assert finished.already_delivered == 4 and finished.resent == 0
    ids = [e["event_id"] for e in events_on_broker(clients) if "RESTART" in e["event_id"]]
    assert sorted(ids) == [f"samr.inspection:RESTART-{i}" for i in range(4)]


def test_a_file_with_a_missing_column_is_dead_lettered_whole(clients, tmp_path) -> None:
    header = [h for h in SamrInspectionConnector.columns if h != "检查结果"]
    path = write_csv(tmp_path / "broken.csv", header, [["x"] * len(header)], "gbk")
    summary = ConnectorRunner(clients, SamrInspectionConnector(PersonalDataHasher(TEST_PII_KEY)), Metrics()).run_file(
        path
    )
    assert summary.rejected == {"missing_column": 1}
    [letter] = [d for d in dead_letters(clients) if d["source_file"] == path.name]
    assert letter["column"] == "检查结果" and letter["source_row"] == 1


def test_state_topics_are_compacted_and_event_topics_are_not(clients) -> None:
    from confluent_kafka.admin import ConfigResource

    from hub.kafka.topics import changelog_topic

    client = clients.admin()

    def policy(topic: str) -> str | None:
        [future] = client.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)]).values()
        entry = future.result().get("cleanup.policy")
        return entry.value if entry else None

    for topic in ("hub.leads", "hub.connector-offsets.samr.penalty", changelog_topic(clients.settings)):
        assert policy(topic) == "compact", topic
    assert policy("hub.events.samr") != "compact"


def test_a_file_of_bad_rows_logs_the_first_few_and_dead_letters_all(clients, tmp_path, caplog) -> None:
    rows = inspection_rows()[:1] * 30
    for i, row in enumerate(rows):
        row[0] = f"BAD-{i}"
        row[list(SamrInspectionConnector.columns).index("检查日期")] = "not a date"
    path = write_csv(tmp_path / "bad.csv", list(SamrInspectionConnector.columns), rows, "utf-8")
    with caplog.at_level("WARNING", logger="connectors.runner"):
        summary = ConnectorRunner(
            clients, SamrInspectionConnector(PersonalDataHasher(TEST_PII_KEY)), Metrics()
        ).run_file(path)
    assert summary.rejected == {"bad_date": 30}
    # the runner's own lines (cursors of this module's earlier tests, under other keys, are logged apart)
    assert (
        len([r for r in caplog.records if r.name == "connectors.runner"]) == runner_module.LOGGED_REJECTS_PER_FILE + 1
    )
    assert len([d for d in dead_letters(clients) if d["source_file"] == path.name]) == 30
