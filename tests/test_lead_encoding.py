"""A lead's copies are written a run of fields at a time (``hub.kafka.serde.SharedRuns``):
the bytes must be fastavro's for the whole record, for every copy, redacted
or not, and whatever came before it."""
from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import fastavro
import pytest

from hub.domain.teams import COPY_FIELDS, Team, redact
from hub.flow import Send
from hub.flow.codec import EncodeError
from hub.flow.topics import LEADS_TOPIC
from hub.kafka.serde import SharedRuns
from hub.devtools.samples import write_scenario
from hub.testing.bus import Bus

NOW = dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC)


def _lead_sends(tmp_path: Path) -> tuple[Bus, list[Send]]:
    """Every lead record the demo scenario sends, operators' and teams' copies, in order."""
    bus = Bus(clock=lambda: NOW.timestamp())
    for connector, path in write_scenario(tmp_path).items():
        bus.publish_file(connector, path)
    sends: list[Send] = []
    while any(bus.queues.values()):
        records = [queue.popleft() for queue in bus.queues.values() if queue]
        effects = bus.process(records).effects
        sends += effects.leads
    return bus, sends


def test_the_runs_joined_are_the_whole_records_bytes(tmp_path: Path) -> None:
    bus, sends = _lead_sends(tmp_path)
    runs = SharedRuns(bus.serde.local.latest("lead").raw, COPY_FIELDS)
    whole = {topic: bus.serde.encoder(topic, "lead") for topic in {s.topic for s in sends}}
    redacted = [s for s in sends if s.value["withheld"]]
    assert len({s.topic for s in sends}) > 3 and redacted and len(redacted) < len(sends) - len(
        [s for s in sends if s.topic == LEADS_TOPIC])  # copies of both kinds
    reference = bus.serde.local.latest("lead").parsed
    for send in sends:
        assert bus.serde.header(send.topic, "lead") + runs.body(send.value) == whole[send.topic](send.value)
        written = io.BytesIO()
        fastavro.schemaless_writer(written, reference, send.value)
        assert runs.body(send.value) == written.getvalue()  # the codec's bytes are fastavro's


def test_a_record_equal_but_not_the_same_is_written_anew(tmp_path: Path) -> None:
    """Sharing goes by identity of the values: an edited copy of the base
    (a new evidence list) never reuses the base's bytes."""
    bus, sends = _lead_sends(tmp_path)
    runs = SharedRuns(bus.serde.local.latest("lead").raw, COPY_FIELDS)
    whole = bus.serde.encoder(LEADS_TOPIC, "lead")
    base = next(s.value for s in sends if s.topic == LEADS_TOPIC and s.value["evidence"][0]["finding"])
    runs.body(base)
    edited = {**base, "evidence": [{**e, "finding": "另一个"} for e in base["evidence"]]}
    assert runs.body(edited) == whole(edited)[5:] != whole(base)[5:]


def test_a_copy_that_reads_everything_differs_only_in_the_copy_fields(tmp_path: Path) -> None:
    """What ``redact`` leaves shared is what ``SharedRuns`` writes once."""
    bus, sends = _lead_sends(tmp_path)
    everything = Team(name="everything", agency="SAMR", cleared_agencies=("POLICE", "AGRI"))
    for lead in (s.value for s in sends if s.topic == LEADS_TOPIC):
        copy = redact(lead, everything, bus.teams)
        assert {k for k in lead if copy[k] is not lead[k]} <= COPY_FIELDS


def test_a_record_that_does_not_fit_fails_every_time_and_never_quotes_its_values(tmp_path: Path) -> None:
    """A lead that cannot be written fails again when the step is retried:
    its shared runs were never written, so they are not the previous lead's
    (which a retry used to send under this lead's copy fields). The error
    names the field, not the value: the codec's own message quotes it."""
    bus, sends = _lead_sends(tmp_path)
    runs = SharedRuns(bus.serde.local.latest("lead").raw, COPY_FIELDS)
    whole = bus.serde.encoder(LEADS_TOPIC, "lead")
    leads = [s.value for s in sends if s.topic == LEADS_TOPIC]
    runs.body(leads[0])
    secret = "张三 110101199003071234"
    unfit = {**leads[1], "evidence": [{**leads[1]["evidence"][0], "reported_after_days": secret}]}
    for _ in range(2):
        with pytest.raises(EncodeError, match=r"a Lead record does not fit its schema at evidence\.0\.") as refused:
            runs.body(unfit)
        assert "张三" not in str(refused.value) and "110101199003071234" not in repr(refused.value)
    with pytest.raises(EncodeError) as refused:
        whole(unfit)
    assert "张三" not in str(refused.value) and refused.value.__suppress_context__
    assert runs.body(leads[1]) == whole(leads[1])[5:]  # and the next record is written whole
