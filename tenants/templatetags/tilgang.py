"""Template filters for how Tilgang shows things: organisation numbers in groups."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import conditional_escape as escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def orgnr(value: object) -> str:
    """958935420 -> "958 935 420", as UI.md shows organisation numbers."""
    digits = str(value or "")
    if len(digits) != 9 or not digits.isdigit():
        return digits
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


# --- Choice widgets: their options written in Python ---------------------------------------------
# A choice widget's options are written here rather than in a template loop: the kommune lists
# have 357 options, and the template engine took about 0.2 ms per option (some twenty lookups
# each), 60-80 ms of a vendor's order page. The widget templates
# (templates/django/forms/widgets/) call these; the markup is the same as theirs was.


def _option_attrs(attrs: dict[str, Any]) -> str:
    """`` name="value"`` for each attribute, a bare ``name`` for True, nothing for False or
    None: as Django's ``attrs.html`` writes them. Escaped."""
    return "".join(
        f" {escape(name)}" if value is True else f' {escape(name)}="{escape(str(value))}"'
        for name, value in attrs.items()
        if value is not False and value is not None
    )


@register.simple_tag
def select_options(widget: dict[str, Any]) -> SafeString:
    """A select's ``<option>`` elements (in their ``<optgroup>``, when grouped)."""
    parts: list[str] = []
    for group_name, options, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{escape(group_name)}">')
        parts.extend(
            f'\n  <option value="{escape(str(option["value"]))}"'
            f"{_option_attrs(option['attrs'])}>{escape(option['label'])}</option>"
            for option in options
        )
        if group_name:
            parts.append("\n  </optgroup>")
    return mark_safe("".join(parts))  # noqa: S308 - every value is escaped above


@register.simple_tag
def choice_inputs(widget: dict[str, Any]) -> SafeString:
    """Checkboxes or radio buttons, each a Designsystemet field with its label."""
    parts: list[str] = []
    for _group, options, _index in widget["optgroups"]:
        for option in options:
            value = option["value"]
            attrs = option["attrs"]
            label = ""
            if option["wrap_label"]:
                target = f' for="{escape(attrs["id"])}"' if attrs.get("id") else ""
                label = (
                    f'<label class="ds-label" data-weight="regular"{target}>'
                    f"{escape(option['label'])}</label>"
                )
            given = "" if value is None else f' value="{escape(str(value))}"'
            parts.append(
                f'\n  <div class="ds-field"><input class="ds-input" type="{escape(option["type"])}"'
                f' name="{escape(option["name"])}"{given}{_option_attrs(attrs)}>{label}</div>'
            )
    return mark_safe("".join(parts))  # noqa: S308 - every value is escaped above
