"""Plausibility checks, the same at the connector and in the worker (no broker)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from hub.domain.validation import Invalid, check_record, latest_date
from hub.settings import ValidationSettings, load_settings
from hub.testing.bus import RECEIVED
from tests.poison import BAD_EVENT_CODES, SECRET, bad_events, critical_event

LIMITS = ValidationSettings()
LATEST = latest_date(RECEIVED, LIMITS)


def test_a_genuine_event_passes(tmp_path: Path) -> None:
    check_record(critical_event(tmp_path, RECEIVED), LIMITS, LATEST)


@pytest.mark.parametrize("kind", sorted(BAD_EVENT_CODES))
def test_each_implausible_value_is_named_with_its_reason_and_never_echoed(tmp_path: Path, kind: str) -> None:
    bad = bad_events(critical_event(tmp_path, RECEIVED))[kind]
    with pytest.raises(Invalid) as caught:
        check_record(bad, LIMITS, LATEST)
    assert caught.value.reason_code == BAD_EVENT_CODES[kind]
    assert SECRET not in str(caught.value) and "伪伪" not in str(caught.value)


@pytest.mark.parametrize("record, field, code", [
    ({"a": {"b": [1, {"c": "x\x00"}]}}, "a.b[1].c", "control_character"),
    ({"d": ("Name", {"on": dt.date(1948, 12, 31)})}, "d.on", "date_out_of_range"),
    ({"at": dt.datetime(2026, 11, 4, tzinfo=dt.UTC)}, "at", "date_out_of_range"),
    # A date directly in a record is settled in place when in range: year 1,
    # year 9999 and a deadline beyond its window still fail, by name.
    ({"on": dt.date(1, 1, 1)}, "on", "date_out_of_range"),
    ({"on": dt.date(9999, 12, 31)}, "on", "date_out_of_range"),
    ({"rectify_by": dt.date(9999, 12, 31)}, "rectify_by", "date_out_of_range"),
    ({"v": Decimal("NaN")}, "v", "amount_out_of_range"),
    ({"v": Decimal("1e30")}, "v", "amount_out_of_range"),
    ({"m": float("inf")}, "m", "number_out_of_range"),
])
def test_the_field_is_named_wherever_it_sits(record: dict, field: str, code: str) -> None:
    with pytest.raises(Invalid) as caught:
        check_record(record, LIMITS, LATEST)
    assert (caught.value.field, caught.value.reason_code) == (field, code)


def test_tabs_and_line_breaks_are_text_and_the_tolerance_is_a_setting() -> None:
    check_record({"facts": "第一行\r\n\t第二行", "on": LATEST}, LIMITS, LATEST)
    check_record({"on": LIMITS.earliest_date, "rectify_by": LATEST + dt.timedelta(days=30)}, LIMITS, LATEST)
    settings = load_settings(environ={"HUB_VALIDATION_FUTURE_TOLERANCE_DAYS": "0",
                                      "HUB_VALIDATION_EARLIEST_DATE": "2000-01-01"})
    assert latest_date(RECEIVED, settings.validation) == RECEIVED.date()
    with pytest.raises(Invalid):
        check_record({"on": dt.date(1999, 12, 31)}, settings.validation, RECEIVED.date())
