import pytest

from hub.domain.identifiers import (InvalidIdentifier, region, validate_licence,
                                    validate_registration_number, validate_uscc)
from hub.devtools.samples import make_uscc


def test_valid_uscc_is_returned_compact() -> None:
    code = make_uscc("91", "410502", "MA3XK1Q2Y")
    assert validate_uscc(f" {code[:6]} {code[6:]} ") == code


def test_wrong_check_character_is_rejected() -> None:
    code = make_uscc("91", "410502", "MA3XK1Q2Y")
    wrong = code[:-1] + ("1" if code[-1] != "1" else "2")
    with pytest.raises(InvalidIdentifier, match="checksum"):
        validate_uscc(wrong)


def test_stdnum_accepts_123456789012345678_but_we_do_not() -> None:
    from stdnum.cn import uscc

    assert uscc.is_valid("123456789012345678")
    with pytest.raises(InvalidIdentifier, match="administrative-division"):
        validate_uscc("123456789012345678")


@pytest.mark.parametrize("authority_type, reason", [("B1", "registering-authority"),
                                                    ("94", "entity type"), ("Y2", "entity type")])
def test_authority_and_type_codes_are_checked(authority_type: str, reason: str) -> None:
    from stdnum.cn import uscc

    body = f"{authority_type}410502MA3XK1Q2Y"
    code = body + uscc.calc_check_digit(body)
    with pytest.raises(InvalidIdentifier, match=reason):
        validate_uscc(code)


def test_authority_letters_that_stdnum_refuses_are_accepted() -> None:
    # stdnum wants eight leading digits; GB 32100 authority Y ("other") issues letters.
    code = make_uscc("Y1", "410502", "MA3XK1Q2Y")
    assert validate_uscc(code) == code
    with pytest.raises(InvalidIdentifier, match="checksum"):
        validate_uscc(code[:-1] + ("1" if code[-1] != "1" else "2"))


def test_division_code_must_exist() -> None:
    with pytest.raises(InvalidIdentifier, match="no such administrative-division code"):
        validate_uscc(make_uscc("91", "990101", "MA3XK1Q2Y"))


def test_regions_have_current_names() -> None:
    assert region("410500").name == "河南省安阳市"
    assert region("410502").name == "河南省安阳市文峰区"
    assert region("140700").name == "山西省晋中市"
    assert region("110105").name == "北京市朝阳区"
    assert region("999999") is None
    assert region("41050") is None


def test_licence_and_registration_numbers() -> None:
    assert validate_licence("sc10441050200123") == "SC10441050200123"
    assert validate_licence("JY 14105030009876") == "JY14105030009876"
    with pytest.raises(InvalidIdentifier):
        validate_licence("SC1044105020012")
    assert validate_registration_number("410502000012345") == "410502000012345"
    with pytest.raises(InvalidIdentifier):
        validate_registration_number("41050200001234X")
