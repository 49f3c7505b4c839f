"""Business-name normalisation (企业名称规范化).

Agencies write the same name with full-width or half-width brackets, stray
spaces and full-width letters. NFKC folds widths (（ → (, Ａ → A), then the
remaining bracket variants and all white space are folded. Company-form
variants (有限公司 vs 有限责任公司) and branches are the entity-resolution
work's concern, not this provisional key's.
"""
from __future__ import annotations

import re
import unicodedata

_BRACKETS = str.maketrans({"【": "(", "】": ")", "〔": "(", "〕": ")", "[": "(", "]": ")",
                           "｛": "(", "｝": ")", "{": "(", "}": ")"})
_SPACE = re.compile(r"\s+")


def normalise_name(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name).translate(_BRACKETS)
    return _SPACE.sub("", folded).upper()
