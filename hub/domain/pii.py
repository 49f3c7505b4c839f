"""Personal data (个人信息): keyed hashing and masking.

Resident ID numbers (居民身份证号), suspects' and legal representatives' names
never leave a connector in clear. A keyed hash (HMAC-SHA256 with the hub's
secret key) lets the hub link the same person across records without being
reversible by anyone who lacks the key; a plain hash of an 18-character ID
number could be brute-forced.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

from stdnum.cn import ric

MASK = "＊＊"


class PersonalDataHasher:
    def __init__(self, key: str) -> None:
        self._key = key.encode("utf-8")

    def ref(self, value: str) -> str:
        """A stable, non-reversible reference to one person-identifying value."""
        canonical = unicodedata.normalize("NFKC", value).strip().upper()
        digest = hmac.new(self._key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"pii:{digest[:24]}"


_SPLIT = re.compile(r"[、,，;；/\s]+")


def split_people(cell: str) -> list[str]:
    """Several suspects or ID numbers in one cell, separated the usual ways."""
    return [p for p in _SPLIT.split(cell.strip()) if p]


_RIC_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


def scrub(text: str | None, names: list[str]) -> str | None:
    """Remove known personal names and any valid resident ID number from free
    text (a case name often embeds the suspect's name: '张某某生产、销售有毒、有害食品案')."""
    if not text:
        return text
    for name in sorted(names, key=len, reverse=True):
        if len(name) >= 2:
            text = text.replace(name, MASK)
    return _RIC_CANDIDATE.sub(lambda m: MASK if ric.is_valid(m.group()) else m.group(), text)
