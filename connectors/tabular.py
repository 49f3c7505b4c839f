"""Reading agency exports: CSV (UTF-8, UTF-8 with BOM or GBK, detected) and .xlsx."""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Iterator

TABULAR_SUFFIXES = {".csv", ".xlsx"}


class FileFormatError(ValueError):
    """The file as a whole cannot be read (encoding, format, header)."""

    def __init__(self, file: str, message: str, row: int | None = None, column: str | None = None,
                 reason_code: str = "unreadable_file") -> None:
        column = clip(column) if column is not None else None
        where = f"{file}" + (f", row {row}" if row else "") + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {message}")
        self.file, self.row, self.column, self.reason_code, self.detail = file, row, column, reason_code, message


@dataclass(frozen=True)
class BadRecord:
    """A record the reader could not turn into cells (a line in another
    encoding, a malformed CSV line): a dead letter of its own, while the rest
    of the file goes on."""

    line: int
    reason_code: str
    message: str


# Stands for an undecodable line in the text handed to the CSV parser; a
# private-use character, so no export holds it.
_BAD_LINE = "\ue000"


def decode_csv_bytes(data: bytes, file: str) -> tuple[str, str]:
    """(text, encoding). UTF-8 is self-validating, so anything that decodes as
    UTF-8 is UTF-8; otherwise GB18030, the superset of GBK that Chinese
    Windows exports use."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gbk"
    except UnicodeDecodeError as exc:
        raise FileFormatError(file, f"neither UTF-8 nor GBK text (byte {exc.start})",
                              reason_code="bad_encoding") from exc


def _decode_lines(data: bytes, file: str) -> tuple[Iterable[str], set[int]]:
    """The file's lines as text, and the numbers (1-based) of the lines that
    are not in the file's encoding: one GBK row pasted into a UTF-8 export
    must cost that row, not the file. The encoding is the one most lines
    that need one decode in."""
    try:
        text, _ = decode_csv_bytes(data, file)
        return io.StringIO(text, newline=""), set()  # lines end at \n, \r or \r\n, as in CSV
    except FileFormatError:
        pass
    return _decode_line_by_line(data, file)


def _decode_line_by_line(data: bytes, file: str) -> tuple[list[str], set[int]]:
    raw = data.splitlines(keepends=True)  # \n and \r never occur inside a GBK or UTF-8 character
    encoding = _most_lines_encoding(raw)
    lines, bad = [], set()
    for number, line in enumerate(raw, start=1):
        if _decodes(line, encoding):
            lines.append(line.decode(encoding))
        else:
            bad.add(number)
            lines.append(f"{_BAD_LINE}{number}\n")
    if len(bad) == len(raw):
        raise FileFormatError(file, "neither UTF-8 nor GBK text", reason_code="bad_encoding")
    return lines, bad


def _most_lines_encoding(raw: list[bytes]) -> str:
    """UTF-8 or GB 18030: the one most lines that need one decode in."""
    wide = [line for line in raw if not line.isascii()]
    utf8 = sum(_decodes(line, "utf-8") for line in wide)
    return "utf-8" if utf8 * 2 >= len(wide) else "gb18030"


def _decodes(line: bytes, encoding: str) -> bool:
    try:
        line.decode(encoding)
        return True
    except UnicodeDecodeError:
        return False


def _csv_rows(path: Path, max_bytes: int, shown: str) -> Iterator[list[str] | BadRecord]:
    lines, bad = _decode_lines(path.read_bytes(), shown)
    # The limit is the parser's, per field (128 KiB by default, an exception
    # that ends the file); cells are held to the hub's own, smaller limit per
    # row, so no field may end the reading.
    csv.field_size_limit(max(max_bytes, csv.field_size_limit()))
    reader = csv.reader(lines)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield BadRecord(reader.line_num, "malformed_row", f"line {reader.line_num}: {exc}")
            continue
        yield _csv_record(row, reader.line_num, bad)


def _csv_record(row: list[str], line_num: int, bad: set[int]) -> list[str] | BadRecord:
    """A row read, its cells stripped; a row with a line not in the file's encoding is bad."""
    if bad and any(_BAD_LINE in cell for cell in row):
        return BadRecord(line_num, "bad_encoding", f"line {line_num}: not in the file's encoding (UTF-8 or GBK)")
    return [c.strip() for c in row]


def _xlsx_rows(path: Path, max_bytes: int, shown: str) -> Iterator[list[str] | BadRecord]:
    inflated = _inflated_size(path, shown)
    if inflated > max_bytes:  # decided from the zip directory, before anything is inflated
        raise FileFormatError(shown, f"inflates to {inflated} bytes, more than {max_bytes}",
                              reason_code="oversized_file")
    book = _open_workbook(path, shown)
    try:
        for row in book.worksheets[0].iter_rows(values_only=True):
            yield [_cell_text(c) for c in row]
    except Exception as exc:  # a corrupt sheet part: what was read stands, the rest cannot be
        raise FileFormatError(shown, f"the workbook breaks off ({type(exc).__name__})") from exc
    finally:
        book.close()


def _inflated_size(path: Path, shown: str) -> int:
    """The workbook's size once inflated, from its zip directory."""
    try:
        with zipfile.ZipFile(path) as archive:
            return sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise FileFormatError(shown, f"not a readable .xlsx workbook ({type(exc).__name__})") from exc


def _open_workbook(path: Path, shown: str) -> Any:
    from openpyxl import load_workbook

    try:
        return load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise FileFormatError(shown, f"not a readable .xlsx workbook ({type(exc).__name__})") from exc


def clip(text: str, limit: int = 200) -> str:
    """A cell for a dead letter or a log line: never more than ``limit`` characters."""
    return text if len(text) <= limit else f"{text[:limit]}…(+{len(text) - limit} characters)"


def normalise_header(name: str) -> str:
    """Full-width brackets, stray spaces: '罚款金额(万元) ' == '罚款金额（万元）'."""
    return "".join(unicodedata.normalize("NFKC", name).split())


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_rows(path: Path, max_bytes: int, shown: str) -> Iterator[list[str] | BadRecord]:
    """Every row of the file as strings, header first; a row that cannot be
    read is a ``BadRecord`` in its place. ``max_bytes`` bounds the file (an
    .xlsx by its inflated size); ``shown``: the file's name in errors
    (``Connector.shown_name``)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _csv_rows(path, max_bytes, shown)
    elif suffix == ".xlsx":
        yield from _xlsx_rows(path, max_bytes, shown)
    else:
        raise FileFormatError(shown, "unsupported file type (expected .csv or .xlsx)", reason_code="unsupported_file")
