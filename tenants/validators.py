"""Norwegian organisation numbers (organisasjonsnummer) and kommune numbers."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

ORGNR_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


def orgnr_check_digit(first_eight: str) -> int | None:
    """The mod-11 check digit of the first eight digits; None where none exists (a computed 10)."""
    remainder = sum(int(d) * w for d, w in zip(first_eight, ORGNR_WEIGHTS, strict=True)) % 11
    if remainder == 0:
        return 0
    check = 11 - remainder
    return None if check == 10 else check


def validate_orgnr(value: str) -> None:
    """Nine digits whose last is the mod-11 check digit; the check is skipped when strict is off.

    ``TILGANG_STRICT_ORGNR = False`` admits NHN's synthetic test numbers such as 314159265, which
    have the right shape but not the right check digit.
    """
    if len(value) != 9 or not value.isascii() or not value.isdigit():
        raise ValidationError(
            _("An organisation number has exactly nine digits (got %(value)s)."),
            code="orgnr_format",
            params={"value": value},
        )
    if not settings.TILGANG_STRICT_ORGNR:
        return
    check = orgnr_check_digit(value[:8])
    if check is None:
        raise ValidationError(
            _("%(value)s is not a valid organisation number: no check digit exists for it."),
            code="orgnr_no_check_digit",
            params={"value": value},
        )
    if check != int(value[8]):
        raise ValidationError(
            _("%(value)s is not a valid organisation number: the check digit is wrong."),
            code="orgnr_check_digit",
            params={"value": value},
        )


def validate_kommunenummer(value: str) -> None:
    if len(value) != 4 or not value.isascii() or not value.isdigit():
        raise ValidationError(
            _("A kommune number has exactly four digits (got %(value)s)."),
            code="kommunenummer_format",
            params={"value": value},
        )


def orgnr_from(number: int) -> str:
    """The first valid organisation number at or after the eight digits of ``number`` (for demo,
    test and benchmark data)."""
    base = number
    while True:
        check = orgnr_check_digit(f"{base:08d}")
        if check is not None:
            return f"{base:08d}{check}"
        base += 1
