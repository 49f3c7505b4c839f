"""Property: an ID or telephone number, written with any separators, in any
context, in any column of any connector's export, is found nowhere in clear
in what the connector makes of the row (its events, or the dead letter's
copy of the row when the row is refused) or in the file's name as shown.
No broker: the connectors' own work, where the scrubbing happens."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from connectors.discovery import available
from connectors.sdk import Connector, RowRejected, SourceRow
from hub.domain.pii import PersonalDataHasher
from hub.devtools.samples import make_resident_id
from tests.test_personal_data_sweep import planted

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
HASHER = PersonalDataHasher("pii-forms-test-key")
_TOKEN = re.compile(r"\[pii:[0-9a-f]{24}\]")
# Anything a number can be spread over in text: digits, letters, separators.
_SPREAD = re.compile(r"[0-9０-９A-Za-zＡ-Ｚａ-ｚ\s.．·\-－—–_()（）+＋]+")


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Connector, SourceRow]]:
    """Every connector, with the first row of its planted export."""
    out = {}
    for name, path in planted(tmp_path_factory.mktemp("planted")):
        connector = available()[name](HASHER)
        out[name] = connector, next(iter(connector.read(path)))
    return out


def _ids() -> st.SearchStrategy[str]:
    return st.builds(lambda division, day, seq: make_resident_id(division, day, f"{seq:03d}"),
                     st.sampled_from(["410502", "140702", "140703", "110105", "440106"]),
                     st.dates(dt.date(1930, 1, 1), dt.date(2008, 12, 31)), st.integers(0, 999))


def _phones() -> st.SearchStrategy[str]:
    mobile = st.builds(lambda second, rest: f"1{second}{rest:09d}", st.sampled_from("3456789"),
                       st.integers(0, 10**9 - 1))
    landline = st.builds(lambda area, rest: f"0{area}{rest}", st.sampled_from(["354", "351", "372", "10", "21"]),
                         st.integers(2_000_000, 89_999_999).map(str))
    return st.one_of(mobile, landline)


@st.composite
def written(draw: st.DrawFn, number: str) -> str:
    """The number as a clerk may type it: groups split by whatever they
    like, full-width or not, +86 before a mobile."""
    digits = unicodedata.normalize("NFKC", number)
    if draw(st.booleans()):
        digits = digits.translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})
    separators = st.sampled_from(["", "", "", "", " ", "  ", "\u00a0", "\u3000", ".", "-", " - ", "－", "_"])
    cuts = sorted(draw(st.sets(st.integers(3, len(digits) - 2), max_size=3)))
    pieces = [digits[a:b] for a, b in zip([0, *cuts], [*cuts, len(digits)], strict=False)]
    out = pieces[0] + "".join(draw(separators) + piece for piece in pieces[1:])
    if len(number) == 11 and number.startswith("1") and draw(st.booleans()):
        out = draw(st.sampled_from(["+86 ", "86-", "＋86"])) + out
    return out


@st.composite
def planted_text(draw: st.DrawFn) -> tuple[str, str]:
    """(the text to plant, the number's digits)."""
    number = draw(st.one_of(_ids(), _phones()))
    before = draw(
        st.sampled_from(
            [
                "",
                "当事人",
                "电话",
                "ID",
                "Tel",
                "身份证号：",
                "联系方式 ",
                "2026-03-15 ",
                "销售金额6.2万元，",
                "13912345678",
                "0354-6231234",
            ]
        )
    )
    after = draw(st.sampled_from(["", "abc", "号", "。", " 2026年3月15日", "（本人）", "X1"]))
    return before + draw(written(number)) + after, number


def _in_clear(number: str, output: str) -> bool:
    """Is the number there in clear, however spread over separators and letters?"""
    for spread in _SPREAD.findall(_TOKEN.sub("|", output)):
        if number in "".join(c for c in unicodedata.normalize("NFKC", spread) if c.isdigit() or c == "X"):
            return True
    return False


def _outputs(connector: Connector, row: SourceRow) -> str:
    try:
        return json.dumps(connector.events(row, NOW), ensure_ascii=False, default=str)
    except RowRejected as exc:
        return json.dumps(
            {
                "reason": exc.reason_code,
                "detail": str(exc),
                "column": exc.column,
                "row": connector.redacted_original(row),
            },
            ensure_ascii=False,
        )


@hsettings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), text=planted_text())
def test_no_number_in_clear_whatever_its_form_and_wherever_it_is_typed(
    rows: dict[str, tuple[Connector, SourceRow]], data: st.DataObject, text: tuple[str, str]
) -> None:
    name = data.draw(st.sampled_from(sorted(rows)))
    connector, row = rows[name]
    field = data.draw(st.sampled_from(sorted(row.cells)))
    header = next(h for h, f in connector.columns.items() if f == field)
    planted_value, number = text
    # beside what the cell held, as text would be (run together with
    # another number: the contexts of ``planted_text``)
    cell = data.draw(
        st.sampled_from([planted_value, f"{row.cells[field]} {planted_value}", f"{planted_value}，{row.cells[field]}"])
    )
    changed = dataclasses.replace(row, cells={**row.cells, field: cell}, original={**row.original, header: cell})
    output = _outputs(connector, changed)
    assert not _in_clear(number, output), f"{name} {header}: {cell!r} -> {output}"
    shown = connector.shown_name(Path(f"/exports/{cell}.csv"))
    assert not _in_clear(number, shown), shown


def test_the_check_would_see_a_number_left_in_clear() -> None:
    """The property's own check, on outputs that leak: spread, full-width, beside letters."""
    assert _in_clear("13987654321", '{"finding": "电话139 8765.4321"}')
    assert _in_clear("13987654321", "Tel１３９８７６５４３２１abc")
    assert not _in_clear("13987654321", f"电话{HASHER.token('13987654321')}")
