"""Personal data (个人信息): keyed tokens in place of people.

What counts as personal here: resident ID numbers (居民身份证号, 18 or 15
characters), mobile and landline numbers, and the names of the people a
record names (suspects, legal representatives, natural persons as parties,
complainants, informants). None leaves a connector in clear, and none
reaches a topic from a team's feedback.

A scrubbed value becomes a keyed token, ``[pii:<24 hex>]``: HMAC-SHA256 with
the hub's secret key of the value's canonical form, so the same person shows
the same token in every record and every field (an ID typed with spaces or
full-width digits included) while nobody without the key can reverse it; a
plain hash of an 18-character ID could be brute-forced in hours.

ID and telephone numbers are found by their form, not their validity: an ID
with a checksum typo, or from a division python-stdnum's table lacks, is still
an ID. Names cannot be found by form; the record's own personal columns say
which names to look for, and feedback is checked against the keyed tokens of
the people the business's records named (``names_in``).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import traceback
import unicodedata
from pathlib import Path
from typing import Collection, Iterable

# Digits as clerks type them: ASCII or full-width, with a space, a hyphen or
# an ideographic space between groups.
_D = "[0-9０-９]"
_SEP = "[ \u3000\\-－]?"
_NOT_ALNUM_BEFORE = "(?<![0-9０-９A-Za-zＡ-Ｚａ-ｚ])"
_NOT_ALNUM_AFTER = "(?![0-9０-９A-Za-zＡ-Ｚａ-ｚ])"
_ID18 = f"{_D}(?:{_SEP}{_D}){{16}}{_SEP}[0-9０-９XxＸｘ]"
_ID15 = f"{_D}(?:{_SEP}{_D}){{14}}"
# Mainland mobiles (1[3-9] + 9 digits), optionally +86; landlines with their
# area code (0 + 2-3 digits, then 7-8 digits).
_MOBILE = f"(?:(?:\\+|＋)?(?:86|８６){_SEP})?[1１][3-9３-９]{_D}(?:{_SEP}{_D}){{8}}"
_LANDLINE = f"(?:[(（][0０]{_D}{{2,3}}[)）]|[0０]{_D}{{2,3}}{_SEP}){_D}(?:{_SEP}{_D}){{6,7}}"
_BY_FORM = re.compile(f"{_NOT_ALNUM_BEFORE}(?:{_ID18}|{_ID15}|{_MOBILE}|{_LANDLINE}){_NOT_ALNUM_AFTER}")
_SEPARATORS = re.compile(r"[\s\-()（）+＋]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff]{2,}")
_TOKEN = re.compile(r"\[pii:[0-9a-f]{24}\]")
_SPLIT = re.compile(r"[、,，;；/\s]+")
_DIGITS_ONLY = re.compile(r"[0-9０-９XxＸｘ.\-－]+")

NAME_CHARS = (2, 3, 4)  # 王五, 王建国, 欧阳建国


class PersonalDataHasher:
    def __init__(self, key: str) -> None:
        self._key = key.encode("utf-8")

    def ref(self, value: str) -> str:
        """A stable, non-reversible reference to one person-identifying value."""
        digest = hmac.new(self._key, canonical(value).encode("utf-8"), hashlib.sha256).hexdigest()
        return f"pii:{digest[:24]}"

    def token(self, value: str) -> str:
        """The reference as it stands in free text."""
        return f"[{self.ref(value)}]"

    def scrub(self, text: str | None, names: Iterable[str] = ()) -> str | None:
        """``text`` with the given names (wherever they recur) and every
        ID-like or telephone number replaced by its token."""
        if not text:
            return text
        for name in sorted({n for n in names if len(n) >= 2}, key=len, reverse=True):
            if name in text:
                text = _replace_outside_tokens(text, name, self.token(name))
        return _BY_FORM.sub(lambda m: self.token(m.group()), text)

    def names_in(self, text: str, known: Collection[str]) -> list[str]:
        """The names in ``text`` whose reference is among ``known`` (the
        people a business's records named): every run of 2 to 4 Chinese
        characters is tried, so no list of names in clear is needed."""
        if not known:
            return []
        found = []
        for run in _CJK_RUN.findall(text):
            for size in NAME_CHARS:
                for start in range(len(run) - size + 1):
                    piece = run[start:start + size]
                    if self.ref(piece) in known:
                        found.append(piece)
        return found

    def scrub_feedback(self, text: str | None, known: Collection[str]) -> str | None:
        """A team's note or outcome: the business's people and anything
        ID- or phone-like become tokens."""
        if not text:
            return text
        return self.scrub(text, self.names_in(text, known))

    def desk(self, by: str | None) -> str | None:
        """Who answered (``--by``): asked for a desk, but a person's name is
        what people type, so it is kept only as a token; the same desk shows
        the same token."""
        return by if by is None or is_token(by) else self.token(by)


def describe(exc: BaseException) -> str:
    """An exception for a log line: its class and where it was raised, never
    its message, which may quote the personal data it choked on."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


def canonical(value: str) -> str:
    """One spelling per value: NFKC (full-width digits and letters), upper
    case, and for a number written in groups, the groups joined."""
    folded = unicodedata.normalize("NFKC", value).strip().upper()
    joined = _SEPARATORS.sub("", folded)
    if not (joined.isascii() and joined[:-1].isdigit()):
        return folded
    return joined[2:] if len(joined) == 13 and joined.startswith("861") else joined  # +86 138…: the mobile


def split_people(cell: str) -> list[str]:
    """Several suspects or ID numbers in one cell, separated the usual ways.
    An ID or telephone number is one value however it is spaced
    (``4105 0219 8001 0100 38``): it is taken whole before the rest is
    split, and what is left of digits alone is no person (its fragments,
    scrubbed as names, mangled a region code and amounts in the same row)."""
    numbers = [m.group() for m in _BY_FORM.finditer(cell)]
    rest = _BY_FORM.sub(" ", cell)
    return numbers + [p for p in _SPLIT.split(rest.strip()) if p and not _DIGITS_ONLY.fullmatch(p)]


def is_token(text: str) -> bool:
    return bool(_TOKEN.fullmatch(text))


def _replace_outside_tokens(text: str, name: str, token: str) -> str:
    """Replace ``name`` except inside tokens already there (a name of hex letters cannot
    occur in one, but a short name could be the tail of a longer one's token)."""
    parts = _TOKEN.split(text)
    tokens = _TOKEN.findall(text)
    out = [parts[0].replace(name, token)]
    for tok, part in zip(tokens, parts[1:]):
        out += [tok, part.replace(name, token)]
    return "".join(out)
