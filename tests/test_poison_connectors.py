"""Connectors under poison: every bad row or file is a dead letter with its
reason (naming the column where one is to blame), the good rows beside it
are published, and no bad file ends the process."""
from __future__ import annotations

import csv
import datetime as dt
import io
import os
from collections import Counter
from pathlib import Path

import pytest

from connectors.runner import ConnectorRunner
from connectors.samr_penalty import SamrPenaltyConnector
from hub.kafka.clients import KafkaClients
from hub.trust import trust_env
from hub.domain.pii import PersonalDataHasher
from hub.edge.metrics import Metrics
from hub.devtools.samples import write_csv, write_xlsx
from tests.conftest import TEST_PII_KEY
from tests.helpers import dead_letters, events_on_broker, hub
from tests.poison import PENALTY_HEADER, penalty_row

pytestmark = pytest.mark.broker

AMOUNT = "罚款金额(万元)"
DATE = "处罚决定日期"
FACTS = "违法事实"


def _line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()


def _good(i: int) -> list[str]:
    return penalty_row(f"晋太市监罚〔2026〕{100 + i}号", fine_wan="0.5", violation="经营超过保质期的食品")


# (reason code, column to blame or None, the row as it goes into the file)
POISON_ROWS: list[tuple[str, str | None, list[str]]] = [
    ("oversized_field", FACTS, penalty_row("P-big", **{FACTS: "伪" * 200_000})),
    ("control_character", "处罚决定书文号", penalty_row("P-nul\x00")),
    ("extra_cells", None, [*penalty_row("P-extra"), "", "多余"]),
    ("repeated_header", None, PENALTY_HEADER),
    ("bad_number", AMOUNT, penalty_row("P-nan", fine_wan="NaN")),
    ("bad_number", AMOUNT, penalty_row("P-inf", fine_wan="Infinity")),
    ("amount_out_of_range", AMOUNT, penalty_row("P-huge", fine_wan="1e30")),
    ("bad_number", AMOUNT, penalty_row("P-neg", fine_wan="-9999.999999")),
    ("date_out_of_range", DATE, penalty_row("P-y1", date="0001-01-01")),
    ("date_out_of_range", DATE, penalty_row("P-y2062", date="2062-10-20")),
    ("date_out_of_range", DATE, penalty_row("P-y2205", date="2205-03-01")),
    ("date_out_of_range", DATE, penalty_row("P-y9999", date="9999-12-31")),
    ("bad_date", DATE, penalty_row("P-date", date="二〇二六年")),
    ("invalid_business_id", "行政相对人代码_1(统一社会信用代码)", penalty_row("P-uscc", uscc="410502197805173018")),
    ("missing_value", "处罚决定书文号", penalty_row("")),
]
GOOD_ROWS = 6


def _poison_csv(path: Path, first_good: int = 0) -> Path:
    """Good rows between every kind of bad one; UTF-8 but for one GBK row."""
    lines = [_line(PENALTY_HEADER).encode("utf-8")]
    for i, (_, _, row) in enumerate(POISON_ROWS):
        lines.append(_line(_good(first_good + i)).encode("utf-8") if i < GOOD_ROWS else b"")
        lines.append(_line(row).encode("utf-8"))
    lines.insert(3, _line(penalty_row("P-gbk")).encode("gbk"))
    path.write_bytes(b"".join(lines))
    return path


def _runner(clients: KafkaClients) -> ConnectorRunner:
    return ConnectorRunner(clients, SamrPenaltyConnector(PersonalDataHasher(TEST_PII_KEY),
                                                         clients.settings.validation),
                           Metrics())


def test_a_poison_file_is_accounted_for_row_by_row(settings, clients, tmp_path: Path) -> None:
    path = _poison_csv(tmp_path / "poison.csv")
    runner = _runner(clients)
    summary = runner.run_file(path)
    runner.close()
    expected = Counter(code for code, _, _ in POISON_ROWS) + Counter(bad_encoding=1)
    assert summary.rejected == expected
    assert summary.rows_read == GOOD_ROWS + len(POISON_ROWS) + 1
    assert summary.rows_read == summary.events_published + summary.rows_rejected
    published = [e for e in events_on_broker(clients) if e["source"]["file"] == path.name]
    assert sorted(e["source_record_id"] for e in published) == sorted(_good(i)[6] for i in range(GOOD_ROWS))
    letters = [d for d in dead_letters(clients) if d["source_file"] == path.name]
    assert Counter(d["reason_code"] for d in letters) == expected
    columns = Counter((d["reason_code"], d["column"]) for d in letters)
    assert columns == Counter((code, column) for code, column, _ in POISON_ROWS) + Counter({("bad_encoding", None): 1})
    gbk = next(d for d in letters if d["reason_code"] == "bad_encoding")
    assert gbk["source_row"] == 4 and "line 4" in gbk["reason"]
    for letter in letters:  # a 200 000-character cell is clipped in the dead letter and never echoed whole
        assert all(len(v) <= 250 for v in letter["original"].values()) and len(letter["reason"]) < 300


def test_the_cli_says_so_in_its_exit_status(settings, tmp_path: Path) -> None:
    env = {**trust_env(settings), "HUB_BROKER_URL": settings.broker_url, "HUB_PII_KEY": TEST_PII_KEY}
    clean = write_csv(tmp_path / "clean.csv", PENALTY_HEADER, [_good(i) for i in range(3)])
    ok = hub("connector", "run", "samr.penalty", "--path", str(clean), cwd=tmp_path, env=env)
    assert ok.returncode == 0 and "3 events published, 0 rejected" in ok.stdout, ok.stderr
    bad = hub("connector", "run", "samr.penalty", "--path", str(_poison_csv(tmp_path / "p.csv", 50)), cwd=tmp_path,
              env=env)
    assert bad.returncode == 3, bad.stderr
    assert f"{GOOD_ROWS} events published, {len(POISON_ROWS) + 1} rejected" in bad.stdout


def test_follow_goes_past_every_bad_file(settings, clients, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    outside = tmp_path / "secret.csv"
    outside.write_text("SECRET-FIRST-LINE,of a file outside the folder\n", encoding="utf-8")
    os.symlink(outside, folder / "a-link.csv")
    os.mkfifo(folder / "b-fifo.csv")
    write_csv(folder / "c-duplicate-header.csv", [*PENALTY_HEADER, AMOUNT], [[*_good(0), "9"]])
    write_xlsx(folder / "d-big-cell.xlsx", PENALTY_HEADER,  # Excel's own limit: 32 767 characters a cell
               [penalty_row("X-big", **{FACTS: "伪" * 32_767}), _good(1)])
    (folder / "e-empty.csv").write_bytes(b"")
    (folder / "f-not-a-workbook.xlsx").write_bytes(b"PK\x03\x04 not really a zip")
    write_csv(folder / "g-good.csv", PENALTY_HEADER, [_good(2), _good(3)])
    runner = _runner(clients)
    summaries = {}
    for summary in runner.follow(folder, interval_s=0):
        summaries[summary.file] = summary  # its name, without its folders
        if len(summaries) == 7:
            break
    runner.close()
    assert {name: (s.events_published, dict(s.rejected)) for name, s in summaries.items()} == {
        "a-link.csv": (0, {"not_regular_file": 1}),
        "b-fifo.csv": (0, {"not_regular_file": 1}),
        "c-duplicate-header.csv": (0, {"duplicate_column": 1}),
        "d-big-cell.xlsx": (1, {"oversized_field": 1}),
        "e-empty.csv": (0, {"empty_file": 1}),
        "f-not-a-workbook.xlsx": (0, {"unreadable_file": 1}),
        "g-good.csv": (2, {}),
    }
    letters = [d for d in dead_letters(clients) if d["source_file"] in summaries]
    duplicate = next(d for d in letters if d["reason_code"] == "duplicate_column")
    assert duplicate["column"] == AMOUNT
    assert not any("SECRET-FIRST-LINE" in repr(d) for d in letters)


def test_an_xlsx_that_inflates_past_the_limit_is_refused_unopened(settings, clients, tmp_path: Path) -> None:
    small = clients.with_settings(settings.with_overrides(validation={"max_file_bytes": 1_000_000}))
    path = write_xlsx(tmp_path / "bomb.xlsx", PENALTY_HEADER,
                      [penalty_row(f"B{i}", **{FACTS: "a" * 32_000 + str(i)}) for i in range(100)])
    assert path.stat().st_size < 200_000
    summary = _runner(small).run_file(path)
    assert summary.rejected == {"oversized_file": 1} and summary.events_published == 0


def test_a_forged_or_broken_cursor_never_stops_a_file(settings, clients, tmp_path: Path, caplog) -> None:
    """Attack: a cursor written onto a connector's own topic by another
    (the embedded broker has no ACLs to stop it). Another connector's signed
    cursor, an unsigned one, a signed but unreadable one and a tombstone,
    each marking a penalty export delivered, are left out: the file is
    published, `hub status` reads on, and the connector's own cursor then
    counts."""

    from connectors.offsets import cursor_key, fingerprint
    from hub.kafka.serde import Serde
    from hub.apps.status import collect
    from hub.flow.topics import cursor_topic
    from hub.trust import Role, signer

    path = write_csv(tmp_path / "forged-cursor.csv", PENALTY_HEADER, [_good(200 + i) for i in range(3)])
    key = cursor_key("samr.penalty", fingerprint(path)).encode()
    topic = cursor_topic("samr.penalty")
    forged = Serde(settings).encoder(topic, "connector_offset")(
        {
            "connector": "samr.penalty",
            "file_fingerprint": fingerprint(path),
            "file": path.name,
            "rows_done": 10**9,
            "complete": True,
            "rows_claimed": 10**9,
            "updated_at": dt.datetime.now(dt.UTC),
        }
    )
    agri, penalty = signer(settings, Role.CONNECTOR, "agri.sampling"), signer(settings, Role.CONNECTOR, "samr.penalty")
    junk = b"\x00\x00\x00\x00\x01\xff\xff\xff"
    producer = clients.producer()
    for value, headers in [
        (forged, None),
        (forged, agri.headers(topic, key, forged)),
        (junk, penalty.headers(topic, key, junk)),
        (None, None),
    ]:
        producer.produce(topic, key=key, value=value, headers=headers)
    producer.flush(30)

    runner = _runner(clients)
    summary = runner.run_file(path)
    runner.close()
    assert (summary.events_published, summary.already_delivered) == (3, 0)
    left_out = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert any("unsigned" in m for m in left_out) and any("another connector" in m for m in left_out)
    assert any("undecodable" in m or "Avro" in m or "schema" in m for m in left_out)
    assert "samr.penalty" in collect(clients).connectors  # hub status reads past them all
    again = _runner(clients)
    second = again.run_file(path)
    again.close()
    assert (second.events_published, second.already_delivered) == (0, 3)


def test_cursors_an_older_installation_kept_on_the_shared_topic_still_count(settings, clients, tmp_path: Path) -> None:
    """Issue 33 gave each connector a cursor topic of its own; an upgraded
    embedded installation's cursors on the shared hub.connector-offsets are
    read still, so its delivered files are not sent again."""

    from connectors.offsets import cursor_key, fingerprint
    from hub.flow.topics import LEGACY_CURSOR_TOPIC
    from hub.kafka.serde import Serde
    from hub.kafka.topics import TopicSpec, create_topics
    from hub.trust import Role, signer

    create_topics(clients, [TopicSpec(LEGACY_CURSOR_TOPIC, "connector_offset", partitioned=False, compacted=True)])
    path = write_csv(tmp_path / "delivered-before.csv", PENALTY_HEADER, [_good(300 + i) for i in range(2)])
    key = cursor_key("samr.penalty", fingerprint(path)).encode()
    value = Serde(settings).encoder(LEGACY_CURSOR_TOPIC, "connector_offset")(
        {
            "connector": "samr.penalty",
            "file_fingerprint": fingerprint(path),
            "file": path.name,
            "rows_done": 3,
            "complete": True,
            "rows_claimed": 3,  # row numbers: the header is row 1
            "updated_at": dt.datetime.now(dt.UTC),
        }
    )
    producer = clients.producer()
    producer.produce(
        LEGACY_CURSOR_TOPIC,
        key=key,
        value=value,
        headers=signer(settings, Role.CONNECTOR, "samr.penalty").headers(LEGACY_CURSOR_TOPIC, key, value),
    )
    producer.flush(30)

    runner = _runner(clients)
    summary = runner.run_file(path)
    runner.close()
    assert (summary.events_published, summary.already_delivered) == (0, 2)
