"""Reading agency exports: CSV (UTF-8, UTF-8 with BOM or GBK, detected) and .xlsx."""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import unicodedata
from pathlib import Path
from typing import Iterator

TABULAR_SUFFIXES = {".csv", ".xlsx"}


class FileFormatError(ValueError):
    """The file as a whole cannot be read (encoding, format, header)."""

    def __init__(self, file: str, message: str, row: int | None = None, column: str | None = None,
                 reason_code: str = "unreadable_file") -> None:
        where = f"{file}" + (f", row {row}" if row else "") + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {message}")
        self.file, self.row, self.column, self.reason_code = file, row, column, reason_code


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


def read_rows(path: Path) -> Iterator[list[str]]:
    """Every row of the file as strings, header first."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        text, _ = decode_csv_bytes(path.read_bytes(), str(path))
        for row in csv.reader(io.StringIO(text, newline="")):
            yield [c.strip() for c in row]
    elif suffix == ".xlsx":
        from openpyxl import load_workbook

        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:
            raise FileFormatError(str(path), f"not a readable .xlsx workbook: {exc}") from exc
        try:
            for row in book.worksheets[0].iter_rows(values_only=True):
                yield [_cell_text(c) for c in row]
        finally:
            book.close()
    else:
        raise FileFormatError(str(path), f"unsupported file type {suffix!r} (expected .csv or .xlsx)",
                              reason_code="unsupported_file")
