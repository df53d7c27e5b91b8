"""Template filters for how Tilgang shows things: organisation numbers in groups."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def orgnr(value: object) -> str:
    """958935420 -> "958 935 420", as UI.md shows organisation numbers."""
    digits = str(value or "")
    if len(digits) != 9 or not digits.isdigit():
        return digits
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"
