"""The connector test kit's conformance check (hub.testing.check_connector),
without a broker: every installed connector passes on its sample export,
and connectors broken on purpose fail the check that names their fault, with
a reason that never quotes a person."""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.discovery import available
from connectors.samr_complaint import SamrComplaintConnector
from connectors.samr_inspection import SamrInspectionConnector
from connectors.samr_penalty import SamrPenaltyConnector
from connectors.sdk import Connector, Row, SourceRow
from hub.cli import main
from hub.devtools.samples import write_scenario
from hub.devtools.signal_samples import COMPLAINANTS, write_signals
from hub.domain.events import Agency, Event
from hub.testing import Bus, ConformanceReport, check_connector
from hub.testing.conformance import (AVRO_CONTRACT, CHECKS, DECLARATION, DETERMINISTIC_IDS, FLOW_ACCEPTS,
                                     NO_CONNECTOR_ERRORS, NO_PERSONAL_DATA, READS_SAMPLE, ROWS_ACCOUNTED)


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An export per connector: the demo scenario's, and the signals' for the connectors it lacks."""
    folder = tmp_path_factory.mktemp("samples")
    found = dict(write_scenario(folder / "scenario"))
    for name, path in write_signals(folder / "signals"):
        found.setdefault(name, path)
    return found


def _failed(report: ConformanceReport) -> list[str]:
    return [check.name for check in report.failed]


@pytest.mark.parametrize("name", sorted(available()))
def test_every_installed_connector_passes_on_its_sample(name: str, samples: dict[str, Path]) -> None:
    assert name in samples, f"hub.devtools.samples has no export for the installed connector {name}"
    report = check_connector(name, samples[name])
    assert report.ok, str(report)
    assert [check.name for check in report.checks] == list(CHECKS)
    assert report.connector == name and report.rows > 0 and report.events > 0
    assert str(report).endswith(f"conformant: all {len(CHECKS)} checks passed")


def test_a_connector_given_as_its_class_and_not_installed_passes(samples: dict[str, Path]) -> None:
    """A county's connector before it is installed: it gets a demo key of
    its own, and the workers' flow takes its events."""

    class CountyInspection(SamrInspectionConnector):
        name = "county.inspection"

    report = check_connector(CountyInspection, samples["samr.inspection"])
    assert report.ok, str(report)
    assert report.connector == "county.inspection"
    assert "signed by county.inspection's key" in report.check(FLOW_ACCEPTS).reason


# -- connectors broken on purpose ---------------------------------------------------


class DropsRows(SamrPenaltyConnector):
    """Returns no event for the bakery's penalty, and no rejection either."""

    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        events = super().to_events(row, received_at)
        return [] if "香满园" in row.source.cells["subject_name"] else events


class ReadsTooLittle(SamrPenaltyConnector):
    """A reader that skips the file's third record."""

    def read(self, path: Path) -> Iterator[SourceRow]:
        return (row for row in super().read(path) if row.number != 3)


class RandomIds(SamrInspectionConnector):
    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        events = super().to_events(row, received_at)
        for event in events:
            event["event_id"] += f":{uuid.uuid4().hex[:8]}"
        return events


class IdsOfTheirTime(SamrInspectionConnector):
    """An ID made of when the row was received: a rerun makes new records."""

    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        events = super().to_events(row, received_at)
        for event in events:
            event["event_id"] += f"@{received_at:%H%M%S}"
        return events


class LeaksPhone(SamrComplaintConnector):
    """Quotes the complainant's telephone number in the summary."""

    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        events = super().to_events(row, received_at)
        for event in events:
            event["summary"] += f" 回访电话 {row.source.cells['complainant_phone']}"
        return events


class LeaksName(SamrComplaintConnector):
    """Names the complainant in the summary."""

    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        events = super().to_events(row, received_at)
        for event in events:
            event["summary"] += f" ({row.source.cells['complainant_name']})"
        return events


class Crashes(SamrPenaltyConnector):
    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        if row.source.number == 3:
            raise KeyError("no such field")
        return super().to_events(row, received_at)


class OffContract(SamrPenaltyConnector):
    """A flag the event contract holds as a boolean, written as text."""

    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        events = super().to_events(row, received_at)
        for event in events:
            event["adverse"] = "是"
        return events


class SpeaksForThePolice(SamrPenaltyConnector):
    """A market-supervision connector whose events say they are the police's."""

    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        events = super().to_events(row, received_at)
        for event in events:
            event["agency"] = Agency.POLICE.value
        return events


class Undeclared(Connector):
    """No name, no agency, no layout, no to_events."""


class BadLayout(SamrPenaltyConnector):
    description = ""
    personal_fields = frozenset({"legal_rep", "suspect"})
    optional_columns = frozenset({"备注", "附件"})


def test_a_connector_that_drops_rows_loses_them(samples: dict[str, Path]) -> None:
    report = check_connector(DropsRows, samples["samr.penalty"])
    assert _failed(report) == [ROWS_ACCOUNTED]
    check = report.check(ROWS_ACCOUNTED)
    assert check.reason == "rows lost or unexplained: 4 rows in the file, 2 with events + 1 rejected"
    assert check.details == ("1 row(s) made no event and no rejection: row(s) 4 (a row that makes no event "
                             "raises RowRejected with a reason code)",)
    assert not report.ok and "FAIL  rows_accounted" in str(report)


def test_a_reader_that_skips_a_record_loses_it(samples: dict[str, Path]) -> None:
    report = check_connector(ReadsTooLittle, samples["samr.penalty"])
    assert _failed(report) == [ROWS_ACCOUNTED]
    assert report.check(ROWS_ACCOUNTED).details == (
        "1 record(s) of the file never came out of the connector's read(): row(s) 3",)


@pytest.mark.parametrize("connector", [RandomIds, IdsOfTheirTime])
def test_event_ids_that_change_between_runs_fail(connector: type[Connector], samples: dict[str, Path]) -> None:
    report = check_connector(connector, samples["samr.inspection"])
    assert _failed(report) == [DETERMINISTIC_IDS]
    check = report.check(DETERMINISTIC_IDS)
    assert check.reason == "a rerun of the sample would not give the same events"
    assert len(check.details) == 4  # the four rows with events; the fifth is rejected both times
    assert check.details[0].startswith("row 2: event IDs [samr.inspection:JC2026-0412-001")
    assert "on the second run" in check.details[0]


def test_a_phone_number_in_clear_fails_and_is_not_quoted(samples: dict[str, Path]) -> None:
    report = check_connector(LeaksPhone, samples["samr.complaint"])
    assert _failed(report) == [NO_PERSONAL_DATA]
    check = report.check(NO_PERSONAL_DATA)
    assert check.reason == "personal values of the sample stand in clear (27 findings)"
    assert check.details[0] == ("row 2, column 诉求人联系电话 (a value of a personal column): in clear in event "
                                "samr.complaint:12315-2026-11-0001:ACCEPTED (field summary)")
    text = str(report)
    assert not any(phone in text or name in text or id_number in text for name, phone, id_number in COMPLAINANTS)


def test_a_name_in_clear_fails(samples: dict[str, Path]) -> None:
    report = check_connector(LeaksName, samples["samr.complaint"])
    assert _failed(report) == [NO_PERSONAL_DATA]
    assert report.check(NO_PERSONAL_DATA).details[0] == (
        "row 2, column 诉求人姓名 (a value of a personal column): in clear in event "
        "samr.complaint:12315-2026-11-0001:ACCEPTED (field summary)")
    assert COMPLAINANTS[0][0] not in str(report)


def test_a_connector_that_raises_is_a_connector_error(samples: dict[str, Path]) -> None:
    report = check_connector(Crashes, samples["samr.penalty"])
    assert _failed(report) == [NO_CONNECTOR_ERRORS]  # the runner dead-letters the row: nothing lost
    check = report.check(NO_CONNECTOR_ERRORS)
    assert check.reason == "to_events failed on 1 row(s); the runner dead-letters each as connector_error"
    assert check.details[0].startswith("row 3: the connector failed: KeyError (KeyError at test_conformance.py:")
    assert report.rejected == {"connector_error": 1, "invalid_business_id": 1}


def test_an_event_off_its_contract_fails_the_contract(samples: dict[str, Path]) -> None:
    report = check_connector(OffContract, samples["samr.penalty"])
    assert AVRO_CONTRACT in _failed(report) and NO_CONNECTOR_ERRORS not in _failed(report)
    check = report.check(AVRO_CONTRACT)
    assert check.reason == "3 record(s) do not fit their contract"
    assert check.details[0].startswith("row 2: a event record does not fit its schema")


def test_events_of_another_agency_are_refused_by_the_flow(samples: dict[str, Path]) -> None:
    report = check_connector(SpeaksForThePolice, samples["samr.penalty"])
    assert _failed(report) == [FLOW_ACCEPTS]
    check = report.check(FLOW_ACCEPTS)
    assert check.reason == "the workers' flow dead-lettered 3 of 3 events"
    assert check.details[0].startswith("row 2, event samr.penalty:晋榆市监罚〔2026〕58号: wrong_agency: ")


def test_a_class_that_declares_nothing_fails_its_declaration(samples: dict[str, Path]) -> None:
    report = check_connector(Undeclared, samples["samr.penalty"])
    assert not report.ok
    declaration = report.check(DECLARATION)
    assert not declaration.passed
    assert [d.split(":")[0] for d in declaration.details] == ["name", "agency", "description", "columns",
                                                              "not implemented"]
    assert all(not c.passed and c.reason.startswith("not run: the connector could not be set up")
               for c in report.checks[1:])


def test_a_layout_that_contradicts_itself_fails_its_declaration(samples: dict[str, Path]) -> None:
    report = check_connector(BadLayout, samples["samr.penalty"])
    assert _failed(report)[0] == DECLARATION  # the SDK's redacted_original fails on the field that is not there
    assert report.check(DECLARATION).details == (
        "description: a line for `hub connector list`",
        "optional_columns: '附件' is not a header of columns",
        "personal_fields: 'suspect' is not a field of columns")


def test_a_sample_in_another_layout_is_not_read(samples: dict[str, Path]) -> None:
    report = check_connector("samr.penalty", samples["samr.inspection"])
    assert _failed(report) == list(CHECKS[1:])
    reads = report.check(READS_SAMPLE)
    assert reads.reason.startswith("the runner rejects the file as a whole at row 1, column '检查编号': "
                                   "unknown_column: unknown column for samr.penalty")
    assert report.check(ROWS_ACCOUNTED).reason == "not run: the runner rejects the sample as a whole"


def test_the_kit_exports_the_bus() -> None:
    from hub.testing import bus

    assert Bus is bus.Bus and Bus().flow is not None


# -- the command line -------------------------------------------------------------


def _hub(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_hub_connector_check_passes_an_installed_connector(samples: dict[str, Path]) -> None:
    code, output = _hub("connector", "check", "samr.penalty", "--path", str(samples["samr.penalty"]))
    assert code == 0, output
    assert output.startswith("connector samr.penalty on 行政处罚.csv: 4 rows read, 3 events, 1 row rejected "
                             "(invalid_business_id=1)\n")
    assert "PASS  no_personal_data" in output and "conformant: all 8 checks passed" in output


def test_hub_connector_check_fails_on_a_failed_check(samples: dict[str, Path]) -> None:
    code, output = _hub("connector", "check", "samr.penalty", "--path", str(samples["samr.inspection"]))
    assert code == 1, output
    assert "FAIL  reads_sample" in output and "NOT conformant: 7 of 8 checks failed" in output


def test_hub_connector_check_takes_a_class_not_installed(samples: dict[str, Path]) -> None:
    code, output = _hub("connector", "check", f"{__name__}:LeaksPhone", "--path", str(samples["samr.complaint"]))
    assert code == 1, output
    assert "FAIL  no_personal_data" in output
    assert not any(phone in output for _, phone, _ in COMPLAINANTS)


def test_hub_connector_check_refuses_an_unknown_connector(samples: dict[str, Path]) -> None:
    code, output = _hub("connector", "check", "county.nothing", "--path", str(samples["samr.penalty"]))
    assert code == 2 and "no connector 'county.nothing'" in output
