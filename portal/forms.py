"""Forms render as Designsystemet fields: the error beside the field (Django ties it to the input
with aria-describedby="<id>_error", the id templates/django/forms/field.html gives the message)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.renderers import TemplatesSetting
from django.utils.translation import gettext_lazy as _

from portal.exceptions import Conflict
from portal.input_guard import CONTROL_REFUSALS

#: Widgets drawn by Designsystemet as choices (a box or a dot before each label), not as a field.
_CHOICE_WIDGETS = (forms.CheckboxInput, forms.RadioSelect, forms.CheckboxSelectMultiple)


class PageForm(forms.Form):
    """Every form of the portal's pages derives from this (``tests/portal/test_hostile_input.py``
    checks it). Django's cleaning, then the error beside each field whose posted value held a
    control character (``portal.input_guard`` took it out and named the field): the form is not
    valid, and is drawn again with the rest of what was typed."""

    def full_clean(self) -> None:
        super().full_clean()
        refusals: dict[str, str] = getattr(self.data, CONTROL_REFUSALS, {})
        if not refusals or not self.is_bound or not hasattr(self, "cleaned_data"):
            return
        for name in self.fields:
            if (message := refusals.get(self.add_prefix(name))) is not None:
                self.add_error(name, message)


class BoundField(forms.BoundField):
    def build_widget_attrs(
        self, attrs: dict[str, Any], widget: forms.Widget | None = None
    ) -> dict[str, Any]:
        attrs = super().build_widget_attrs(attrs, widget)
        widget = widget or self.field.widget
        if not isinstance(widget, (*_CHOICE_WIDGETS, forms.HiddenInput)):
            attrs["class"] = " ".join(filter(None, [str(attrs.get("class") or ""), "ds-input"]))
        return attrs


class FormRenderer(TemplatesSetting):
    """Django's renderer, reading templates/django/forms/ first, with our bound fields."""

    bound_field_class = BoundField


def service_errors_add(
    form: forms.Form,
    error: ValidationError | PermissionDenied | Conflict,
    fields: dict[str, str] | None = None,
) -> None:
    """Put a service's refusal on the form, so the page says what the API says, in the same
    words. A ValidationError's errors go beside the field each names (``fields`` maps a service's
    name to the form's where they differ), otherwise above the form; a refusal of the whole change
    (PermissionDenied) or a clash with what is stored (Conflict) goes above the form."""
    if isinstance(error, Conflict):
        form.add_error(None, error.message)
        return
    if isinstance(error, PermissionDenied):
        form.add_error(None, str(error) or _("You may not do this."))
        return
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    fields = fields or {}
    for name, errors in error.error_dict.items():
        field = fields.get(name, name)
        form.add_error(field if field in form.fields else None, errors)
