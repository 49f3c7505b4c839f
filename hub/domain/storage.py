"""How the worker's states are stored on the changelog: JSON objects with an
explicit version ``v``, read through the migrations below. A state written
before versions were kept has no ``v`` and counts as version 1.

The rule between releases: a new version may only add fields (at the end of
a positional list, or as a new key), so a release reads states a newer one
wrote by ignoring what it does not know, and a newer release reads older
states through a tested migration. Changing what a field means needs a new
contract, not a new version."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import orjson

BUSINESS_STATE_VERSION = 5
RESOLVER_STATE_VERSION = 2

Raw = dict[str, Any]


def dump(raw: Raw, version: int) -> bytes:
    # orjson writes what json.dumps(ensure_ascii=False, compact separators)
    # does, byte for byte, about eight times faster (read: three times).
    return orjson.dumps({"v": version, **raw})


def load(data: bytes, version: int, migrations: Mapping[int, Callable[[Raw], Raw]]) -> Raw:
    raw: Raw = orjson.loads(data)
    written = raw.get("v", 1)
    while written < version:
        raw = migrations[written](raw)
        written += 1
    return raw


def _fact_v1(fact: list[Any]) -> list[Any]:
    """Facts of 9 fields (before categories and near-duplicates) or 12
    (before resolution), and merged reports kept without their date (the
    finding's date stands in)."""
    fact = [*fact, *("", "", [], "", "")[len(fact) - 9:]][:14]
    fact[11] = [[e, s, *(d or [fact[3]])] for e, s, *d in fact[11]]
    return fact


def _lead_v1(mark: list[Any]) -> list[Any]:
    """Marks of 6 fields (before the lifecycle: open since first seen, no
    history) or 12 (before the announced escalation was kept)."""
    if len(mark) == 6:
        mark = [*mark, mark[0], [], [], [], 0, None]
    return [*mark, None][:13]


def business_v1_to_v2(raw: Raw) -> Raw:
    return {"n": raw["n"], "b": raw["b"], "r": raw["r"], "p": raw.get("p"),
            "f": [_fact_v1(f) for f in raw["f"]], "l": {k: _lead_v1(m) for k, m in raw["l"].items()},
            "k": raw.get("k"), "q": raw.get("q") or [], "o": raw.get("o") or [], "w": raw.get("w") or ""}


def business_v2_to_v3(raw: Raw) -> Raw:
    """Follow-through: facts gain what they say became of a finding, a
    rectification deadline and their reporting delay; lead marks their
    follow-up links and oversight flag; the state its flagged rectifications.
    Records kept before this version are linked to nothing (their outcome
    was not kept)."""
    return {**raw, "f": [[*f[:14], "", 0, 0] for f in raw["f"]],
            "l": {k: [*m[:13], [], False] for k, m in raw["l"].items()}, "x": []}


def business_v3_to_v4(raw: Raw) -> Raw:
    """New signals: facts gain the other party a record names (seller,
    complainant, member, related business); the state its credit standing,
    the complainants it was told are serial filers, its legal
    representatives' keyed hashes and what it last told their indexes."""
    return {**raw, "f": [[*f[:17], "", "", ""] for f in raw["f"]], "c": None, "s": [], "y": [], "m": ""}


def business_v4_to_v5(raw: Raw) -> Raw:
    """Lead marks gain the version of the last record published (0: none
    was versioned yet, so the next record's version is the worker's clock)."""
    return {**raw, "l": {k: [*m[:15], 0] for k, m in raw["l"].items()}}


def resolver_v1_to_v2(raw: Raw) -> Raw:
    return raw  # the contents are unchanged: version 2 only writes its version


BUSINESS_MIGRATIONS = {1: business_v1_to_v2, 2: business_v2_to_v3, 3: business_v3_to_v4, 4: business_v4_to_v5}
RESOLVER_MIGRATIONS = {1: resolver_v1_to_v2}
