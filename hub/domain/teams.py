"""Joint-enforcement teams (联合执法组): who receives which lead, and what of
it each may see.

A team is a jurisdiction (division-code prefixes), themes (rule families,
product categories), a minimum severity, a role and a clearance: the agencies whose
evidence details it may read and which detail fields. Police evidence is not
for every market-supervision desk: evidence from an agency a team is not
cleared for reaches it as "there is POLICE evidence of this kind on this
date", with the details withheld. Plain functions, no Kafka.

A team's role is a desk (it works the leads it receives) or oversight (the
procuratorate's 行政执法监督, a provincial office): an oversight team receives
the leads of its jurisdiction that transfer tracking flagged (``oversight``
on the lead: TRANSFER_OVERDUE, TRANSFER_UNFILED, NOT_TRANSFERRED) and reads
them; it does not answer them.
"""
from __future__ import annotations

import enum
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Collection, Iterable, Mapping

from hub.domain.events import Agency
from hub.domain.lifecycle import WITHDRAWN
from hub.domain.rules import RuleFamily, Severity

SEVERITIES = [s.value for s in Severity]
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
# Evidence fields that carry an agency's details; agency, kind and date always travel.
DETAIL_FIELDS = ("event_id", "source_record_id", "finding", "resolution", "also_reported_as")
NOTES = "notes"  # status-change notes written by teams of an agency
CLEARABLE = (*DETAIL_FIELDS, NOTES)
# What a team's copy of a lead may change of it, whatever the team's
# clearance: a copy that reads everything differs only in these.
COPY_FIELDS = frozenset({"team", "withheld", "person_refs"})
UNLOCATED = "unlocated"  # a jurisdiction for leads on businesses whose region is not known yet
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# A team's own agency may also be the procuratorate (检察院): it sends no
# records, so all evidence it reads is by clearance.
PROCURATORATE = "PROCURATORATE"
# Rules whose leads are for some agencies' desks only: a dropped police case
# comes back to market supervision for a penalty; a rectification order and
# the 12315 complaints are its own; an area's risk is for the agencies that
# sample food and farm produce.
RULE_AGENCIES = {RuleFamily.REVERSE_REFERRAL.value: {Agency.SAMR.value},
                 RuleFamily.RECTIFICATION_OVERDUE.value: {Agency.SAMR.value},
                 RuleFamily.COMPLAINTS.value: {Agency.SAMR.value},
                 RuleFamily.AREA_RISK.value: {Agency.SAMR.value, Agency.AGRI.value}}


class TeamRole(enum.StrEnum):
    DESK = "desk"  # works the leads it receives
    OVERSIGHT = "oversight"  # 行政执法监督: receives flagged transfers, reads, does not answer


@dataclass(frozen=True)
class Team:
    name: str
    agency: str
    description: str = ""
    jurisdiction: tuple[str, ...] = ()  # division-code prefixes, or UNLOCATED; empty: everywhere
    rules: tuple[str, ...] = ()  # rule families; empty: all
    categories: tuple[str, ...] = ()  # product themes, e.g. 肉制品; empty: all
    min_severity: str = "LOW"
    cleared_agencies: tuple[str, ...] = ()  # besides its own agency
    cleared_fields: tuple[str, ...] = CLEARABLE
    parent: str | None = None  # the jurisdiction above, which receives escalations
    role: str = TeamRole.DESK.value

    @property
    def topic(self) -> str:
        return f"hub.team.{self.name}"

    def cleared_for(self, agency: str) -> bool:
        return agency == self.agency or agency in self.cleared_agencies

    @property
    def oversees(self) -> bool:
        return self.role == TeamRole.OVERSIGHT

    def receives(self, lead: Mapping[str, Any]) -> bool:
        # Every lead is tested against every team: the cheapest tests go first.
        return (_RANK[lead["severity"]] >= _RANK[self.min_severity] and self._in_role(lead)
                and self._takes_rules(lead["rules"]) and self._reaches(lead) and self._on_theme(lead))

    def _in_role(self, lead: Mapping[str, Any]) -> bool:
        """A desk takes any lead; oversight only the flagged ones (and a flag's withdrawal)."""
        return not self.oversees or bool(lead.get("oversight") or _withdrawn(lead))

    def _takes_rules(self, rules: list[str]) -> bool:
        """The team's rule families, and a desk only the rules for its agency's desks."""
        if self.rules and not any(rule in self.rules for rule in rules):
            return False
        desks = RULE_AGENCIES.get(rules[0])
        return desks is None or self.oversees or self.agency in desks

    def _reaches(self, lead: Mapping[str, Any]) -> bool:
        """Whether the lead acts in the team's jurisdiction."""
        if not self.jurisdiction:
            return True
        # A batch trace reaches the sellers' counties as well as the producer's.
        also = lead.get("also_regions")
        codes = [lead["region"]["code"], *also] if also else [lead["region"]["code"]]
        return any(code.startswith(p) if code else p == UNLOCATED for p in self.jurisdiction for code in codes)

    def _on_theme(self, lead: Mapping[str, Any]) -> bool:
        """Whether the lead is on one of the team's product themes (any, if it names none)."""
        return not self.categories or any(theme in text for theme in self.categories for text in _themed(lead))


def _withdrawn(lead: Mapping[str, Any]) -> bool:
    """A flag for oversight withdrawn on evidence: the oversight teams that
    received the lead hear of the withdrawal, and of the lead from then on."""
    return any(h["status"].startswith(WITHDRAWN) for h in lead.get("history") or ())


def _themed(lead: Mapping[str, Any]) -> Iterable[str]:
    """What a product theme is matched in: the evidence's categories and its
    findings, which name the food (pork sold as 食用农产品 is meat all the
    same). A lead record holds its findings in its evidence; the flow's
    routing view of a lead (``BusinessState.routing_view``) as ``findings``."""
    yield from lead["categories"]
    yield from (e["finding"] or "" for e in lead.get("evidence") or ())
    yield from lead.get("findings") or ()


class TeamConfigError(ValueError):
    pass


def parse_teams(raw: dict[str, Any]) -> dict[str, Team]:
    teams: dict[str, Team] = {}
    for entry in raw.get("teams", []):
        team = _parse_team(entry, teams)
        teams[team.name] = team
    for team in teams.values():
        _check_parents(team, teams)
    return teams


def _parse_team(entry: dict[str, Any], teams: Mapping[str, Team]) -> Team:
    """One ``[[teams]]`` entry, checked against the teams before it."""
    name = str(entry.get("name", ""))
    _check_name(name, teams)
    unknown = set(entry) - set(Team.__dataclass_fields__)
    if unknown:
        raise TeamConfigError(f"team {name!r}: unknown keys {sorted(unknown)}")
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()}
    team = Team(**values)
    problems = _unknown_values(team)
    if problems:
        raise TeamConfigError(f"team {name!r}: unknown {', '.join(problems)}")
    return team


def _check_name(name: str, teams: Mapping[str, Team]) -> None:
    """A team's name names its topic, and names one team."""
    if not _NAME.fullmatch(name):
        raise TeamConfigError(f"team name {name!r}: lower-case letters, digits and '-' only (it names a topic)")
    if name in teams:
        raise TeamConfigError(f"team {name!r} is defined twice")


def _unknown_values(team: Team) -> list[str]:
    """The values of a team's settings that name no agency, role, rule,
    field, division or severity, in the order of the settings."""
    agencies = {a.value for a in Agency}
    return [
        *_unknown("agency", [team.agency], agencies | {PROCURATORATE}),
        *_unknown("agency", team.cleared_agencies, agencies),
        *_unknown("role", [team.role], {r.value for r in TeamRole}),
        *_unknown("rule", team.rules, {f.value for f in RuleFamily}),
        *_unknown("clearance field", team.cleared_fields, CLEARABLE),
        *(f"jurisdiction {j!r}" for j in team.jurisdiction if not _is_jurisdiction(j)),
        *_unknown("min_severity", [team.min_severity], SEVERITIES),
    ]


def _unknown(setting: str, values: Iterable[str], known: Collection[str]) -> list[str]:
    return [f"{setting} {value!r}" for value in values if value not in known]


def _is_jurisdiction(prefix: str) -> bool:
    """A division-code prefix (up to six digits), or UNLOCATED."""
    return prefix == UNLOCATED or re.fullmatch(r"\d{1,6}", prefix) is not None


def _check_parents(team: Team, teams: Mapping[str, Team]) -> None:
    """The team's parents, up the chain, are teams and form no cycle."""
    seen = {team.name}
    parent = team.parent
    while parent is not None:
        if parent not in teams:
            raise TeamConfigError(f"team {team.name!r}: parent {parent!r} is not a team")
        if parent in seen:
            raise TeamConfigError(f"team {team.name!r}: parents form a cycle")
        seen.add(parent)
        parent = teams[parent].parent


def without_oversight(teams: Mapping[str, Team]) -> list[str]:
    """The desks' jurisdictions that no oversight team covers: their
    flagged leads (a transfer overdue, a referral closed untransferred)
    reach no procuratorate."""
    overseen = _jurisdictions(teams, oversight=True)
    return sorted({prefix for prefix in _jurisdictions(teams, oversight=False)
                   if prefix != UNLOCATED and not any(prefix.startswith(o) for o in overseen)})


def _jurisdictions(teams: Mapping[str, Team], *, oversight: bool) -> list[str]:
    """The oversight teams' (or the desks') jurisdiction prefixes; "" for everywhere."""
    return [prefix for t in teams.values() if t.oversees == oversight for prefix in t.jurisdiction or ("",)]


def load_teams(path: Path) -> dict[str, Team]:
    if not path.exists():
        return {}
    with open(path, "rb") as fh:
        try:
            return parse_teams(tomllib.load(fh))
        except (TypeError, tomllib.TOMLDecodeError) as exc:
            raise TeamConfigError(f"{path}: {exc}") from exc


def redact(lead: Mapping[str, Any], team: Team, teams: dict[str, Team]) -> dict[str, Any]:
    """The copy of a lead that ``team`` may read."""
    if _reads_all_of(lead, team, teams):  # most copies: nothing to withhold, nothing to copy
        return {**lead, "team": team.name, "withheld": [], "person_refs": list(lead.get("person_refs") or [])}
    return withhold(lead, team, teams)


def _reads_all_of(lead: Mapping[str, Any], team: Team, teams: dict[str, Team]) -> bool:
    """Whether ``team`` is cleared for every detail field of every agency
    whose evidence, follow-up or notes the lead holds."""
    if not set(CLEARABLE) <= set(team.cleared_fields):
        return False
    return all(team.cleared_for(agency) for agency in _agencies_in(lead, teams))


def _agencies_in(lead: Mapping[str, Any], teams: dict[str, Team]) -> set[str]:
    """The agencies whose evidence, follow-up (a linked event) or notes the lead holds."""
    agencies = {item["agency"] for item in lead["evidence"]}
    agencies.update(_linked_agencies(lead))
    agencies.update(teams[c["team"]].agency for c in lead["history"] if c["note"] and c["team"] in teams)
    return agencies


def _linked_agencies(lead: Mapping[str, Any]) -> Iterable[str]:
    """The agencies of the events linked to the lead (its follow-up)."""
    return (k["agency"] for k in lead.get("links") or [] if k.get("agency") and k.get("event_id"))


def withhold(lead: Mapping[str, Any], team: Team, teams: dict[str, Team]) -> dict[str, Any]:
    """``redact`` the long way: every detail walked, whatever the team's clearance."""
    # Only evidence items and history entries are edited: copy those, share the rest.
    out = {**lead, "evidence": [dict(e) for e in lead["evidence"]], "history": [dict(h) for h in lead["history"]],
           "links": [dict(k) for k in lead.get("links") or []]}
    withheld: set[str] = set()
    _withhold_follow_ups(out["links"], team, withheld)
    _withhold_evidence(out["evidence"], team, withheld)
    _withhold_notes(out["history"], team, teams, withheld)
    out["team"] = team.name
    out["withheld"] = sorted(withheld)
    # The people's keyed tokens let a team's `hub leads` scrub their names
    # from a note before it reaches a topic. A team holds the key that makes
    # them, so a token of evidence it may not read could be matched against a
    # list of names: only a team that sees every detail gets them (the
    # workers scrub every other team's notes, by the same tokens).
    out["person_refs"] = list(lead.get("person_refs") or []) if not withheld else []
    return out


def _withhold_follow_ups(links: list[dict[str, Any]], team: Team, withheld: set[str]) -> None:
    """A linked event's id, of an agency the team may not read, blanked (in place)."""
    for follow_up in links:
        agency = follow_up.get("agency")
        cleared = team.cleared_for(agency) and "event_id" in team.cleared_fields if agency else False
        if agency and follow_up.get("event_id") and not cleared:
            follow_up["event_id"] = None
            withheld.add(f"{agency} evidence event_id")


def _withhold_evidence(evidence: list[dict[str, Any]], team: Team, withheld: set[str]) -> None:
    """Each evidence item's detail fields the team may not read, blanked (in place)."""
    for item in evidence:
        for name in DETAIL_FIELDS:
            if team.cleared_for(item["agency"]) and name in team.cleared_fields:
                continue
            if item.get(name):
                withheld.add(f"{item['agency']} evidence {name}")
            item[name] = [] if name == "also_reported_as" else None


def _withhold_notes(history: list[dict[str, Any]], team: Team, teams: dict[str, Team], withheld: set[str]) -> None:
    """The notes of teams of an agency the team may not read, blanked (in place)."""
    for change in history:
        author = teams.get(change["team"] or "")
        if change["note"] and author is not None and not (
                NOTES in team.cleared_fields and team.cleared_for(author.agency)):
            change["note"] = None
            withheld.add(f"{author.agency} notes")


def recipients(lead: Mapping[str, Any], teams: dict[str, Team]) -> list[Team]:
    """Every team that receives the lead. An escalation also goes to the
    parent jurisdiction of each such team."""
    targets = [t for t in teams.values() if t.receives(lead)]
    if lead.get("escalation"):
        targets += [teams[t.parent] for t in list(targets) if t.parent]
    return list({t.name: t for t in targets}.values())


def route(lead: Mapping[str, Any], teams: dict[str, Team]) -> list[tuple[Team, dict[str, Any]]]:
    """Every team that receives the lead, with its redacted copy."""
    return [(t, redact(lead, t, teams)) for t in recipients(lead, teams)]


def describe(team: Team) -> Iterable[str]:
    yield _title(team)
    if team.description:
        yield f"    {team.description}"
    yield f"    jurisdiction: {', '.join(team.jurisdiction) or 'everywhere'}"
    if team.oversees:
        yield "    oversight: receives only leads transfer tracking flagged (TRANSFER_OVERDUE, TRANSFER_UNFILED, " \
              "NOT_TRANSFERRED); reads, does not answer"
    yield _receives_line(team)
    yield _clearance_line(team)


def _title(team: Team) -> str:
    """Name, agency, role, topic and parent: the first line of ``describe``."""
    return f"{team.name}  ({team.agency}{', oversight' if team.oversees else ''})  -> {team.topic}" + (
        f"  parent: {team.parent}" if team.parent else "")


def _receives_line(team: Team) -> str:
    return (f"    receives: {', '.join(team.rules) or 'all rules'}; "
            f"{'themes ' + ', '.join(team.categories) if team.categories else 'all themes'}; "
            f"severity {team.min_severity} and above")


def _clearance_line(team: Team) -> str:
    cleared = sorted({team.agency, *team.cleared_agencies} & {a.value for a in Agency})
    hidden = sorted({a.value for a in Agency} - set(cleared))
    return (f"    sees details of: {', '.join(cleared)} evidence ({', '.join(team.cleared_fields) or 'no fields'})"
            + (f"; {', '.join(hidden)} evidence arrives without details" if hidden else ""))
