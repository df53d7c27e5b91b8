"""The GET forms of NHN's oversight pages, which the API reads too: the EPJ transition register's
filters and the national overview's period. A value that is not one of the choices is an error
beside its field on the page and a 400 with field errors in the API."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from orders.overview import DAY_MONTHS_MAX
from orders.transition import NO_EPJ, RegisterFilters
from portal.forms import PageForm
from tenants.models import Kommune, Product
from tenants.transition import EpjPath


def field_errors(form: forms.Form) -> dict[str, list[str]]:
    """The form's errors by field, as the API answers them (400)."""
    return {field: [str(message) for message in errors] for field, errors in form.errors.items()}


class RegisterFilterForm(PageForm):
    q = forms.CharField(
        label=_("Kommune"),
        help_text=_("Name, kommune number or organisation number."),
        required=False,
        max_length=100,
    )
    county = forms.ChoiceField(label=_("County"), required=False)
    epj = forms.ChoiceField(label=_("EPJ now"), required=False)
    path = forms.ChoiceField(
        label=_("NHN's path"),
        required=False,
        choices=[("", _("Every path")), *EpjPath.choices],
    )
    vkp = forms.ChoiceField(
        label=_("Uses VKP today"),
        required=False,
        choices=[
            ("", _("Yes, no or not recorded")),
            ("yes", _("Yes")),
            ("no", _("No")),
            ("unknown", _("Not recorded")),
        ],
    )
    risk = forms.BooleanField(label=_("Only kommuner at risk"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        counties = (
            Kommune.objects.order_by("county_number")
            .values_list("county_number", "county_name")
            .distinct()
        )
        products = (
            Product.objects.filter(system_type=Product.SystemType.EPJ)
            .select_related("vendor")
            .order_by("name", "vendor__name")
        )
        self._choices("county", [("", _("Every county")), *counties])
        self._choices(
            "epj",
            [
                ("", _("Every EPJ")),
                (NO_EPJ, _("Not recorded")),
                *((str(p.pk), f"{p.name} ({p.vendor.name})") for p in products),
            ],
        )

    def _choices(self, name: str, choices: list[Any]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101 - narrows the type
        field.choices = choices

    def filters(self) -> RegisterFilters:
        """The valid filters (only after ``is_valid``; an invalid one filters nothing)."""
        data = getattr(self, "cleaned_data", {})
        return RegisterFilters(
            q=data.get("q") or "",
            county=data.get("county") or "",
            epj=data.get("epj") or "",
            path=data.get("path") or "",
            vkp=data.get("vkp") or "",
            risk=bool(data.get("risk")),
        )


class OverviewForm(PageForm):
    """The period of the national overview's chart of grants over time."""

    INTERVALS = [("week", _("Per week")), ("day", _("Per day"))]

    months = forms.TypedChoiceField(
        label=_("Period"),
        required=False,
        coerce=int,
        empty_value=None,
        initial="6",
        choices=[
            ("3", _("The last 3 months")),
            ("6", _("The last 6 months")),
            ("12", _("The last 12 months")),
            ("24", _("The last 24 months")),
        ],
    )
    interval = forms.ChoiceField(
        label=_("Points"), required=False, choices=INTERVALS, initial="week"
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("interval") == "day" and (data.get("months") or 6) > DAY_MONTHS_MAX:
            self.add_error(
                "interval",
                _("Points per day go back at most %(months)s months: choose per week.")
                % {"months": DAY_MONTHS_MAX},
            )
        return data

    def period(self) -> tuple[int, str]:
        """The months and interval asked for, or the defaults (6 months, per week)."""
        data = getattr(self, "cleaned_data", {})
        return int(data.get("months") or 6), data.get("interval") or "week"
