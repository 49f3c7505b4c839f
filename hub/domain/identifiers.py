"""Business and licence identifiers.

The USCC (统一社会信用代码, GB 32100-2015) checksum is python-stdnum's; this
module adds what stdnum does not check: the registering-authority and
entity-type codes (GB 32100-2015 appendix A) and a real administrative-division
code (GB/T 2260, stdnum's ``cn/loc`` table).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from collections.abc import Callable

from stdnum import numdb
from stdnum.cn import uscc
from stdnum.exceptions import InvalidChecksum, InvalidFormat, ValidationError

# Registering authority (登记管理部门) -> the entity types (机构类别) it issues.
_AUTHORITY_TYPES: dict[str, str] = {
    "1": "1239",   # 机构编制
    "2": "19",     # 外交
    "3": "123459", # 司法行政
    "4": "19",     # 文化
    "5": "1239",   # 民政
    "6": "129",    # 旅游
    "7": "129",    # 宗教
    "8": "19",     # 工会
    "9": "123",    # 市场监督管理 (工商): 1 企业, 2 个体工商户, 3 农民专业合作社
    "A": "19",     # 中央军委改革和编制办公室
    "N": "1239",   # 农业
    "Y": "1",      # 其他
}

_LICENCE = re.compile(r"^(SC|JY)\d{14}$")
_REGISTRATION = re.compile(r"^\d{15}$")


class InvalidIdentifier(ValueError):
    """An identifier failed validation; the message says which check, never
    the value (it may be an ID number typed into the wrong column)."""


@dataclass(frozen=True)
class Region:
    code: str
    name: str


@lru_cache(maxsize=4096)
def region(code: str) -> Region | None:
    """The GB/T 2260 division named by a 6-digit code, or None if there is none.

    A province-level code (``xx0000``) or prefecture (``xxxx00``) is accepted as
    well as a county."""
    if not re.fullmatch(r"\d{6}", code):
        return None
    parts = numdb.get("cn/loc").info(code)
    if len(parts) < 2 or not parts[0][1] or not parts[1][1]:
        return None
    province = parts[0][1]["province"]
    county = _current_name(parts[1][1]["county"])
    if code[2:] == "0000":
        return Region(code, province)
    return Region(code, "".join(dict.fromkeys([province, *_prefecture(code), county])))


def _prefecture(code: str) -> list[str]:
    """A county's prefecture, by name; none for a prefecture's own code, or
    for a grouping with no name of its own (市辖区, 县)."""
    if code[4:] == "00":
        return []
    pref = numdb.get("cn/loc").info(code[:4] + "00")
    if len(pref) < 2 or not pref[1][1]:
        return []
    name = _current_name(pref[1][1]["county"])
    return [name] if name and name not in {"市辖区", "县"} else []


def _current_name(entry: str) -> str:
    """The latest of the dated names stdnum lists, e.g. '[1983-2019]桥东区,[2020-]襄都区'."""
    return re.sub(r"^\[[^\]]*\]", "", entry.split(",")[-1])


@lru_cache(maxsize=65536)
def validate_uscc(raw: str) -> str:
    """The compact, validated USCC; raises InvalidIdentifier saying what is wrong.

    Cached: exports name the same businesses over and over."""
    number = uscc.compact(raw)
    try:
        number = _checksummed(number)
    except ValidationError as exc:
        raise InvalidIdentifier(f"not a valid USCC: {exc}") from exc
    _check_issuer(number[0], number[1])
    if region(number[2:8]) is None:
        raise InvalidIdentifier("not a valid USCC: no such administrative-division code")
    return number


def _checksummed(number: str) -> str:
    """The code, its form and check digit validated; raises stdnum's ValidationError."""
    if number[:1].isalpha() and number[1:8].isdigit():
        # stdnum wants 8 leading digits, but GB 32100 also issues codes from
        # authorities A, N and Y: check the rest with stdnum's own pieces.
        if len(number) != 18 or any(c not in uscc._alphabet for c in number):
            raise InvalidFormat()
        if number[-1] != uscc.calc_check_digit(number):
            raise InvalidChecksum()
        return number
    return str(uscc.validate(number))


def _check_issuer(authority: str, kind: str) -> None:
    """The registering authority (登记管理部门) exists and issues the entity type (机构类别)."""
    types = _AUTHORITY_TYPES.get(authority)
    if types is None:
        raise InvalidIdentifier(f"not a valid USCC: unknown registering-authority code {authority!r}")
    if kind not in types:
        raise InvalidIdentifier(f"not a valid USCC: entity type {kind!r} is not issued by authority {authority!r}")


def uscc_region(number: str) -> str:
    return number[2:8]


def validate_licence(raw: str) -> str:
    """A food production (SC) or business (JY) licence number."""
    number = re.sub(r"\s", "", raw).upper()
    if not _LICENCE.match(number):
        raise InvalidIdentifier("not a food licence number (SC or JY followed by 14 digits)")
    return number


def validate_registration_number(raw: str) -> str:
    """The pre-2015 15-digit business registration number (工商注册号)."""
    number = re.sub(r"\s", "", raw)
    if not _REGISTRATION.match(number):
        raise InvalidIdentifier("not a 15-digit business registration number")
    return number


@dataclass(frozen=True)
class _Division:
    code: str
    name: str
    parent: str  # the code of the division above, "" for a province


@lru_cache(maxsize=1)
def _divisions() -> tuple[tuple[_Division, ...], dict[str, int]]:
    """Every current GB/T 2260 division (abolished names left out), from
    stdnum's table, and how many divisions carry each name."""
    found = []
    for _, province_code, _, province, prefix_rows in numdb.get("cn/loc").prefixes:
        found.append(_Division(f"{province_code}0000", province["province"], ""))
        found += _divisions_in(province_code, prefix_rows)
    counts: dict[str, int] = {}
    for d in found:
        counts[d.name] = counts.get(d.name, 0) + 1
    return tuple(found), counts


def _divisions_in(province_code: str, prefix_rows: list[Any]) -> list[_Division]:
    """A province's current prefectures and counties."""
    found = []
    prefectures = set()
    for _, rest, _, county, _ in prefix_rows:
        latest = county["county"].split(",")[-1]
        name = _current_name(latest)
        if re.match(r"^\[\d*-\d+\]", latest) or rest == "0000" or name in _NOT_PLACES:
            continue  # abolished, the province itself, or a grouping with no name of its own
        code = province_code + rest
        if rest.endswith("00"):
            prefectures.add(code)
        found.append(_Division(code, name, _parent(code, province_code, prefectures)))
    return found


def _parent(code: str, province_code: str, prefectures: set[str]) -> str:
    # A county under a 市辖区/县 grouping hangs directly under its province.
    return f"{code[:4]}00" if not code.endswith("00") and f"{code[:4]}00" in prefectures else f"{province_code}0000"


_NOT_PLACES = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})


def region_of_address(text: str) -> str | None:
    """The most specific GB/T 2260 division an address (or a name that starts
    with one) names unambiguously, as a 6-digit code, or None.

    '河南省安阳市文峰区中华路88号' -> '410502'. A county name that several
    prefectures share (鼓楼区) counts only under a prefecture or province the
    text also names; otherwise the answer stops at the level that is certain."""
    supported = _named_unambiguously(text)
    for level in _LEVELS:
        hits = {d.code for d in supported if level(d.code)}
        if hits:
            return _certain(hits)
    return None


def _named_unambiguously(text: str) -> list[_Division]:
    """The divisions the text names whose name is their own, or which it names under their parent."""
    divisions, counts = _divisions()
    named = [d for d in divisions if d.name in text]
    codes = {d.code for d in named}
    return [d for d in named if d.parent in codes or counts[d.name] == 1]


def _is_county(code: str) -> bool:
    return code[4:] != "00"


def _is_prefecture(code: str) -> bool:
    return code[2:4] != "00" and code[4:] == "00"


def _is_province(code: str) -> bool:
    return code[2:] == "0000"


_LEVELS: tuple[Callable[[str], bool], ...] = (_is_county, _is_prefecture, _is_province)  # the most specific first


def _certain(hits: set[str]) -> str | None:
    """Of the divisions a level holds: the one, or the prefecture several
    share, or None when they lie in several."""
    if len(hits) == 1:
        return hits.pop()
    parents = {h[:4] for h in hits}
    return f"{parents.pop()}00" if len(parents) == 1 else None


def within(code: str, region_code: str) -> bool:
    """Whether division ``code`` lies inside ``region_code`` (a county, prefecture or province)."""
    prefix = region_code[:2] if region_code[2:] == "0000" else region_code[:4] if region_code[4:] == "00" \
        else region_code
    return code.startswith(prefix)
