"""Plausibility checks on decoded records, the same at both edges.

A record can be well-formed Avro and still be poison: a clerk's typo that
dates a penalty in 2062 would become its business's "now" and age every real
event out of the rules; a NUL byte in an ID, an amount of 1e30 or a 10 MB
text field break whatever reads them later. Connectors check each event
before publishing it and workers check each record after decoding it, so a
record produced straight onto a topic gets no further than one from a file.

The check walks the record generically (every string, date, amount and
measurement, wherever it sits), so a new field is covered the day it is added.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from typing import Any
from collections.abc import Callable

from hub.settings import ValidationSettings

# C0 controls and DEL, except tab and line breaks, which free text may hold.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Invalid(ValueError):
    """A value outside what the hub accepts. ``field`` names where it sits (a
    dotted path in the record, or the export's column); the message never
    holds the value itself, which may be personal data."""

    def __init__(self, reason_code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.reason_code, self.field, self.detail = reason_code, field, message

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}"

    def inside(self, name: str) -> Invalid:
        """The same problem, one level up: ``name`` is where the value sat."""
        self.field = f"{name}{'' if not self.field or self.field.startswith('[') else '.'}{self.field}"
        return self


def has_control_character(text: str) -> bool:
    return bool(_CONTROL.search(text))


def check_text(value: str, field: str, limits: ValidationSettings) -> None:
    if len(value) > limits.max_text_chars:
        raise Invalid("oversized_field", field, f"{len(value)} characters, more than {limits.max_text_chars}")
    if _CONTROL.search(value):
        raise Invalid("control_character", field, "holds a control character (NUL or similar)")


def check_date(value: dt.date, field: str, limits: ValidationSettings, latest: dt.date) -> None:
    if isinstance(value, dt.datetime):
        value = value.date()
    if value < limits.earliest_date:
        raise Invalid("date_out_of_range", field, f"dated before {limits.earliest_date.isoformat()}")
    if value > latest:
        raise Invalid("date_out_of_range", field, f"dated after {latest.isoformat()}, in the future")


def check_amount(value: Decimal, field: str, limits: ValidationSettings) -> None:
    if not value.is_finite():
        raise Invalid("amount_out_of_range", field, "not a finite number")
    if value < 0 or value > limits.max_amount_yuan:
        raise Invalid("amount_out_of_range", field, f"outside 0 .. {limits.max_amount_yuan} yuan")


# Dates that name a deadline, not something that happened: they may lie ahead
# (a 整改期限 weeks after the inspection), up to ``max_deadline_ahead_days``.
DEADLINE_FIELDS = frozenset({"rectify_by"})


def check_record(record: Any, limits: ValidationSettings, latest: dt.date) -> None:
    """Raise ``Invalid`` for the first implausible value anywhere in ``record``
    (a decoded Avro record: dicts, lists, (name, record) union pairs and
    scalars). ``latest``: the last date a record may carry.

    It runs on every event at both edges: the path to a value is built only
    when a value fails, on the way out."""
    check = _CHECKS.get(type(record))
    if check is not None:
        check(record, limits, latest)
    elif isinstance(record, dt.date):  # datetimes included
        check_date(record, "", limits, latest)
    elif isinstance(record, Decimal):
        check_amount(record, "", limits)


# Values settled without a call: nulls, flags and counts.
_SETTLED = frozenset({type(None), bool, int})


def _check_fields(record: dict[str, Any], limits: ValidationSettings, latest: dt.date) -> None:
    most = limits.max_text_chars
    for name, value in record.items():
        # Most values are settled here, without a call: nulls, flags,
        # counts, and short text with no control character.
        kind = type(value)
        if kind in _SETTLED or (kind is str and len(value) <= most and not _CONTROL.search(value)):
            continue
        _check_field(name, value, limits, latest)


def _check_field(name: str, value: Any, limits: ValidationSettings, latest: dt.date) -> None:
    """A field the loop did not settle: a deadline may lie ahead; a date in
    range is settled here."""
    if name in DEADLINE_FIELDS:
        latest = latest + dt.timedelta(days=limits.max_deadline_ahead_days)
    elif type(value) is dt.date and limits.earliest_date <= value <= latest:
        return
    try:
        check_record(value, limits, latest)
    except Invalid as exc:
        raise exc.inside(name) from None


def _check_items(record: list[Any], limits: ValidationSettings, latest: dt.date) -> None:
    for i, value in enumerate(record):
        if not _plainly_fine(value, limits):
            try:
                check_record(value, limits, latest)
            except Invalid as exc:
                raise exc.inside(f"[{i}]") from None


def _check_branch(record: tuple[str, Any], limits: ValidationSettings, latest: dt.date) -> None:
    """A union branch read with its record name."""
    check_record(record[1], limits, latest)


def _check_text(record: str, limits: ValidationSettings, latest: dt.date) -> None:
    check_text(record, "", limits)


def _check_measure(record: float, limits: ValidationSettings, latest: dt.date) -> None:
    if not math.isfinite(record) or abs(record) > limits.max_measure:
        raise Invalid("number_out_of_range", "", f"not a finite number within ±{limits.max_measure:g}")


# The checks by a value's exact type; dates and amounts (and their
# subclasses) are told by isinstance.
_CHECKS: dict[type, Callable[[Any, ValidationSettings, dt.date], None]] = {
    str: _check_text, dict: _check_fields, list: _check_items, tuple: _check_branch, float: _check_measure}


def _plainly_fine(value: Any, limits: ValidationSettings) -> bool:
    """Most of a record's values, settled without a call: nulls, flags,
    counts, and short text with no control character."""
    kind = type(value)
    if kind is str:
        return len(value) <= limits.max_text_chars and not _CONTROL.search(value)
    return value is None or kind is bool or kind is int


def latest_date(now: dt.datetime | float, limits: ValidationSettings) -> dt.date:
    """The last date a record received at ``now`` may carry."""
    if isinstance(now, (int, float)):
        now = dt.datetime.fromtimestamp(now, tz=dt.UTC)
    return now.date() + dt.timedelta(days=limits.future_tolerance_days)
