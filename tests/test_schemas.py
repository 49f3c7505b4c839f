import io
import json
import random
import resource
import shutil
import struct
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.utils import generate_many

from hub.kafka.schemas import LocalRegistry, check
from hub.kafka.serde import DecodeError, Serde
from hub.settings import REPO_ROOT, load_settings

SCHEMAS = REPO_ROOT / "schemas"


def test_shipped_contracts_pass() -> None:
    assert check(SCHEMAS) == []


def _with_next(tmp_path: Path, mutate, contract: str = "lead") -> tuple[Path, str]:
    """A copy of schemas/ with a next version of ``contract``: the latest one, mutated."""
    from hub.kafka.schemas import SchemaVersion

    folder = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, folder)
    latest = LocalRegistry(folder).latest(contract)
    raw = json.loads(latest.file.read_text())
    mutate(raw)
    version = latest.version + 1
    name = f"{contract}.v{version}.avsc"
    (folder / name).write_text(json.dumps(raw))
    registry = json.loads((folder / "registry.json").read_text())
    new = SchemaVersion(contract, version, 99, folder / name, "")
    registry["contracts"][contract].append({"version": version, "id": 99, "file": name,
                                            "fingerprint": new.current_fingerprint()})
    (folder / "registry.json").write_text(json.dumps(registry))
    return folder, f"{contract} v{version}"


def test_new_optional_field_is_backward_compatible(tmp_path: Path) -> None:
    folder, _ = _with_next(tmp_path, lambda s: s["fields"].append(
        {"name": "extra_note", "type": ["null", "string"], "default": None}))
    assert check(folder) == []


def test_new_required_field_is_not(tmp_path: Path) -> None:
    folder, label = _with_next(tmp_path, lambda s: s["fields"].append({"name": "extra_note", "type": "string"}))
    [problem] = check(folder)
    assert label in problem and "not backward compatible" in problem


def test_removed_enum_symbol_is_not(tmp_path: Path) -> None:
    def drop_low(s: dict) -> None:
        severity = next(f for f in s["fields"] if f["name"] == "severity")
        severity["type"]["symbols"].remove("LOW")
    folder, _ = _with_next(tmp_path, drop_low)
    assert any("not backward compatible" in p for p in check(folder))


def test_editing_a_released_version_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, folder)
    raw = json.loads((folder / "deadletter.v1.avsc").read_text())
    raw["fields"].append({"name": "extra", "type": ["null", "string"], "default": None})
    (folder / "deadletter.v1.avsc").write_text(json.dumps(raw))
    assert any("released schema was edited" in p for p in check(folder))


def test_unparseable_schema_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, folder)
    (folder / "lead.v1.avsc").write_text(
        '{"type": "record", "name": "Lead", "fields": [{"name": "x", "type": "nope"}]}'
    )
    assert any("does not parse" in p for p in check(folder))


def test_confluent_wire_format_round_trip() -> None:
    serde = Serde(load_settings(environ={}))
    encode = serde.encoder("hub.deadletter", "deadletter")
    import datetime as dt

    record = {
        "stage": "samr.penalty",
        "source_file": "a.csv",
        "source_row": 3,
        "column": None,
        "reason_code": "bad_date",
        "reason": "x",
        "original": {"列": "值"},
        "failed_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    }
    data = encode(record)
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == LocalRegistry(SCHEMAS).latest("deadletter").schema_id
    assert serde.decoder("deadletter")(data) == record
    with pytest.raises(DecodeError, match="magic byte"):
        serde.decoder("deadletter")(b"{}")
    with pytest.raises(DecodeError, match="unknown schema id"):
        serde.decoder("deadletter")(b"\x00\x00\x00\x03\xe7" + data[5:])


def test_a_plain_install_carries_the_contracts(tmp_path: Path) -> None:
    """Not editable: the wheel alone, away from the checkout, still finds
    schemas/ (as hub/contracts) and encodes and decodes with it."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    # What the Dockerfile copies into its build, and nothing else: a build/
    # left in the checkout by an earlier build would lend the wheel files it lacks.
    source = tmp_path / "source"
    source.mkdir()
    copied = [
        name
        for line in (root / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for name in line.split()[1:-1]
    ]
    assert {"pyproject.toml", "hub", "connectors", "schemas"} <= set(copied)
    for name in copied:
        if (root / name).is_dir():
            shutil.copytree(root / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(root / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "wheel"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "wheel").glob("*.whl")
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    # Every module imports from the install alone: the checkout's editable
    # install (a finder on sys.meta_path) must not lend it what it lacks.
    probe = (
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in "
        "getattr(f, '__module__', '')]; "
        "import hub, hub.settings as s, importlib, pkgutil; from hub.kafka.serde import Serde; st = s.Settings(); "
        "[importlib.import_module(m.name) for m in pkgutil.walk_packages(hub.__path__, 'hub.') "
        "if not m.name.endswith('__main__')]; "
        "e = Serde(st).encoder('hub.feedback', 'feedback'); "
        "from hub.edge.feedback import tick; print(hub.__file__, st.schema_dir, len(e(tick(0))))"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    module, schema_dir, size = run.stdout.split()
    assert module.startswith(str(target)) and schema_dir == str(target / "hub" / "contracts") and int(size) > 5
    packages = {p.parent.relative_to(root) for top in ("hub", "connectors") for p in (root / top).rglob("__init__.py")}
    missing = [str(p) for p in sorted(packages) if not (target / p / "__init__.py").exists()]
    assert packages and not missing, f"left out of the wheel: {missing}"


@pytest.mark.parametrize("contract", sorted(LocalRegistry(SCHEMAS).versions))
def test_the_codec_writes_and_reads_as_fastavro_does(contract: str) -> None:
    """``hub.kafka.serde`` writes and reads with cavro: for records of every version
    of every contract (generated, unions and logical types included), the
    bytes are fastavro's, and a body any version wrote reads as the latest
    exactly as fastavro's schema resolution reads it."""
    serde = Serde(load_settings())
    latest = serde.local.latest(contract)
    decode = serde.decoder(contract)
    for version in serde.local.versions[contract]:
        written_by = serde._writer_schema(version.schema_id)
        for generated in generate_many(version.parsed, 40):
            body = io.BytesIO()
            fastavro.schemaless_writer(body, version.parsed, generated)
            body.seek(0)
            # as the hub holds it: dates, times and decimals as objects, a record in a union named
            record = fastavro.schemaless_reader(body, version.parsed, None, return_record_name=True)
            assert written_by.binary_encode(_within_precision(record)) == _fastavro_bytes(
                version.parsed, _within_precision(record)
            ), (contract, version.version)
            body.seek(0)
            expected = fastavro.schemaless_reader(body, version.parsed, latest.parsed, return_record_name=True)
            framed = struct.pack(">bI", 0, version.schema_id) + body.getvalue()
            # repr, not ==: a float for a Decimal, or a list for a tuple, would compare equal
            assert repr(decode(framed)) == repr(expected), (contract, version.version)


def _fastavro_bytes(schema: object, record: object) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, record)
    return body.getvalue()


def _within_precision(value: Any) -> Any:
    """Generated decimals (scale 2) cut to 12 digits: fastavro writes a
    decimal past the schema's precision of 18 when its own digits are
    fewer, cavro refuses it (the worker's amounts stop far below either)."""
    if isinstance(value, Decimal):
        return Decimal(int(value.scaleb(2)) % 10**12).scaleb(-2)
    if isinstance(value, dict):
        return {k: _within_precision(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_within_precision(v) for v in value)
    return value


@pytest.fixture(scope="module")
def genuine_bodies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """One genuine body of each contract the worker reads or writes most: the demo's."""
    from hub.edge.feedback import tick
    from hub.devtools.samples import write_scenario
    from hub.testing.bus import Bus

    bus = Bus()
    bodies = {"feedback": bus.serde.encoder("hub.feedback", "feedback")(tick(0))}
    for connector, path in write_scenario(tmp_path_factory.mktemp("scenario")).items():
        bus.publish_file(connector, path)
    bodies["event"] = next(r.value for q in bus.queues.values() for r in q if r.topic.startswith("hub.events."))
    while any(bus.queues.values()) and len(bodies) < 4:
        effects = bus.process([queue.popleft() for queue in bus.queues.values() if queue]).effects
        for send in effects.leads + effects.first:
            if send.contract in ("lead", "resolution"):
                bodies.setdefault(send.contract, bus.serde.encoder(send.topic, send.contract)(send.value))
    return bodies


@pytest.mark.parametrize("contract", ["event", "lead", "feedback", "resolution"])
def test_hostile_bodies_are_decode_errors_and_nothing_else(contract: str, genuine_bodies: dict[str, bytes]) -> None:
    """Bytes flipped, cut, padded with runaway varints or made up after a
    valid header: each either reads as a record or is a ``DecodeError`` (a
    dead letter), never another exception, a hang or a blow-up of memory
    (the worker would stop on it, or lose the batch beside it)."""
    decode = Serde(load_settings()).decoder(contract)
    body = genuine_bodies[contract]
    assert isinstance(decode(body), dict)
    rng = random.Random(contract)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    refused = 0
    for _ in range(4000):
        mutated = bytearray(body)
        how = rng.random()
        if how < 0.4:
            for _ in range(rng.randint(1, 8)):
                mutated[rng.randrange(5, len(mutated))] = rng.randrange(256)
        elif how < 0.6:
            mutated = mutated[: rng.randrange(5, len(mutated))]
        elif how < 0.8:
            mutated = mutated[:5] + bytearray(rng.randrange(256) for _ in range(rng.randrange(60)))
        else:
            at = rng.randrange(5, len(mutated))
            mutated[at:at] = b"\xff" * rng.randint(1, 9) + b"\x7f"
        try:
            assert isinstance(decode(bytes(mutated)), dict)
        except DecodeError:
            refused += 1
    # a length or a count of 2**62 claimed at every position: refused, nothing allocated for it
    for at in range(5, len(body)):
        try:
            assert isinstance(decode(body[:at] + b"\x80" * 9 + b"\x01" + body[at:]), dict)
        except DecodeError:
            refused += 1
    assert refused > 1000  # the mutations do break bodies
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB


def test_a_body_of_another_contract_is_refused_as_an_unknown_schema_each_time() -> None:
    """A writer schema the contract cannot resolve (a feedback record on an
    event topic) is found out once and refused alike every time after."""
    from hub.edge.feedback import tick

    serde = Serde(load_settings())
    body = serde.encoder("hub.feedback", "feedback")(tick(0))
    decode = serde.decoder("event")
    for _ in range(3):
        with pytest.raises(DecodeError, match="cannot be read as event") as refused:
            decode(body)
        assert refused.value.reason_code == "unknown_schema"
