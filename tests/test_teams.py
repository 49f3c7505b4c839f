"""Teams, routing and redaction as pure functions."""
from __future__ import annotations

import copy
import datetime as dt

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from hub.domain.teams import CLEARABLE, DETAIL_FIELDS, NOTES, SEVERITIES, Team, TeamConfigError, load_teams, \
    parse_teams, redact, route, withhold
from hub.settings import REPO_ROOT

AGENCIES = ["SAMR", "POLICE", "AGRI"]
RULES = ["CRIMINAL_REFERRAL", "CROSS_AGENCY", "REPEAT_OFFENDER"]
REGIONS = ["140703", "140702", "410502", "410523", None]


def _evidence(agency: str, text: str) -> dict:
    return {"agency": agency, "kind": "POLICE_CASE" if agency == "POLICE" else "PENALTY",
            "event_id": f"x:{text}", "source_record_id": text, "occurred_on": dt.date(2026, 8, 15),
            "finding": f"finding {text}", "also_reported_as": [f"dup-{text}"], "resolution": f"how {text}",
            "category": None, "chained": False}


def _lead(evidence: list[dict], history: list[dict], region: str | None, severity: str, rules: list[str],
          escalation: str | None = None) -> dict:
    return {"lead_id": "lead-1", "business_id": None, "business_key": "k", "business_name": "n",
            "region": {"code": region, "name": None}, "rules": rules, "severity": severity,
            "agencies": sorted({e["agency"] for e in evidence}), "evidence": evidence,
            "recommended_action": "", "status": "OPEN", "superseded_by": None, "categories": ["肉制品"],
            "history": history, "acknowledge_by": None, "close_by": None, "recheck_on": None,
            "escalation": escalation, "reopened": 0, "team": None, "withheld": []}


teams_strategy = st.lists(st.builds(
    lambda i, agency, cleared, fields, prefixes, rules, severity, cats, parent: Team(
        name=f"team-{i}", agency=agency, cleared_agencies=tuple(cleared), cleared_fields=tuple(fields),
        jurisdiction=tuple(prefixes), rules=tuple(rules), min_severity=severity, categories=tuple(cats),
        parent=f"team-{parent}" if parent is not None and parent < i else None),
    st.integers(0, 1000), st.sampled_from(AGENCIES), st.lists(st.sampled_from(AGENCIES), unique=True),
    st.lists(st.sampled_from(CLEARABLE), unique=True), st.lists(st.sampled_from(["14", "1407", "4105", "410502"])),
    st.lists(st.sampled_from(RULES), unique=True), st.sampled_from(SEVERITIES), st.lists(st.sampled_from(["肉", "酒"])),
    st.one_of(st.none(), st.integers(0, 1000))), min_size=1, max_size=6, unique_by=lambda t: t.name)


@st.composite
def leads_and_teams(draw: st.DrawFn) -> tuple[dict, dict[str, Team]]:
    teams = {t.name: t for t in draw(teams_strategy)}
    teams = {n: t if t.parent in teams or t.parent is None else Team(**{**t.__dict__, "parent": None})
             for n, t in teams.items()}
    evidence = [_evidence(a, str(i)) for i, a in enumerate(draw(st.lists(st.sampled_from(AGENCIES), min_size=1,
                                                                         max_size=5)))]
    authors = draw(st.lists(st.sampled_from([None, *teams]), max_size=4))
    history = [{"at": dt.datetime(2026, 9, 1, tzinfo=dt.UTC), "status": "ACKNOWLEDGED", "team": a,
                "note": f"note {i}"} for i, a in enumerate(authors)]
    lead = _lead(evidence, history, draw(st.sampled_from(REGIONS)), draw(st.sampled_from(SEVERITIES)),
                 draw(st.lists(st.sampled_from(RULES), min_size=1, max_size=1)),
                 draw(st.sampled_from([None, "ACKNOWLEDGE_OVERDUE"])))
    return lead, teams


@hsettings(max_examples=300, deadline=None)
@given(leads_and_teams())
def test_no_team_copy_carries_a_field_above_its_clearance(case: tuple[dict, dict[str, Team]]) -> None:
    lead, teams = case
    original = copy.deepcopy(lead)
    routed = route(lead, teams)
    assert lead == original  # routing never edits the operators' copy
    receivers = {t.name for t in teams.values() if t.receives(lead)}
    escalated_to = {teams[n].parent for n in receivers if teams[n].parent} if lead["escalation"] else set()
    assert {t.name for t, _ in routed} == receivers | escalated_to
    for team, copy_ in routed:
        assert copy_["team"] == team.name
        for got, full in zip(copy_["evidence"], lead["evidence"], strict=False):
            assert (got["agency"], got["kind"], got["occurred_on"]) == (full["agency"], full["kind"],
                                                                        full["occurred_on"])
            for name in DETAIL_FIELDS:
                allowed = team.cleared_for(full["agency"]) and name in team.cleared_fields
                assert got[name] == (full[name] if allowed else ([] if name == "also_reported_as" else None))
                if not allowed:
                    assert f"{full['agency']} evidence {name}" in copy_["withheld"]
        for got, full in zip(copy_["history"], lead["history"], strict=False):
            author = teams.get(full["team"] or "")
            visible = author is None or (NOTES in team.cleared_fields and team.cleared_for(author.agency))
            assert got["note"] == (full["note"] if visible else None)
        untouched = {k for k in lead if k not in ("evidence", "history", "team", "withheld")}
        assert {k: copy_[k] for k in untouched} == {k: lead[k] for k in untouched}


@hsettings(max_examples=200, deadline=None)
@given(leads_and_teams(), st.sampled_from([None, "POLICE", "AGRI"]))
def test_a_copy_without_edits_is_the_copy_the_full_walk_makes(case: tuple[dict, dict[str, Team]],
                                                               link_agency: str | None) -> None:
    """``redact`` skips the walk when the team reads everything: its copies
    must be what the walk gives, for cleared teams and the rest alike."""
    lead, teams = case
    lead["links"] = [{"kind": "POLICE_FILED", "event_id": "p:1", "lead_id": None, "agency": link_agency,
                      "occurred_on": dt.date(2026, 9, 2)}]
    everything = Team(name="everything", agency="SAMR", cleared_agencies=tuple(AGENCIES))
    for team in [*teams.values(), everything]:
        assert redact(lead, team, teams) == withhold(lead, team, teams)
    assert redact(lead, everything, teams)["withheld"] == []


def test_shipped_teams_route_a_police_referral_with_and_without_police_details() -> None:
    teams = load_teams(REPO_ROOT / "ops" / "teams.toml")
    lead = _lead([_evidence("POLICE", "A1407032026080031")], [], "140703", "CRITICAL", ["CRIMINAL_REFERRAL"])
    copies = {t.name: c for t, c in route(lead, teams)}
    assert set(copies) == {"police-shanxi-food-crime", "police-jinzhong-food-crime", "samr-jinzhong", "samr-taigu"}
    police = copies["police-jinzhong-food-crime"]["evidence"][0]
    assert police["source_record_id"] == "A1407032026080031" and police["finding"]
    county = copies["samr-taigu"]
    assert county["evidence"][0] == {**police, "event_id": None, "source_record_id": None, "finding": None,
                                     "resolution": None, "also_reported_as": []}
    assert "A1407032026080031" not in repr(county)
    assert "POLICE evidence finding" in county["withheld"]


def test_escalation_reaches_the_parent_jurisdiction() -> None:
    teams = load_teams(REPO_ROOT / "ops" / "teams.toml")
    lead = _lead([_evidence("SAMR", "1"), _evidence("POLICE", "2")], [], "140702", "HIGH", ["CROSS_AGENCY"])
    plain = {t.name for t, _ in route(lead, teams)}
    assert plain == {"police-jinzhong-food-crime", "samr-jinzhong", "samr-yuci"}
    escalated = {t.name for t, _ in route({**lead, "escalation": "ACKNOWLEDGE_OVERDUE"}, teams)}
    assert escalated == plain | {"police-shanxi-food-crime"}


@pytest.mark.parametrize("entry, message", [
    ({"name": "Bad Name", "agency": "SAMR"}, "lower-case"),
    ({"name": "a", "agency": "CUSTOMS"}, "agency 'CUSTOMS'"),
    ({"name": "a", "agency": "SAMR", "parent": "b"}, "parent 'b' is not a team"),
    ({"name": "a", "agency": "SAMR", "cleared_fields": ["suspects"]}, "clearance field 'suspects'"),
    ({"name": "a", "agency": "SAMR", "colour": "red"}, "unknown keys ['colour']"),
    ({"name": "a", "agency": "SAMR", "jurisdiction": ["Anyang"]}, "jurisdiction 'Anyang'"),
])
def test_bad_team_configuration_is_refused_with_the_reason(entry: dict, message: str) -> None:
    with pytest.raises(TeamConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_teams({"teams": [entry]})


def test_parent_cycles_are_refused() -> None:
    with pytest.raises(TeamConfigError, match="cycle"):
        parse_teams({"teams": [{"name": "a", "agency": "SAMR", "parent": "b"},
                               {"name": "b", "agency": "SAMR", "parent": "a"}]})


def test_every_region_with_desks_has_an_oversight_team_or_a_warning() -> None:
    """Issue 32: Jinzhong's flagged leads reached no procuratorate, and nothing said so."""
    from hub.domain.teams import without_oversight
    from hub.settings import Settings

    assert without_oversight(load_teams(Settings().teams_file)) == []
    desks_only = parse_teams({"teams": [
        {"name": "samr-a", "agency": "SAMR", "jurisdiction": ["4105"]},
        {"name": "samr-j", "agency": "SAMR", "jurisdiction": ["1407"]},
        {"name": "samr-u", "agency": "SAMR", "jurisdiction": ["unlocated"]},
        {"name": "proc-a", "agency": "PROCURATORATE", "role": "oversight", "jurisdiction": ["41"]}]})
    assert without_oversight(desks_only) == ["1407"]


def test_a_theme_matches_the_foods_name_as_well_as_its_category() -> None:
    """Issue 32: pork sampled as 食用农产品 reached no meat team."""
    meat = Team("samr-meat", "SAMR", jurisdiction=("4105",), categories=("肉", "畜禽"))
    pork = {**_lead([_evidence("SAMR", "x")], [], "410502", "HIGH", ["REPEAT_OFFENDER"]), "categories": ["食用农产品"]}
    pork["evidence"][0]["finding"] = "猪肉 克伦特罗 检出"
    assert meat.receives(pork)
    cabbage = {**pork, "evidence": [{**pork["evidence"][0], "finding": "大白菜 毒死蜱 超标"}]}
    assert not meat.receives(cabbage)
