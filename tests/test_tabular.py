from pathlib import Path

import pytest

from connectors.samr_penalty import SamrPenaltyConnector
from connectors.tabular import FileFormatError, decode_csv_bytes, normalise_header
from hub.devtools.samples import penalty_rows, write_csv, write_xlsx


@pytest.mark.parametrize("encoding, detected", [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gbk")])
def test_encoding_is_detected(encoding: str, detected: str) -> None:
    text = "行政相对人名称,罚款金额（万元）\n晋中市榆次区福顺食品有限公司,2.5\n"
    decoded, found = decode_csv_bytes(text.encode(encoding), "f.csv")
    assert found == detected
    assert decoded == text


def test_undecodable_bytes_are_a_clear_error() -> None:
    with pytest.raises(FileFormatError, match="neither UTF-8 nor GBK"):
        decode_csv_bytes(b"\x81\x20\xff\xfe\x00", "bad.csv")


def test_header_variants_are_the_same_column() -> None:
    assert normalise_header(" 罚款金额(万元) ") == normalise_header("罚款金额（万元）")


@pytest.mark.parametrize("fmt", ["gbk", "utf-8-sig", "xlsx"])
def test_every_format_gives_the_same_rows(tmp_path: Path, hasher, fmt: str) -> None:
    header = list(SamrPenaltyConnector.columns)
    if fmt == "xlsx":
        path = write_xlsx(tmp_path / "p.xlsx", header, penalty_rows())
    else:
        path = write_csv(tmp_path / "p.csv", header, penalty_rows(), fmt)
    rows = list(SamrPenaltyConnector(hasher).read(path))
    assert [r.number for r in rows] == [2, 3, 4, 5]
    assert rows[0].cells["fine_wan"] == "2.5"
    assert rows[0].cells["decided_on"] == "2026-08-20"
    assert rows[0].cells["decision_no"] == "晋榆市监罚〔2026〕58号"


def test_missing_column_names_file_row_and_column(tmp_path: Path, hasher) -> None:
    header = [h for h in SamrPenaltyConnector.columns if h != "处罚决定日期"]
    path = write_csv(tmp_path / "p.csv", header, [], "gbk")
    with pytest.raises(FileFormatError) as err:
        list(SamrPenaltyConnector(hasher).read(path))
    assert err.value.reason_code == "missing_column"
    assert str(err.value).startswith("p.csv, row 1") and "处罚决定日期" in str(err.value)  # the name, not its folders


def test_unknown_column_names_it(tmp_path: Path, hasher) -> None:
    header = [*list(SamrPenaltyConnector.columns), "经办人手机号"]
    path = write_csv(tmp_path / "p.csv", header, [], "utf-8")
    with pytest.raises(FileFormatError, match="经办人手机号") as err:
        list(SamrPenaltyConnector(hasher).read(path))
    assert err.value.reason_code == "unknown_column"


def test_unsupported_file_type(tmp_path: Path, hasher) -> None:
    path = tmp_path / "p.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(FileFormatError, match="unsupported file type"):
        list(SamrPenaltyConnector(hasher).read(path))


_LAUGHS = ('<!DOCTYPE w [<!ENTITY a "aaaaaaaaaa">'
           + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)) + "]>")
_XXE = '<!DOCTYPE w [<!ENTITY j SYSTEM "file:///etc/passwd">]>'


@pytest.mark.parametrize("doctype", [_LAUGHS, _XXE], ids=["billion-laughs", "external-entity"])
@pytest.mark.parametrize("part", ["xl/worksheets/sheet1.xml", "xl/workbook.xml"])
def test_a_workbook_declaring_entities_is_refused_unexpanded(tmp_path: Path, doctype: str, part: str) -> None:
    """Attack: a sheet (or the workbook part) whose DTD expands one cell to
    10¹⁰ characters, or pulls a file of the connector's host into it."""
    import zipfile

    from connectors.tabular import read_rows

    clean = write_xlsx(tmp_path / "clean.xlsx", ["a", "b"], [["1", "2"]])
    hostile = tmp_path / "hostile.xlsx"
    with zipfile.ZipFile(clean) as src, zipfile.ZipFile(hostile, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == part:
                body = data.decode().removeprefix('<?xml version="1.0" encoding="UTF-8"?>')
                body = body.replace("<t>1</t>", "<t>&j;</t>").replace('name="Sheet"', 'name="&j;"')
                data = f'<?xml version="1.0"?>{doctype}{body}'.encode()
            dst.writestr(item, data)
    with pytest.raises(FileFormatError) as refused:
        list(read_rows(hostile, 256 << 20, hostile.name))
    assert refused.value.reason_code == "unreadable_file" and "root:" not in str(refused.value)
