"""Norwegian organisation numbers (organisasjonsnummer) and kommune numbers."""

from __future__ import annotations

import unicodedata

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


#: Characters no name may hold. Bidi controls (U+202E RIGHT-TO-LEFT OVERRIDE before "moc.lve"
#: makes it read "evl.com"), zero-width and other format characters (Cf) show a
#: name other than the one stored; control (Cc), private-use (Co), surrogate (Cs) and unassigned
#: (Cn) code points and line or paragraph separators (Zl, Zp) have no place in a name either.
_REFUSED_IN_NAMES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
#: Scripts whose letters pass for Latin ones: "Helse" with its "e" written as Cyrillic U+0435.
_LOOKALIKE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")


def _script(character: str) -> str | None:
    name = unicodedata.name(character, "")
    return next((script for script in _LOOKALIKE_SCRIPTS if name.startswith(script)), None)


def name_normalise(value: str) -> str:
    """``value`` in Unicode's composed form (NFC): "Å" typed as "A" and a combining ring above
    is the one character "Å", so both spellings of a name are one name, stored one way."""
    return unicodedata.normalize("NFC", value)


def validate_name(value: str) -> None:
    """A name as people read it: no invisible or direction-changing characters, and no mix of
    Latin letters with Cyrillic or Greek look-alikes. Norwegian and Sámi letters (æøå, áčđŋšŧž)
    are Latin; a name wholly in another script is allowed."""
    for character in value:
        if unicodedata.category(character) in _REFUSED_IN_NAMES:
            raise ValidationError(
                _(
                    "The name contains an invisible or control character (U+%(code)04X); "
                    "use letters, digits, spaces and punctuation only."
                ),
                code="name_invisible_character",
                params={"code": ord(character)},
            )
    scripts = {script for character in value if (script := _script(character))}
    if "LATIN" in scripts and len(scripts) > 1:
        foreign = next(c for c in value if _script(c) not in (None, "LATIN"))
        raise ValidationError(
            _(
                "The name mixes Latin letters with look-alike letters of another alphabet "
                "(“%(character)s”, U+%(code)04X); write it in one alphabet."
            ),
            code="name_mixed_scripts",
            params={"character": foreign, "code": ord(foreign)},
        )
