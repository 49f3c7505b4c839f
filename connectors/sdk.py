"""The connector base an agency builds on.

A connector declares its export layout (Chinese column -> canonical field),
which fields are required and which hold personal data, and turns one
validated row into canonical events. Reading files, cursors, producing,
dead-lettering and metrics belong to ``connectors.runner``.
"""
from __future__ import annotations

import datetime as dt
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import ClassVar, Literal, overload
from collections.abc import Callable, Iterator, Mapping

from connectors.tabular import BadRecord, FileFormatError, clip, normalise_header, read_rows
from hub.domain.events import Agency, Business, BusinessRole, Event
from hub.domain.identifiers import (InvalidIdentifier, region_of_address, uscc_region, validate_licence,
                                    validate_registration_number, validate_uscc)
from hub.domain.pii import PersonalDataHasher, split_people
from hub.domain.validation import (DEADLINE_FIELDS, Invalid, check_amount, check_date, check_text,
                                   has_control_character, latest_date)
from hub.settings import ValidationSettings


class RowRejected(ValueError):
    """A row that cannot be accepted; it goes to the dead-letter topic."""

    def __init__(self, reason_code: str, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.reason_code, self.column = reason_code, column


@dataclass(frozen=True)
class SourceRow:
    file: str
    number: int  # 1-based record number, header is 1
    cells: Mapping[str, str]  # canonical field -> cell text
    original: Mapping[str, str]  # Chinese header -> cell text, for dead letters
    rejected: RowRejected | None = None  # why the reader could not accept the row as it stands


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日")
_MEASURE = re.compile(r"^\s*(?:[<>≤≥＜＞]=?)?\s*(-?\d+(?:\.\d+)?)\s*(.*?)\s*$")
_EMPTY = {"", "/", "-", "—", "无", "null", "NULL"}


class Row:
    """Typed access to one row's cells; every failure names the column and
    never the cell's value (it may be personal data).

    Text comes out scrubbed (``text``, ``required``): the row's people and
    anything ID- or phone-like are keyed tokens, in every field of every
    connector unless it asks for something else. Dates, numbers, choices and
    identifiers are read from the cell as it is and validated."""

    def __init__(self, source: SourceRow, headers: Mapping[str, str], limits: ValidationSettings,
                 latest: dt.date, hasher: PersonalDataHasher, people: list[str]) -> None:
        self.source = source
        self._headers = headers  # canonical field -> Chinese header
        self._limits, self._latest = limits, latest  # latest: the last plausible date
        self._hasher = hasher
        self.people = people  # the row's personal values (Connector.people)

    def _column(self, field: str) -> str:
        return self._headers.get(field, field)

    def _cell(self, field: str) -> str | None:
        value = self.source.cells.get(field, "").strip()
        return None if value in _EMPTY else value

    def _required_cell(self, field: str) -> str:
        value = self._cell(field)
        if value is None:
            raise RowRejected("missing_value", "required value is empty", self._column(field))
        return value

    def text(self, field: str) -> str | None:
        return self._hasher.scrub(self._cell(field), self.people)

    def required(self, field: str) -> str:
        return self._hasher.scrub(self._required_cell(field), self.people) or ""

    @overload
    def business_name(self, field: str, required: Literal[True] = True) -> str: ...

    @overload
    def business_name(self, field: str, required: bool) -> str | None: ...

    def business_name(self, field: str, required: bool = True) -> str | None:
        """A business's name: its identity on the register, which entity
        resolution matches across agencies, so the people's names are left in
        it (a 个体工商户 is often named after its operator); ID and telephone
        numbers are not."""
        return self._hasher.scrub(self._required_cell(field) if required else self._cell(field))

    def ref(self, field: str) -> str:
        """The keyed reference of a cell that is personal as a whole."""
        return self._hasher.ref(self._required_cell(field))

    @overload
    def first_ref(self, *fields: str, required: Literal[True] = True) -> str: ...

    @overload
    def first_ref(self, *fields: str, required: bool) -> str | None: ...

    def first_ref(self, *fields: str, required: bool = True) -> str | None:
        """The keyed reference of the first of ``fields`` the row fills: one
        person, known by the most specific value the row holds."""
        for field in fields:
            value = self._cell(field)
            if value is not None:
                return self._hasher.ref(value)
        if required:
            raise RowRejected("missing_value", "required value is empty", self._column(fields[0]))
        return None

    def date(self, field: str, required: bool = True) -> dt.date | None:
        value = self._required_cell(field) if required else self._cell(field)
        if value is None:
            return None
        date = _parse_date(value)
        if date is None:
            raise RowRejected("bad_date", "not a date", self._column(field))
        # A deadline (a 整改期限 weeks after the inspection) lies ahead by its
        # meaning; a finding does not (hub.domain.validation.DEADLINE_FIELDS,
        # the rule the workers apply too).
        latest = self._latest + dt.timedelta(days=self._limits.max_deadline_ahead_days) \
            if field in DEADLINE_FIELDS else self._latest
        try:
            check_date(date, self._column(field), self._limits, latest)
        except Invalid as exc:
            raise RowRejected(exc.reason_code, exc.detail, self._column(field)) from None
        return date

    def decimal(self, field: str, scale: int = 1) -> Decimal | None:
        """A number, multiplied by ``scale`` (10 000 for amounts in 万元)."""
        value = self._cell(field)
        if value is None:
            return None
        cleaned = value.replace(",", "").replace("，", "").removesuffix("元").removesuffix("万")
        try:
            number = Decimal(cleaned) * scale
        except InvalidOperation:
            raise RowRejected("bad_number", "not a number", self._column(field)) from None
        if not number.is_finite():  # NaN, Infinity: Decimal reads them, no export means them
            raise RowRejected("bad_number", "not a finite number", self._column(field))
        if number < 0:
            raise RowRejected("bad_number", "a negative amount", self._column(field))
        try:
            check_amount(number, self._column(field), self._limits)
        except Invalid as exc:
            raise RowRejected(exc.reason_code, exc.detail, self._column(field)) from None
        return number.quantize(Decimal("0.01"))

    def choice(self, field: str, choices: Mapping[str, str], required: bool = True) -> str | None:
        value = self._required_cell(field) if required else self._cell(field)
        if value is None:
            return None
        if value not in choices:
            raise RowRejected("unknown_value", f"not one of {'/'.join(choices)}", self._column(field))
        return choices[value]

    def _identifier(self, field: str, validate: Callable[[str], str], reason_code: str) -> str | None:
        value = self._cell(field)
        if value is None:
            return None
        try:
            return validate(value)
        except InvalidIdentifier as exc:
            raise RowRejected(reason_code, str(exc), self._column(field)) from None

    def uscc(self, field: str) -> str | None:
        return self._identifier(field, validate_uscc, "invalid_business_id")

    def licence(self, field: str) -> str | None:
        return self._identifier(field, validate_licence, "invalid_licence")

    def registration_number(self, field: str) -> str | None:
        return self._identifier(field, validate_registration_number, "invalid_registration_number")


def _parse_date(value: str) -> dt.date | None:
    head = value.split(" ")[0].split("T")[0]
    try:
        return dt.date.fromisoformat(head)  # the common case, ten times faster than strptime
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(head, fmt).date()
        except ValueError:
            continue
    return None


def parse_measure(text: str | None) -> tuple[float | None, str | None]:
    """'0.52μg/kg' -> (0.52, 'μg/kg'); '未检出' -> (None, None)."""
    if not text:
        return None, None
    match = _MEASURE.match(text)
    if not match:
        return None, None
    return float(match.group(1)), (match.group(2) or None)


def business(name: str, *, business_id: str | None = None, address: str | None = None,
             licence_number: str | None = None, registration_number: str | None = None,
             role: BusinessRole = BusinessRole.SUBJECT) -> Business:
    return {
        "business_id": business_id,
        "name": name,
        "address": address,
        # Without a USCC the address tells the region (or the name, which often starts with it).
        "region_code": uscc_region(business_id) if business_id else
        region_of_address(address or "") or region_of_address(name),
        "licence_number": licence_number,
        "registration_number": registration_number,
        "role": role.value,
    }


class Connector(ABC):
    """Subclass, declare the layout, implement ``to_events``."""

    name: ClassVar[str]
    agency: ClassVar[Agency]
    description: ClassVar[str] = ""
    #: Chinese column header -> canonical field name.
    columns: ClassVar[Mapping[str, str]]
    #: Headers that an export may leave out.
    optional_columns: ClassVar[frozenset[str]] = frozenset()
    #: Canonical fields that hold personal names or ID numbers.
    personal_fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, hasher: PersonalDataHasher, limits: ValidationSettings | None = None) -> None:
        self.hasher = hasher
        self.limits = limits or ValidationSettings()
        self._by_header = {normalise_header(h): f for h, f in self.columns.items()}
        self._headers = {f: h for h, f in self.columns.items()}

    def shown_name(self, path: Path) -> str:
        """How the hub names an export in its events, dead letters, cursors,
        logs and output: the file's name without its folders, ID-like and
        telephone numbers as keyed tokens (clerks name files after people:
        ``罚款-13912345678.xlsx``). A bare name cannot be told by its form,
        so one in a file's name stays."""
        return self.hasher.scrub(path.name) or ""

    def read(self, path: Path) -> Iterator[SourceRow]:
        """Rows as canonical cells. A header that is missing, unknown or
        repeated is a file-level error naming the column; a row the reader
        cannot accept comes with ``rejected`` set, and the file goes on."""
        file = self.shown_name(path)
        rows = read_rows(path, self.limits.max_file_bytes, file)
        header = _header(file, next(rows, None))
        fields = self._fields(file, header)
        self._check_required(file, fields)
        yield from self._source_rows(file, rows, header, fields)

    def _fields(self, file: str, header: list[str]) -> list[str | None]:
        """The canonical field of each header cell; None for a blank one."""
        fields: list[str | None] = []
        for raw in header:
            fields.append(self._field(file, raw, fields))
        return fields

    def _field(self, file: str, raw: str, before: list[str | None]) -> str | None:
        """A header cell's field; ``before``: the fields of the cells before it."""
        norm = normalise_header(raw)
        if not norm:
            return None  # Excel's trailing blank columns
        if norm not in self._by_header:
            raise FileFormatError(file, f"unknown column for {self.name}", row=1,
                                  column=raw, reason_code="unknown_column")
        field = self._by_header[norm]
        if field in before:  # which of the two holds the value? Neither may win.
            raise FileFormatError(file, "the column appears twice", row=1, column=raw,
                                  reason_code="duplicate_column")
        return field

    def _check_required(self, file: str, fields: list[str | None]) -> None:
        """Every column the layout does not mark optional is in the header."""
        present = {f for f in fields if f}
        for header_name, field in self.columns.items():
            if field not in present and header_name not in self.optional_columns:
                raise FileFormatError(file, f"required column is missing for {self.name}",
                                      row=1, column=header_name, reason_code="missing_column")

    def _source_rows(self, file: str, rows: Iterator[list[str] | BadRecord], header: list[str],
                     fields: list[str | None]) -> Iterator[SourceRow]:
        """The rows after the header, numbered as the file counts them (the header is 1); blank rows left out."""
        normalised = [normalise_header(h) for h in header]
        for number, cells in enumerate(rows, start=2):
            if isinstance(cells, BadRecord):
                yield SourceRow(file, number, {}, {}, RowRejected(cells.reason_code, cells.message))
                continue
            if not any(cells):
                continue
            yield self._source_row(file, number, cells, header, fields, normalised)

    def _source_row(self, file: str, number: int, cells: list[str], header: list[str], fields: list[str | None],
                    normalised: list[str]) -> SourceRow:
        values = {f: _cell_at(cells, i) for i, f in enumerate(fields) if f}
        original = {h: _cell_at(cells, i) for i, h in enumerate(header) if h}
        return SourceRow(file, number, values, original, self._check_cells(cells, header, normalised))

    def _check_cells(self, cells: list[str], header: list[str], normalised: list[str]) -> RowRejected | None:
        misshapen = _misshapen(cells, header, normalised)
        if misshapen is not None:
            return misshapen
        if max(map(len, cells)) <= self.limits.max_text_chars and not has_control_character("".join(cells)):
            return None  # the common case, in one pass: which cell is to blame is asked only of bad rows
        for column, cell in zip(header, cells, strict=False):
            try:
                check_text(cell, column, self.limits)
            except Invalid as exc:
                return RowRejected(exc.reason_code, exc.detail, clip(column))
        return None

    def people(self, row: SourceRow) -> list[str]:
        """The personal values in the row (names, ID numbers), to hash and mask;
        a connector adds those its layout holds outside its personal columns."""
        return [p for f in self.columns.values() if f in self.personal_fields
                for p in personal_values(row.cells.get(f, ""))]

    def redacted_original(self, row: SourceRow) -> dict[str, str]:
        """The row for a dead letter: personal columns hashed, free text scrubbed."""
        people = self.people(row)
        personal = {normalise_header(self._headers[f]) for f in self.personal_fields}
        out: dict[str, str] = {}
        for header, value in row.original.items():
            if normalise_header(header) in personal:
                out[clip(header)] = clip(";".join(self.hasher.ref(p) for p in personal_values(value)))
            else:
                out[clip(header)] = clip(self.hasher.scrub(value, people) or "")
        return out

    def events(self, source: SourceRow, received_at: dt.datetime) -> list[Event]:
        """Validate one row and turn it into events; raises RowRejected."""
        if source.rejected is not None:
            raise source.rejected
        row = Row(source, self._headers, self.limits, latest_date(received_at, self.limits), self.hasher,
                  self.people(source))
        return self.to_events(row, received_at)

    @abstractmethod
    def to_events(self, row: Row, received_at: dt.datetime) -> list[Event]:
        ...


def _header(file: str, header: list[str] | BadRecord | None) -> list[str]:
    """The file's first row, which must be a readable header."""
    if header is None:
        raise FileFormatError(file, "the file is empty", reason_code="empty_file")
    if isinstance(header, BadRecord):
        raise FileFormatError(file, header.message, row=1, reason_code=header.reason_code)
    return header


def _cell_at(cells: list[str], i: int) -> str:
    """A row's ``i``-th cell; a row may end before its header does."""
    return cells[i] if i < len(cells) else ""


def _misshapen(cells: list[str], header: list[str], normalised: list[str]) -> RowRejected | None:
    """A row with more cells than the header, or the header again."""
    if any(cells[len(header):]):
        return RowRejected("extra_cells", f"{len(cells)} cells, the header has {len(header)}")
    if cells and normalise_header(cells[0]) == normalised[0] and \
            [normalise_header(c) for c in cells[:len(header)]] == normalised:
        return RowRejected("repeated_header", "the header again, in mid-file")
    return None


def personal_values(cell: str) -> list[str]:
    """Names or ID numbers in one cell; several are separated by 、 , ; etc."""
    return [p for p in split_people(cell) if p not in _EMPTY]
