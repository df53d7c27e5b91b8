"""Filters of the notification templates."""

from __future__ import annotations

import datetime
from typing import Any

from django import template
from django.utils import translation

register = template.Library()


@register.filter
def localized(value: Any) -> Any:
    """A value given in each language (``{"nb": ..., "en": ...}``) in the active one; any
    other value as it is."""
    if isinstance(value, dict):
        language = (translation.get_language() or "nb").split("-")[0]
        return value.get(language) or value.get("nb") or next(iter(value.values()), "")
    return value


@register.filter
def as_date(value: Any) -> Any:
    """An ISO date (as params keep dates) as a date, for the ``date`` filter."""
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value[:10])
        except ValueError:
            return value
    return value
