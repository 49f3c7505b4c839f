"""Business-name normalisation (企业名称规范化).

Agencies write one name many ways: full-width or half-width brackets and
letters, stray spaces, traditional characters, 有限责任公司 for 有限公司. The
normalised form folds all of these: NFKC (（ → (, Ａ → A), traditional to
simplified (OpenCC's t2s tables), the remaining bracket variants, all white
space, upper case, and the company form 有限责任公司 → 有限公司 (the same legal
form, written both ways). What it keeps apart on purpose: a branch
(……分公司) and its parent, and 股份有限公司 (a different legal form).
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_BRACKETS = str.maketrans({"【": "(", "】": ")", "〔": "(", "〕": ")", "[": "(", "]": ")",
                           "｛": "(", "｝": ")", "{": "(", "}": ")", "〈": "(", "〉": ")"})
_SPACE = re.compile(r"\s+")
_COMPANY_FORMS = (("有限责任公司", "有限公司"),)


@lru_cache(maxsize=1)
def _to_simplified() -> object:
    import opencc  # a C++ library: loaded on first use, not at import

    return opencc.OpenCC("t2s")


def _fold(name: str) -> str:
    text = _to_simplified().convert(unicodedata.normalize("NFKC", name))  # type: ignore[attr-defined]
    text = _SPACE.sub("", unicodedata.normalize("NFKC", text).translate(_BRACKETS)).upper()
    for variant, canonical in _COMPANY_FORMS:
        text = text.replace(variant, canonical)
    return text


@lru_cache(maxsize=65536)
def normalise_name(name: str) -> str:
    # Removing spaces or upper-casing can make new NFKC compositions (a
    # space before a combining mark): fold until nothing changes.
    text = _fold(name)
    for _ in range(8):  # bounded: a pathological input must not hang a worker
        folded = _fold(text)
        if folded == text:
            break
        text = folded
    return text
