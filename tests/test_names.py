"""Business-name normalisation: properties."""
from __future__ import annotations

from hypothesis import given, strategies as st

from hub.domain.names import normalise_name

# Names as agencies write them: CJK, ASCII letters and digits, brackets, spaces.
CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
PART = st.text(st.one_of(CJK, st.sampled_from("ABCXYZabc0123456789")), min_size=1, max_size=8)
FULL_WIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}  # ! .. ~ -> ！ .. ～


@given(st.text())
def test_normalisation_is_idempotent(name: str) -> None:
    once = normalise_name(name)
    assert normalise_name(once) == once


@given(PART, PART, st.sampled_from(["()", "（）", "【】", "〔〕", "[]"]), st.sampled_from(["", " ", "\u3000", "  "]))
def test_bracket_width_and_space_variants_are_equal(head: str, place: str, brackets: str, space: str) -> None:
    plain = f"{head}({place})有限公司"
    variant = f"{space}{head}{space}{brackets[0]}{place}{brackets[1]}有限公司{space}"
    wide = "".join(FULL_WIDTH.get(c, c) for c in plain)
    assert normalise_name(variant) == normalise_name(plain) == normalise_name(wide)


@given(PART)
def test_company_form_variants_are_equal_and_branches_stay_distinct(head: str) -> None:
    assert normalise_name(f"{head}有限责任公司") == normalise_name(f"{head}有限公司")
    assert normalise_name(f"{head}有限公司安阳分公司") != normalise_name(f"{head}有限公司")
    assert normalise_name(f"{head}股份有限公司") != normalise_name(f"{head}有限公司")


def test_traditional_characters_fold_to_simplified() -> None:
    assert normalise_name("安陽市文峰區鑫源肉類加工有限責任公司") == normalise_name("安阳市文峰区鑫源肉类加工有限公司")
