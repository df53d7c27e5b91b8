"""Forms of NHN's pages: the matrix's filters and the catalogue's opening days."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from orders.models import Service
from portal.forms import PageForm
from tenants.models import Environment, Organisation

#: The matrix's statuses: each a colour (a Designsystemet tag) and words, never colour alone.
#: ``waiting`` counts order items that wait (no grant yet); the others count grants.
MATRIX_STATUSES: dict[str, tuple[Any, str]] = {
    "active": (_("Active"), "success"),
    "setting_up": (_("Being set up"), "info"),
    "failed": (_("Failed"), "danger"),
    "waiting": (_("Waiting"), "warning"),
    "revoked": (_("Revoked"), "neutral"),
}


class FilterForm(PageForm):
    """The GET filters of the national matrix and its grants list. Every field is optional; a
    value that is not one of the choices is left out (the field says so)."""

    vendor = forms.ChoiceField(label=_("Vendor"), required=False)
    environment = forms.ChoiceField(
        label=_("Environment"),
        required=False,
        choices=[("", _("Test and production")), *Environment.choices],
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Every status"))]
        + [(key, label) for key, (label, _colour) in MATRIX_STATUSES.items()],
    )

    def __init__(self, *args: Any, vendors: list[Organisation], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        vendor_field = self.fields["vendor"]
        assert isinstance(vendor_field, forms.ChoiceField)  # noqa: S101 - narrows the type
        vendor_field.choices = [("", _("Every vendor")), *((v.orgnr, v.name) for v in vendors)]

    def value(self, name: str) -> str:
        """The filter, or '' when it was left out or is not one of the choices."""
        self.is_valid()
        return str(self.cleaned_data.get(name) or "")

    def flag(self, name: str) -> bool:
        self.is_valid()
        return bool(self.cleaned_data.get(name))


class MatrixFilterForm(FilterForm):
    """The matrix's filters: a kommune by name or number, and only kommuner with something."""

    q = forms.CharField(label=_("Kommune name or number"), required=False, max_length=100)
    only = forms.BooleanField(label=_("Only kommuner with access or orders"), required=False)

    field_order = ["q", "vendor", "environment", "status", "only"]


class GrantsFilterForm(FilterForm):
    """The matrix's filters, and the kommune and service of one of its cells."""

    def __init__(
        self, *args: Any, kommuner: list[Organisation], services: list[Service], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields = {
            "kommune": forms.ChoiceField(
                label=_("Kommune"),
                required=False,
                choices=[("", _("Every kommune")), *((k.orgnr, k.name) for k in kommuner)],
            ),
            "service": forms.ChoiceField(
                label=_("Service"),
                required=False,
                choices=[("", _("Every service")), *((s.code, s.name) for s in services)],
            ),
            **self.fields,
        }


class AvailabilityForm(PageForm):
    """The day a service opens in an environment. The form's second button (``action=clear``)
    removes the day instead: the service is then not planned there."""

    CLEAR = "clear"

    available_from = forms.DateField(
        label=_("Opens on"),
        required=False,
        help_text=_("Orders that wait for the service go on by themselves on this day."),
        input_formats=["%Y-%m-%d", "%d.%m.%Y"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    @property
    def clearing(self) -> bool:
        return self.data.get("action") == self.CLEAR

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        missing = not self.clearing and not cleaned.get("available_from")
        if missing and "available_from" not in self.errors:  # not when it could not be read
            self.add_error(
                "available_from",
                _("Give the day the service opens, or remove the date to close it."),
            )
        return cleaned

    @property
    def day(self) -> datetime.date | None:
        """The day to set (None clears it); only after ``is_valid``."""
        if self.clearing:
            return None
        day: datetime.date | None = self.cleaned_data.get("available_from")
        return day
