from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from tenants.validators import orgnr_check_digit, validate_orgnr


@pytest.mark.parametrize(
    "orgnr",
    [
        "994598759",  # Norsk helsenett SF
        "958935420",  # Oslo kommune: remainder 0 gives check digit 0
        "942110464",  # Trondheim kommune
        "964338531",  # Bergen kommune
        "910000004",
    ],
)
def test_real_organisation_numbers_are_accepted(orgnr: str) -> None:
    validate_orgnr(orgnr)


def test_a_wrong_check_digit_is_refused_with_its_reason() -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_orgnr("994598758")
    assert excinfo.value.code == "orgnr_check_digit"
    assert "kontrollsifferet er feil" in excinfo.value.messages[0]  # bokmål first


def test_a_number_whose_computed_check_digit_is_10_is_invalid() -> None:
    # 4 x weight 3 = 12; 12 mod 11 = 1; 11 - 1 = 10, which is no digit.
    assert orgnr_check_digit("00000040") is None
    for last in "0123456789":
        with pytest.raises(ValidationError) as excinfo:
            validate_orgnr(f"00000040{last}")
        assert excinfo.value.code == "orgnr_no_check_digit"


def test_remainder_zero_gives_check_digit_zero() -> None:
    assert orgnr_check_digit("95893542") == 0


@pytest.mark.parametrize("orgnr", ["99459875", "9945987590", "", "994 598 759"])
def test_wrong_length_is_refused(orgnr: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_orgnr(orgnr)
    assert excinfo.value.code == "orgnr_format"


@pytest.mark.parametrize("orgnr", ["99459875a", "ABCDEFGHI", "９９４５９８７５９"])
def test_letters_and_non_ascii_digits_are_refused(orgnr: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_orgnr(orgnr)
    assert excinfo.value.code == "orgnr_format"


def test_nhn_synthetic_numbers_pass_only_when_strict_checking_is_off() -> None:
    with pytest.raises(ValidationError):
        validate_orgnr("314159265")
    with override_settings(TILGANG_STRICT_ORGNR=False):
        validate_orgnr("314159265")
        with pytest.raises(ValidationError):  # the shape is still checked
            validate_orgnr("31415926x")
