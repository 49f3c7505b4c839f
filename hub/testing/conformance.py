"""A connector's conformance, checked on one sample export without a broker.

`check_connector` runs the connector over the sample the way `hub connector
run` does (`connectors.runner`: the same reading, the same edge validation,
the same encoding, the same dead letters), keeps what would have been
published instead of producing it, and checks it. The checks, in the order
the report lists them (`CHECKS`; each name is a constant of this module):

- **`declaration`**: the class declares what the SDK needs: a `name` fit for
  keys, topics and event IDs (lower-case letters, digits, `.`, `_`, `-`), an
  `agency`, a `description` (`hub connector list` shows it), a layout
  (`columns`) whose headers and fields are each declared once,
  `optional_columns` among its headers, `personal_fields` among its fields,
  and an implemented `to_events`. When it is installed, its entry point bears
  its `name`: the workers take a connector's events from the key of the
  identity its entry point names.
- **`reads_sample`**: the runner reads the file to its end, with no
  file-level rejection (a header that is unknown, missing or repeated, an
  encoding or format it cannot read, a file too large). When it fails, the
  checks after it are not run, and fail.
- **`rows_accounted`**: nothing is lost. Every record of the file comes out
  of the connector's `read`, and every row read becomes events or a
  rejection with a reason code (`snake_case`) and a reason: rows in = rows
  with events + rows rejected. A row that should make no event raises
  `RowRejected`, so the run's summary and the dead-letter topic show it.
- **`no_connector_errors`**: `to_events` raises nothing but `RowRejected`
  (the runner dead-letters any other exception as `connector_error`: a bug).
- **`avro_contract`**: every event encodes against the event contract and
  reads back with it (`hub.kafka.serde.Serde`, the contracts in `schemas/`),
  and every rejection's dead letter encodes against the dead-letter contract.
- **`deterministic_ids`**: a second run of the same sample, received later
  (`RERUN_AFTER`), gives the same event IDs and keys, row by row, and rejects
  the same rows: a rerun's events are duplicates the workers drop, never new
  records. Every event ID begins with the connector's name and a colon
  (`make_event` writes them so).
- **`no_personal_data`**: no person of the sample stands in clear in an
  event or a dead letter; their encoded bytes are searched. The persons are
  found with the hub's own detectors (`hub.domain.pii`): the values of the
  connector's `personal_fields` and of its `people()`, every ID or telephone
  number in any cell or in the file's name (`numbers`, each also in its
  canonical form), and the names a role word introduces in free text
  (`named_by_role`). A name may stand in a business's name or a
  counterpart's (`Row.business_name` keeps it: a 个体工商户 is often named
  after its operator), and a business's registered identifiers are not
  personal. Keyed tokens (`[pii:…]`) are what should stand in their place.
- **`flow_accepts`**: the events, signed with the connector's key, go
  through the workers' flow on the in-memory bus (`hub.testing.bus.Bus`)
  and none is dead-lettered: none refused for its signer, agency or topic,
  none invalid, none poison. The sample must give at least one event.

A check that fails unforeseen (the connector raises where the runner does
not catch it) fails with the exception's class and place. The report never
quotes a personal value: its findings name the row, the column, the event
and the field.
"""
from __future__ import annotations

import datetime as dt
import importlib
import inspect
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.discovery import available, load
from connectors.runner import Rejection, RowOutcome, convert_row, dead_letter, refusal, source_rows
from connectors.sdk import Connector, personal_values
from connectors.tabular import BadRecord, FileFormatError, clip, normalise_header, read_rows
from hub.domain.events import Agency, Event
from hub.domain.pii import PersonalDataHasher, canonical, describe, named_by_role, numbers
from hub.flow.codec import EncodeError
from hub.flow.topics import DEADLETTER_TOPIC, events_topic
from hub.kafka.serde import Serde
from hub.settings import Settings
from hub.testing.bus import Bus
from hub.trust import Role
from hub.trust.keys import Identity, provision

__all__ = ["AVRO_CONTRACT", "CHECKS", "DECLARATION", "DETERMINISTIC_IDS", "FLOW_ACCEPTS", "NO_CONNECTOR_ERRORS",
           "NO_PERSONAL_DATA", "READS_SAMPLE", "ROWS_ACCOUNTED", "Check", "ConformanceReport", "check_connector",
           "connector_class"]

DECLARATION = "declaration"
READS_SAMPLE = "reads_sample"
ROWS_ACCOUNTED = "rows_accounted"
NO_CONNECTOR_ERRORS = "no_connector_errors"
AVRO_CONTRACT = "avro_contract"
DETERMINISTIC_IDS = "deterministic_ids"
NO_PERSONAL_DATA = "no_personal_data"
FLOW_ACCEPTS = "flow_accepts"
#: Every check's name, in the order the report lists them.
CHECKS = (DECLARATION, READS_SAMPLE, ROWS_ACCOUNTED, NO_CONNECTOR_ERRORS, AVRO_CONTRACT, DETERMINISTIC_IDS,
          NO_PERSONAL_DATA, FLOW_ACCEPTS)

#: Findings a check lists at most (it counts them all).
MAX_DETAILS = 10
#: How much later the second run of ``deterministic_ids`` receives the sample.
RERUN_AFTER = dt.timedelta(minutes=7, seconds=3)

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_REASON_CODE = re.compile(r"[a-z][a-z0-9_]*")
_TOKEN_BYTES = re.compile(rb"\[?pii:[0-9a-f]{24}\]?")
_TOKEN_TEXT = re.compile(r"\[?pii:[0-9a-f]{24}\]?")
_GAP = "\x00"  # what a removed token or exempt value leaves: no needle spans it


@dataclass(frozen=True)
class Check:
    """One check's outcome: its name (one of ``CHECKS``), whether it passed,
    why, in a sentence, and its findings (at most ``MAX_DETAILS``), each
    naming a row, a column, an event or a field, never a personal value."""

    name: str
    passed: bool
    reason: str
    details: tuple[str, ...] = ()

    def __str__(self) -> str:
        lines = [f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.reason}"]
        lines += [f"      - {detail}" for detail in self.details]
        return "\n".join(lines)


@dataclass(frozen=True)
class ConformanceReport:
    """What ``check_connector`` found: the connector's name, the sample's
    name (as the hub shows it: ID and telephone numbers as tokens), what the
    connector made of the sample (``rows`` read, ``events``, ``rejected`` rows
    by reason code) and every check, in the order of ``CHECKS``.

    ``str(report)`` is the readable form ``hub connector check`` prints."""

    connector: str
    sample: str
    checks: list[Check]
    rows: int = 0
    events: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        """The checks that failed, in order."""
        return [check for check in self.checks if not check.passed]

    def check(self, name: str) -> Check:
        """The check called ``name`` (``KeyError`` if there is none)."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def __str__(self) -> str:
        rejected = ", ".join(f"{code}={n}" for code, n in sorted(self.rejected.items()))
        head = (f"connector {self.connector} on {self.sample}: {_n(self.rows, 'row')} read, "
                f"{_n(self.events, 'event')}, {_n(sum(self.rejected.values()), 'row')} rejected"
                + (f" ({rejected})" if rejected else ""))
        failed = self.failed
        verdict = (f"conformant: all {len(self.checks)} checks passed" if not failed else
                   f"NOT conformant: {len(failed)} of {len(self.checks)} checks failed "
                   f"({', '.join(c.name for c in failed)})")
        return "\n".join([head, *(str(check) for check in self.checks), verdict])


def check_connector(connector: type[Connector] | str, sample: Path, *,
                    settings: Settings | None = None) -> ConformanceReport:
    """Run ``connector`` over the export ``sample`` without a broker and check
    what it makes of it (the checks are listed in this module's description).

    ``connector``: the class itself (installed or not yet), an installed
    connector's entry-point name (``"samr.penalty"``), or ``"module:Class"``.
    ``settings``: the validation limits, the personal-data key and the
    contracts to check with (default: ``Settings()``); its keys, trust store
    and schema registry are never used: the check signs with demo keys of
    its own in a temporary directory and reads the contracts from
    ``schema_dir``.

    Raises ``connectors.discovery.UnknownConnector`` for a name no entry
    point bears; every finding about the connector is in the report."""
    cls = connector_class(connector) if isinstance(connector, str) else connector
    base = settings or Settings()
    with tempfile.TemporaryDirectory(prefix="hub-conformance-") as keys:
        own = base.with_overrides(keys_dir=keys, trust_file="", key_file="", provision_keys=True, allow_drills=True,
                                  schema_registry_url="")
        return _Checker(cls, Path(sample), own).report()


def connector_class(connector: str) -> type[Connector]:
    """The connector class ``connector`` names: an installed connector's
    entry-point name (``UnknownConnector`` if none bears it), or
    ``"module:Class"`` for one not installed yet (``ImportError``,
    ``AttributeError``, or ``TypeError`` when it is no ``Connector``)."""
    if ":" not in connector:
        return load(connector)
    module, _, name = connector.partition(":")
    found = getattr(importlib.import_module(module), name)
    if not (isinstance(found, type) and issubclass(found, Connector)):
        raise TypeError(f"{connector} is not a Connector subclass")
    return found


@dataclass
class _Run:
    """One run over the sample: what the runner would have published."""

    connector: Connector
    shown: str
    outcomes: list[RowOutcome]
    file_error: FileFormatError | None


@dataclass(frozen=True)
class _Needle:
    """A person's value from the sample, which must not stand in clear."""

    text: str
    name_like: bool  # a name, which a business's name may hold, rather than a number
    where: str  # "row 3, column 诉求人联系电话"
    what: str  # "an ID or telephone number"


@dataclass(frozen=True)
class _Output:
    """A record the run would have published: an event or a dead letter."""

    label: str  # "event samr.penalty:…", "the dead letter of row 4"
    record: Mapping[str, Any]
    data: bytes  # the encoded record; its JSON-ish text when it does not encode
    names_allowed: tuple[str, ...] = ()  # a business's and a counterpart's names
    identifiers: tuple[str, ...] = ()  # a business's registered identifiers


class _Checker:
    def __init__(self, cls: type[Connector], sample: Path, settings: Settings) -> None:
        self.cls, self.sample, self.settings = cls, sample, settings
        self.limits = settings.validation
        self.hasher = PersonalDataHasher(settings.pii_key)
        self.serde = Serde(settings)
        self.received = dt.datetime.now(dt.UTC).replace(microsecond=0)

    # -- the runs -------------------------------------------------------------
    def _run(self, received_at: dt.datetime) -> _Run:
        """The sample as ``ConnectorRunner.run_file`` reads it, with a new
        instance of the connector: each row's outcome, and the file's
        rejection if it has one (rows read before it stand)."""
        connector = self.cls(PersonalDataHasher(self.settings.pii_key), self.limits)
        shown = connector.shown_name(self.sample)
        encode = self.serde.encoder(events_topic(Agency(connector.agency)), "event")
        run = _Run(connector, shown, [], refusal(self.sample, shown, self.limits))
        if run.file_error is not None:
            return run
        try:
            for row in source_rows(connector, self.sample, shown):
                run.outcomes.append(convert_row(connector, row, received_at, self.limits, encode))
        except FileFormatError as exc:
            run.file_error = exc
        return run

    def report(self) -> ConformanceReport:
        checks = [_guarded(DECLARATION, self._declaration)]
        try:
            run = self._run(self.received)
        except Exception as exc:  # the class cannot be instantiated, or its shown_name fails
            reason = f"not run: the connector could not be set up ({describe(exc)})"
            return ConformanceReport(self.cls_name, self.sample.name,
                                     checks + [Check(name, False, reason) for name in CHECKS[1:]])
        checks.append(_guarded(READS_SAMPLE, lambda: self._reads_sample(run)))
        if run.file_error is not None:
            checks += [Check(name, False, "not run: the runner rejects the sample as a whole")
                       for name in CHECKS[2:]]
        else:
            checks += [_guarded(ROWS_ACCOUNTED, lambda: self._rows_accounted(run)),
                       _guarded(NO_CONNECTOR_ERRORS, lambda: self._no_connector_errors(run)),
                       _guarded(AVRO_CONTRACT, lambda: self._avro_contract(run)),
                       _guarded(DETERMINISTIC_IDS, lambda: self._deterministic_ids(run)),
                       _guarded(NO_PERSONAL_DATA, lambda: self._no_personal_data(run)),
                       _guarded(FLOW_ACCEPTS, lambda: self._flow_accepts(run))]
        rejected = Counter(o.rejection.reason_code for o in run.outcomes if o.rejection is not None)
        if run.file_error is not None:
            rejected[run.file_error.reason_code] += 1
        return ConformanceReport(run.connector.name, run.shown, checks, rows=len(run.outcomes),
                                 events=sum(len(o.encoded) for o in run.outcomes), rejected=dict(rejected))

    @property
    def cls_name(self) -> str:
        name = getattr(self.cls, "name", None)
        return name if isinstance(name, str) and name else self.cls.__qualname__

    # -- declaration ----------------------------------------------------------
    def _declaration(self) -> Check:
        cls, problems = self.cls, []
        if not (isinstance(cls, type) and issubclass(cls, Connector)):
            return Check(DECLARATION, False, f"{cls!r} is not a subclass of connectors.sdk.Connector")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            problems.append("name: a non-empty string of lower-case letters, digits, '.', '_' or '-' "
                            "(it names the connector's key, its events' IDs and its entry point)")
        if not isinstance(getattr(cls, "agency", None), Agency):
            problems.append(f"agency: one of hub.domain.events.Agency ({', '.join(a.name for a in Agency)})")
        if not isinstance(getattr(cls, "description", None), str) or not cls.description.strip():
            problems.append("description: a line for `hub connector list`")
        problems += _layout_problems(cls)
        if inspect.isabstract(cls):
            missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ()))) or "to_events"
            problems.append(f"not implemented: {missing}")
        problems += self._entry_point_problems(name)
        if problems:
            return Check(DECLARATION, False, f"{len(problems)} declaration(s) missing or wrong",
                         tuple(problems[:MAX_DETAILS]))
        return Check(DECLARATION, True, f"{cls.__qualname__} declares name {name!r}, agency {cls.agency.value}, a "
                                        f"description and {len(cls.columns)} columns "
                                        f"({len(cls.optional_columns)} optional, "
                                        f"{len(cls.personal_fields)} personal fields)")

    def _entry_point_problems(self, name: object) -> list[str]:
        problems = []
        for entry, installed in available().items():
            if installed is self.cls and entry != name:
                problems.append(f"entry point {entry!r} names a connector whose name is {name!r}: the workers "
                                "would refuse its events, signed by the key of the entry point's name")
        return problems

    # -- reading and accounting -----------------------------------------------
    def _reads_sample(self, run: _Run) -> Check:
        error = run.file_error
        if error is None:
            return Check(READS_SAMPLE, True, f"the runner reads {run.shown} to its end: {_n(len(run.outcomes), 'row')}")
        where = (f" at row {error.row}" if error.row else "") + (f", column {error.column!r}" if error.column else "")
        return Check(READS_SAMPLE, False, f"the runner rejects the file as a whole{where}: "
                                          f"{error.reason_code}: {error.detail}")

    def _records(self, shown: str) -> list[int]:
        """The record numbers of the file's rows with something in them,
        read with the runner's own reader (``connectors.tabular``), not the
        connector's: the header is 1."""
        rows = read_rows(self.sample, self.limits.max_file_bytes, shown)
        next(rows, None)
        return [number for number, cells in enumerate(rows, start=2) if isinstance(cells, BadRecord) or any(cells)]

    def _rows_accounted(self, run: _Run) -> Check:
        in_file = self._records(run.shown)
        read = [o.row.number for o in run.outcomes]
        problems = []
        unread = sorted(set(in_file) - set(read))
        if unread:
            problems.append(f"{len(unread)} record(s) of the file never came out of the connector's read(): "
                            f"row(s) {_numbers(unread)}")
        twice = sorted(n for n, count in Counter(read).items() if count > 1)
        if twice:
            problems.append(f"row(s) {_numbers(twice)} read more than once")
        lost = [o.row.number for o in run.outcomes if o.rejection is None and not o.events]
        if lost:
            problems.append(f"{len(lost)} row(s) made no event and no rejection: row(s) {_numbers(lost)} "
                            "(a row that makes no event raises RowRejected with a reason code)")
        for o in run.outcomes:
            if o.rejection is not None and not (_REASON_CODE.fullmatch(o.rejection.reason_code)
                                                and o.rejection.reason.strip()):
                problems.append(f"row {o.row.number}: rejected without a reason code (snake_case) and a reason "
                                f"(code {o.rejection.reason_code!r})")
        with_events = sum(1 for o in run.outcomes if o.events)
        rejected = sum(1 for o in run.outcomes if o.rejection is not None)
        tally = f"{_n(len(in_file), 'row')} in the file, {with_events} with events + {rejected} rejected"
        if problems:
            return Check(ROWS_ACCOUNTED, False, f"rows lost or unexplained: {tally}", tuple(problems[:MAX_DETAILS]))
        return Check(ROWS_ACCOUNTED, True, f"{tally}, each rejection with a reason code")

    def _no_connector_errors(self, run: _Run) -> Check:
        crashed = [o for o in run.outcomes if o.rejection is not None and o.rejection.reason_code == "connector_error"
                   and not isinstance(o.rejection.error, EncodeError)]
        if not crashed:
            return Check(NO_CONNECTOR_ERRORS, True, "to_events raised nothing but RowRejected")
        details = tuple(f"row {o.row.number}: {_failure(o.rejection)}" for o in crashed[:MAX_DETAILS])
        return Check(NO_CONNECTOR_ERRORS, False, f"to_events failed on {len(crashed)} row(s); the runner "
                                                 "dead-letters each as connector_error", details)

    # -- contracts --------------------------------------------------------------
    def _avro_contract(self, run: _Run) -> Check:
        problems = [f"row {o.row.number}: {o.rejection.error}" for o in run.outcomes
                    if o.rejection is not None and isinstance(o.rejection.error, EncodeError)]
        decode = self.serde.decoder("event")
        events = 0
        for o in run.outcomes:
            for event, (_, value) in zip(o.events, o.encoded, strict=False):
                events += 1
                try:
                    decode(value)
                except Exception as exc:
                    problems.append(f"row {o.row.number}: event {self._shown(event)} does not read back as the "
                                    f"event contract ({type(exc).__name__})")
        letters = 0
        for label, letter in self._dead_letters(run):
            letters += 1
            try:
                self.serde.encoder(DEADLETTER_TOPIC, "deadletter")(letter)
            except EncodeError as exc:
                problems.append(f"{label}: {exc}")
        version = self.serde.local.latest("event").version
        if problems:
            return Check(AVRO_CONTRACT, False, f"{len(problems)} record(s) do not fit their contract",
                         tuple(problems[:MAX_DETAILS]))
        return Check(AVRO_CONTRACT, True, f"every event ({events}) fits the event contract (v{version}) and reads "
                                          f"back; every dead letter ({letters}) fits the dead-letter contract")

    def _dead_letters(self, run: _Run) -> Iterator[tuple[str, dict[str, object]]]:
        """Each rejection's dead letter, as the runner writes it."""
        name = run.connector.name
        for o in run.outcomes:
            if o.rejection is not None:
                yield (f"the dead letter of row {o.row.number}",
                       dead_letter(name, o.rejection.reason_code, o.rejection.reason,
                                   run.connector.redacted_original(o.row), o.row.file, o.row.number,
                                   o.rejection.column))
        if run.file_error is not None:
            error = run.file_error
            yield ("the file's dead letter",
                   dead_letter(name, error.reason_code, error.detail, {}, run.shown, error.row, error.column))

    def _deterministic_ids(self, first: _Run) -> Check:
        second = self._run(self.received + RERUN_AFTER)
        problems = []
        prefix = f"{first.connector.name}:"
        for o in first.outcomes:
            for event in o.events:
                event_id = event.get("event_id")
                if not isinstance(event_id, str) or not event_id.startswith(prefix) or event_id == prefix:
                    problems.append(f"row {o.row.number}: event ID {self._shown(event)} does not begin with "
                                    f"{prefix!r} and name the record")
        again = {o.row.number: o for o in second.outcomes}
        for o in first.outcomes:
            other = again.get(o.row.number)
            if other is None:
                problems.append(f"row {o.row.number}: not read by the second run")
            elif _ids(o) != _ids(other):
                problems.append(f"row {o.row.number}: event IDs {self._ids_shown(o)} at first, "
                                f"{self._ids_shown(other)} on the second run")
            elif [k for k, _ in o.encoded] != [k for k, _ in other.encoded]:
                problems.append(f"row {o.row.number}: the events' keys (their businesses) differ between two runs")
            elif _code(o) != _code(other):
                problems.append(f"row {o.row.number}: rejected as {_code(o)} at first, {_code(other)} on the "
                                "second run")
        if len(second.outcomes) != len(first.outcomes):
            problems.append(f"{len(first.outcomes)} rows read at first, {len(second.outcomes)} on the second run")
        if problems:
            return Check(DETERMINISTIC_IDS, False, "a rerun of the sample would not give the same events",
                         tuple(problems[:MAX_DETAILS]))
        ids = sum(len(o.events) for o in first.outcomes)
        return Check(DETERMINISTIC_IDS, True, f"a second run, {int(RERUN_AFTER.total_seconds())} s later, gives "
                                              f"the same event IDs ({ids}) and keys and the same rejections")

    # -- personal data --------------------------------------------------------
    def _no_personal_data(self, run: _Run) -> Check:
        needles = self._needles(run)
        outputs = list(self._outputs(run))
        hits = []
        for output in outputs:
            for needle in needles:
                data = _clean_bytes(output.data, output.identifiers +
                                    (output.names_allowed if needle.name_like else ()))
                if needle.text.encode("utf-8") in data:
                    at = _where(output.record, needle, output)
                    hits.append(f"{needle.where} ({needle.what}): in clear in {output.label}{at}")
        if hits:
            return Check(NO_PERSONAL_DATA, False, f"personal values of the sample stand in clear "
                                                  f"({_n(len(hits), 'finding')})",
                         tuple(hits[:MAX_DETAILS]))
        return Check(NO_PERSONAL_DATA, True, f"none of the sample's personal values ({len(needles)}) stands in "
                                             f"clear in its events and dead letters ({len(outputs)})")

    def _needles(self, run: _Run) -> list[_Needle]:
        found: dict[str, _Needle] = {}

        def add(text: str, where: str, what: str) -> None:
            text = text.strip()
            if len(text) >= 2 and not _TOKEN_TEXT.fullmatch(text) and text not in found:
                found[text] = _Needle(text, not any(c.isdigit() for c in text), where, what)

        def add_numbers(text: str, where: str) -> None:
            for a, b in numbers(text):
                for form in (text[a:b], canonical(text[a:b])):
                    add(form, where, "an ID or telephone number")

        add_numbers(self.sample.name, "the file's name")
        rows = read_rows(self.sample, self.limits.max_file_bytes, run.shown)
        header = next(rows, None)
        if isinstance(header, list):
            personal = {normalise_header(h) for h, f in self.cls.columns.items() if f in self.cls.personal_fields}
            for number, cells in enumerate(rows, start=2):
                if isinstance(cells, BadRecord):
                    continue
                # a row's personal columns first: a value found there is named as theirs
                for column, cell in sorted(zip(header, cells, strict=False),
                                           key=lambda c: normalise_header(c[0]) not in personal):
                    where = f"row {number}, column {clip(column)}"
                    if normalise_header(column) in personal:
                        for value in personal_values(cell):
                            add(value, where, "a value of a personal column")
                    add_numbers(cell, where)
                    for name in named_by_role(cell):
                        add(name, where, "a name a role word introduces")
        for o in run.outcomes:
            for person in run.connector.people(o.row):
                add(person, f"row {o.row.number}", "a person the connector's people() names")
        return list(found.values())

    def _outputs(self, run: _Run) -> Iterator[_Output]:
        """Every event and dead letter, encoded as they would be published."""
        for o in run.outcomes:
            for event, (_, value) in zip(o.events, o.encoded, strict=False):
                business = event.get("business") or {}
                detail = event.get("detail")
                detail_fields = detail[1] if isinstance(detail, tuple) and len(detail) == 2 else {}
                names = (business.get("name"), detail_fields.get("counterpart_name"))
                identifiers = tuple(business.get(k) for k in ("business_id", "licence_number", "registration_number"))
                yield _Output(f"event {self._shown(event)}", event, value,
                              tuple(n for n in names if isinstance(n, str) and n),
                              tuple(i for i in identifiers if isinstance(i, str) and i))
        encode = self.serde.encoder(DEADLETTER_TOPIC, "deadletter")
        for label, letter in self._dead_letters(run):
            try:
                data = encode(letter)
            except EncodeError:  # avro_contract tells; search its text all the same
                data = repr(letter).encode("utf-8")
            yield _Output(label, letter, data)

    # -- the workers' flow ----------------------------------------------------
    def _flow_accepts(self, run: _Run) -> Check:
        events = [(o.row.number, event, key, value) for o in run.outcomes
                  for event, (key, value) in zip(o.events, o.encoded, strict=False)]
        if not events:
            return Check(FLOW_ACCEPTS, False, "the sample gives no event to deliver: a sample holds rows the "
                                              "connector accepts")
        connector = run.connector
        # A connector not installed yet has no demo key: it gets one in the check's own trust store,
        # before the bus's workers read the store.
        identity = Identity(Role.CONNECTOR, connector.name, Agency(connector.agency).value)
        provision(self.settings.keys_path, self.settings.trust_path, [identity], self.received)
        at = self.received.timestamp()
        bus = Bus(self.settings, clock=lambda: at)
        by = bus.signer(Role.CONNECTOR, connector.name)
        topic = events_topic(Agency(connector.agency))  # the runner's topic: its connector's agency's
        sent: dict[tuple[str, int, int], str] = {}
        for number, event, key, value in events:
            bus.send(topic, key.encode(), value, by=by)
            partition = bus.store.partition_of(key.encode())
            sent[topic, partition, bus.offsets[topic, partition]] = f"row {number}, event {self._shown(event)}"
        try:
            bus.run()
        except Exception as exc:
            return Check(FLOW_ACCEPTS, False, f"the flow failed on the events ({describe(exc)})")
        if bus.dead_letters:
            details = tuple(f"{_which(letter, sent)}: {letter['reason_code']}: {letter['reason']}"
                            for letter in bus.dead_letters[:MAX_DETAILS])
            return Check(FLOW_ACCEPTS, False, f"the workers' flow dead-lettered {len(bus.dead_letters)} of "
                                              f"{len(events)} events", details)
        return Check(FLOW_ACCEPTS, True, f"the workers' flow took every event ({len(events)}), signed by "
                                         f"{connector.name}'s key, without a dead letter "
                                         f"({len(bus.delivered)} records delivered in all)")

    # -- showing ----------------------------------------------------------------
    def _shown(self, event: Event) -> str:
        """An event's ID for the report: a number in it that looks like a
        person's (a connector that put one there) shows as its token."""
        return self.hasher.scrub(str(event.get("event_id"))) or "''"

    def _ids_shown(self, outcome: RowOutcome) -> str:
        return "[" + ", ".join(self._shown(e) for e in outcome.events) + "]"


def _layout_problems(cls: type[Connector]) -> list[str]:
    columns = getattr(cls, "columns", None)
    if not isinstance(columns, Mapping) or not columns:
        return ["columns: the layout, a mapping of each header of the export to a canonical field"]
    problems = []
    if not all(isinstance(h, str) and normalise_header(h) and isinstance(f, str) and f for h, f in columns.items()):
        problems.append("columns: every header and field a non-empty string")
        return problems
    headers = Counter(normalise_header(h) for h in columns)
    problems += [f"columns: header {h!r} declared {n} times (as the reader normalises headers)"
                 for h, n in headers.items() if n > 1]
    fields = Counter(columns.values())
    problems += [f"columns: field {f!r} read from {n} headers" for f, n in fields.items() if n > 1]
    optional: frozenset[str] = getattr(cls, "optional_columns", frozenset())
    problems += [f"optional_columns: {h!r} is not a header of columns" for h in sorted(set(optional) - set(columns))]
    personal: frozenset[str] = getattr(cls, "personal_fields", frozenset())
    problems += [f"personal_fields: {f!r} is not a field of columns"
                 for f in sorted(set(personal) - set(columns.values()))]
    return problems


def _guarded(name: str, run: Callable[[], Check]) -> Check:
    """A check that fails unforeseen fails itself, not the report."""
    try:
        return run()
    except Exception as exc:
        return Check(name, False, f"the check could not run: the connector or the sample failed it ({describe(exc)})")


def _failure(rejection: Rejection | None) -> str:
    assert rejection is not None
    return rejection.reason + (f" ({describe(rejection.error)})" if rejection.error is not None else "")


def _ids(outcome: RowOutcome) -> list[Any]:
    return [e.get("event_id") for e in outcome.events]


def _code(outcome: RowOutcome) -> str | None:
    return outcome.rejection.reason_code if outcome.rejection is not None else None


def _n(count: int, noun: str, plural: str | None = None) -> str:
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def _numbers(values: list[int]) -> str:
    shown = ", ".join(map(str, values[:MAX_DETAILS]))
    return shown + (f" and {len(values) - MAX_DETAILS} more" if len(values) > MAX_DETAILS else "")


def _clean_bytes(data: bytes, exempt: tuple[str, ...]) -> bytes:
    """``data`` without keyed tokens and without the values it may hold."""
    data = _TOKEN_BYTES.sub(_GAP.encode(), data)
    for value in sorted(exempt, key=len, reverse=True):
        data = data.replace(_TOKEN_BYTES.sub(_GAP.encode(), value.encode("utf-8")), _GAP.encode())
    return data


def _clean_text(text: str, exempt: tuple[str, ...]) -> str:
    text = _TOKEN_TEXT.sub(_GAP, text)
    for value in sorted(exempt, key=len, reverse=True):
        text = text.replace(_TOKEN_TEXT.sub(_GAP, value), _GAP)
    return text


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a record, with where it is (``detail.case_name``)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            if isinstance(key, str) and path.endswith("original"):
                yield from _strings(inner, f"{path}[{clip(key)}]")
            else:
                yield from _strings(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) and "." in value[0]:
        yield from _strings(value[1], path)  # an Avro union's (type name, record)
    elif isinstance(value, (list, tuple)):
        for i, inner in enumerate(value):
            yield from _strings(inner, f"{path}[{i}]")


def _where(record: Mapping[str, Any], needle: _Needle, output: _Output) -> str:
    exempt = output.identifiers + (output.names_allowed if needle.name_like else ())
    fields = [path for path, text in _strings(record) if needle.text in _clean_text(text, exempt)]
    return f" (field {', '.join(fields[:3])})" if fields else " (its encoded bytes)"


def _which(letter: Mapping[str, Any], sent: Mapping[tuple[str, int, int], str]) -> str:
    original = letter.get("original") or {}
    try:
        return sent[str(original.get("topic")), int(original.get("partition", -1)), int(original.get("offset", -1))]
    except (KeyError, TypeError, ValueError):
        return "a record the events led to"
