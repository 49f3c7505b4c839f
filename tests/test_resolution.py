"""Entity resolution: the decision as a function, and the worker's logic on an
in-memory bus under many arrival orders and interleavings (no broker)."""
from __future__ import annotations

import functools
import itertools
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from hub.domain.leads import BusinessState
from hub.domain.names import normalise_name
from hub.domain.resolution import (BY_LICENCE, BY_NAME_AND_ADDRESS, BY_NAME_IN_REGION, Candidate, Decision,
                                   ParkedRecord, ResolverState, decide)
from hub.devtools.samples import (BAKERY, CONDIMENT, PORK, _headers, write_city_double_report, write_csv,
                         write_registry, write_scenario)
from connectors.samr_inspection import SamrInspectionConnector
from hub.flow.messages import Moved, Park, Register, ResolutionBody, Watch, resolution_message
from hub.testing.bus import Bus
from tests.scenario import A, B, CITY, ELSEWHERE, EXPECTED, RESOLUTIONS, ambiguity_files, resolutions

def candidate(uscc: str, name: str, address: str | None = None, licences: tuple[str, ...] = ()) -> Candidate:
    return Candidate(uscc, name, uscc[2:8], frozenset({normalise_name(name)}),
                     frozenset({normalise_name(address)} if address else ()), frozenset(licences))


def record(name: str, region: str | None = "410502", address: str | None = None,
           licence: str | None = None) -> ParkedRecord:
    return ParkedRecord("e1", "unresolved:x", "t", b"", normalise_name(name), name, region,
                        normalise_name(address) if address else None, licence, None, 0)


def test_a_bracket_variant_name_resolves_within_its_region() -> None:
    found = decide(record(BAKERY.name.replace("(", "（").replace(")", "）") + " ", "410505"),
                   [candidate(BAKERY.uscc, BAKERY.name)])
    assert (found.business_id, found.method) == (BAKERY.uscc, BY_NAME_IN_REGION)
    assert "410505 河南省安阳市殷都区" in found.matched


def test_a_city_registration_matches_an_address_in_one_of_its_districts() -> None:
    assert decide(record("好运来饭店"), [candidate(CITY, "好运来饭店")]).business_id == CITY


def test_the_licence_wins_over_a_different_name() -> None:
    found = decide(record("老字号调味品店", licence="JY14105030009876"),
                   [candidate(A, "新名字调味品店", licences=("JY14105030009876",)), candidate(B, "老字号调味品店")])
    assert (found.business_id, found.method, found.matched) == (A, BY_LICENCE, "JY14105030009876")


def test_two_businesses_of_one_name_in_one_region_are_ambiguous_unless_the_address_tells() -> None:
    pool = [
        candidate(A, "好运来饭店", "河南省安阳市文峰区人民大道1号"),
        candidate(B, "好运来饭店", "河南省安阳市文峰区东风路9号"),
    ]
    ambiguous = decide(record("好运来饭店", address="河南省安阳市文峰区光明路3号"), pool)
    assert ambiguous.business_id is None and ambiguous.ambiguous and ambiguous.candidates == tuple(sorted((A, B)))
    assert "share this name" in ambiguous.reason
    found = decide(record("好运来饭店", address="河南省安阳市文峰区东风路 9 号"), pool)
    assert (found.business_id, found.method) == (B, BY_NAME_AND_ADDRESS)


def test_a_name_registered_only_elsewhere_or_not_at_all_stays_parked() -> None:
    elsewhere = decide(record("好运来饭店"), [candidate(ELSEWHERE, "好运来饭店")])
    assert elsewhere.business_id is None and not elsewhere.ambiguous and "outside" in elsewhere.reason
    assert decide(record("好运来饭店"), []) == Decision(reason="no registered business has this name (yet)")


def test_a_branch_is_not_its_parent() -> None:
    assert decide(record("鑫源肉类加工有限公司文峰分公司"), [candidate(A, "鑫源肉类加工有限公司")]).business_id is None


_spelling = st.sampled_from(["老街调味品店", "老街调味品店(北关)", "老街調味品店", "老街调味品店（北关）"])


@given(
    st.lists(
        st.tuples(_spelling, st.sets(st.sampled_from(["JY14105030009876", "SC10441050200123"]))), min_size=1, max_size=5
    ),
    st.randoms(),
)
def test_what_the_registry_learns_of_a_business_does_not_depend_on_the_order(
    teachings: list[tuple[str, set[str]]], rng: random.Random
) -> None:
    """Records teach spellings and licences of one business; any order of learning gives one candidate."""
    views = [candidate(A, name, licences=tuple(licences)) for name, licences in teachings]
    merged = functools.reduce(Candidate.merge, views)
    assert functools.reduce(Candidate.merge, rng.sample(views, len(views))) == merged
    assert merged.name == min(name for name, _ in teachings)
    assert merged.licences == frozenset().union(*(licences for _, licences in teachings))
    # ...so the explanation a resolved record carries does not either
    found = decide(record(views[-1].name, "410502"), [merged])
    assert found.explanation.endswith(f"-> {A} {merged.name}")


def test_resolver_state_round_trips_and_ignores_a_replayed_park() -> None:
    state = ResolverState()
    state.register(candidate(A, "好运来饭店", "某地"), relayed=False)
    watch, moves = state.park(record("好运来饭店"))
    assert watch == [] and [m.new.business_id for m in moves] == [A]
    assert state.park(record("好运来饭店")) == ([], [])
    assert ResolverState.from_bytes(state.to_bytes()) == state


def _run(folder: Path, order: list[str], seed: int, extra: dict[str, Path] | None = None) -> Bus:
    files = {**write_scenario(folder), **(extra or {})}
    bus = Bus()
    for name in order:
        bus.publish_file(name.split("#")[0], files[name])
    rng = random.Random(seed)
    bus.run(lambda n: rng.randrange(n))
    return bus


SCENARIO_FILES = [
    "samr.sampling",
    "samr.penalty",
    "samr.inspection",
    "police.case",
    "agri.sampling",
    "registry.business",
]


CITY_REPORTS = {"GC26410500410230101": ["SC2026-AY-0031"], "GC26410500410230155": ["SC2026-AY-0032"]}


@hsettings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.booleans().flatmap(lambda city: st.permutations(SCENARIO_FILES + ["samr.sampling#city"] * city)),
    seed=st.integers(0, 2**32),
)
def test_the_scenario_gives_the_same_leads_whatever_the_order(tmp_path: Path, files: list[str], seed: int) -> None:
    """With or without the city system's second report of two samples."""
    bus = _run(tmp_path, files, seed, {"samr.sampling#city": write_city_double_report(tmp_path)})
    assert {k: set(v) for k, v in bus.open_leads().items()} == EXPECTED
    assert bus.dead_letters == []
    assert resolutions(bus.leads.values()) == RESOLUTIONS  # the explanations do not depend on the order either
    reported = {
        e["source_record_id"]: e["also_reported_as"]
        for lead in bus.leads.values()
        if lead["status"] == "OPEN"
        for e in lead["evidence"]
        if e["source_record_id"] in CITY_REPORTS
    }
    assert reported == ({**CITY_REPORTS} if "samr.sampling#city" in files else {k: [] for k in CITY_REPORTS})
    # What was counted under the provisional key while the record waited is superseded: by a
    # lead that took its evidence, or, the last of them, by the move to the business.
    provisional = [
        lead for lead in bus.leads.values() if lead["business_key"].startswith("unresolved:410502:安阳市文峰区鑫源")
    ]
    assert provisional and all(lead["status"] == "SUPERSEDED" for lead in provisional)
    assert {lead["history"][-1]["note"] for lead in provisional if lead["superseded_by"] is None} == {
        f"its evidence was resolved to {PORK.uscc}"
    }


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["registry.business", "registry.business#b", "samr.sampling#ambiguity"]))
)
def test_ambiguity_in_every_order(tmp_path: Path, order: tuple[str, ...]) -> None:
    extra = ambiguity_files(tmp_path / "ambiguity")
    bus = Bus()
    for name in order:
        bus.publish_file(name.split("#")[0], extra[name])
    bus.run(lambda n: n - 1)  # drain the newest partition first: late registry records overtake
    states = {k: ResolverState.from_bytes(v) for k, v in bus.resolver.items()}
    waiting = [r for s in states.values() for r in s.unresolved()]
    assert [(r.event_id, r.decision.candidates) for r in waiting] == [
        ("samr.sampling:GC-AMBIG-1:seller", tuple(sorted((A, B))))
    ]
    resolved = [r for s in states.values() for r in s.records.values() if r.decision.business_id]
    assert [(r.event_id, r.decision.business_id, r.decision.method) for r in resolved] == [
        ("samr.sampling:GC-ADDR-2:seller", B, BY_NAME_AND_ADDRESS)
    ]
    assert bus.metrics.worker.unresolved.labels("ambiguous")._value.get() == 1
    # The ambiguous record's evidence stays under its provisional key, B holds the other one.
    facts = {
        k.decode(): [f.event_id for f in bs.facts.values() if not f.moved_to]
        for k, bs in ((k, BusinessState.from_bytes(v)) for k, v in bus.businesses.items())
    }
    assert facts[B] == ["samr.sampling:GC-ADDR-2:seller"]
    assert facts.get(A, []) == []  # resolved to A while B was unknown, then taken back
    assert facts["unresolved:410502:安阳市文峰区好运来饭店"] == ["samr.sampling:GC-AMBIG-1:seller"]


def test_a_licence_resolves_a_record_that_names_the_business_differently(tmp_path: Path) -> None:
    """An inspection without a USCC but with the licence; the registry knows the licence under the new name."""
    h = _headers(SamrInspectionConnector)
    values = {
        "检查编号": "JC-LIC-1",
        "被检查单位名称": "老街酱园",
        "统一社会信用代码": "",
        "许可证编号": CONDIMENT.licence,
        "检查日期": "2026-08-01",
        "检查人员": "",
        "检查结果": "不符合",
        "结果处理": "书面限期整改",
        "发现问题": "未索证索票",
        "整改期限": "",
    }
    inspection = write_csv(tmp_path / "inspection.csv", h, [[values[c] for c in h]])
    registry = write_registry(
        tmp_path / "registry.csv", [(CONDIMENT.uscc, CONDIMENT.name, CONDIMENT.address, CONDIMENT.licence)]
    )
    for first, second in (("samr.inspection", "registry.business"), ("registry.business", "samr.inspection")):
        bus = Bus()
        paths = {"samr.inspection": inspection, "registry.business": registry}
        bus.publish_file(first, paths[first])
        bus.run()
        bus.publish_file(second, paths[second])
        bus.run()
        state = BusinessState.from_bytes(bus.businesses[CONDIMENT.uscc.encode()])
        fact = state.facts["samr.inspection:JC-LIC-1"]
        assert fact.resolution.startswith(f"licence: {CONDIMENT.licence} -> {CONDIMENT.uscc}")
        assert bus.metrics.worker.resolved.labels("licence")._value.get() == 1


def test_bad_resolution_messages_are_dead_letters_with_the_reason() -> None:
    bus = Bus()
    encode = bus.serde.encoder("hub.resolution", "resolution")
    register = encode(resolution_message(Register(candidate(A, "好运来饭店"))))
    result = bus.process(
        [
            bus.record("hub.resolution", b"name:x", b"\x00\x00\x00\x00\x08garbage"),
            bus.record("hub.resolution", None, register),
            bus.record("hub.resolution", A.encode(), register),  # a registration sent to a business, not a lookup key
            bus.record(
                "hub.resolution",
                b"name:x",
                encode({**resolution_message(Park(b"", "hub.events.samr", "unresolved::x")), "event": None}),
            ),  # a PARK without its event
            # a connector (or anyone but a worker) may not speak for resolution
            bus.record("hub.resolution", b"name:x", register, by=bus.sender("hub.events.samr")),
        ]
    )
    assert [d["reason_code"] for d in result.dead_letters] == [
        "undecodable_resolution",
        "unkeyed_resolution",
        "misrouted_resolution",
        "incomplete_resolution",
        "not_authorised",
    ]
    assert result.resolvers == set() and result.resolution == []


def test_hub_unresolved_reads_past_a_state_it_cannot_read(tmp_path: Path, caplog) -> None:
    """Attack: a torn, a foreign and a future-version state among the
    resolver's: `hub unresolved` lists the parked records of the others and
    logs each bad one by where it sits."""
    import datetime as dt

    from hub.apps.unresolved import unresolved_in
    from tests.scenario import scenario_bus

    now = dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC)
    bus = scenario_bus(tmp_path, now)
    latest: dict[bytes, tuple[str, bytes | None]] = {
        key: (f"changelog[0]@{n}", value) for n, (key, value) in enumerate(bus.store.resolver.items())
    }
    parked = unresolved_in(latest, now.timestamp())
    assert parked
    latest[b"torn"] = ("changelog[1]@1", b'{"v": 3, "c": [')
    latest[b"foreign"] = ("changelog[1]@2", b"\x00\x00\x00\x00\x01avro")
    latest[b"future"] = ("changelog[1]@3", b'{"v": 99}')
    with caplog.at_level("WARNING", logger="hub.apps.unresolved"):
        assert unresolved_in(latest, now.timestamp()) == parked
    assert sorted(r.getMessage().split(" cannot")[0] for r in caplog.records) == [
        f"a resolver state at changelog[1]@{n}" for n in (1, 2, 3)
    ]


@pytest.mark.parametrize(
    "body, emptied",
    [
        (Register(candidate(A, "好运来饭店")), "candidate"),
        (Watch("name:y"), "watcher"),
        (Moved("test:1", ""), "moved_to"),
        (Moved("test:1", "x"), "event_id"),
    ],
)
def test_a_resolution_message_without_what_its_kind_needs_is_incomplete(body: ResolutionBody, emptied: str) -> None:
    """Each kind is read into its own record (Register, Watch, Moved, …):
    one missing a field its kind needs is refused as incomplete, never half-applied."""
    bus = Bus()
    encode = bus.serde.encoder("hub.resolution", "resolution")
    message = {**resolution_message(body), emptied: None}
    key = A.encode() if isinstance(body, Moved) else b"name:x"
    assert [
        d["reason_code"] for d in bus.process([bus.record("hub.resolution", key, encode(message))]).dead_letters
    ] == ["incomplete_resolution"]
    assert [
        d["reason_code"]
        for d in bus.process([bus.record("hub.resolution", key, encode(resolution_message(body)))]).dead_letters
    ] == []
