"""Forms of a kommune's own pages: the EHR (EPJ) it runs and its planned switch."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from tenants.models import Organisation, Product


class EpjProductField(forms.ModelChoiceField):  # type: ignore[type-arg]
    """An EPJ product, named with its vendor (and Epic, which decides some services)."""

    def label_from_instance(self, obj: Any) -> str:
        label = f"{obj.name} ({obj.vendor.name})"
        return f"{label}, Epic" if obj.is_epic else label


def _epj_products() -> Any:
    return (
        Product.objects.filter(system_type=Product.SystemType.EPJ)
        .select_related("vendor")
        .order_by("name", "vendor__name")
    )


class EpjForm(forms.Form):
    """Field names are the service's (``kommune_epj_set``), so its errors land beside them."""

    epj_product = EpjProductField(
        queryset=Product.objects.none(),
        required=False,
        label=_("The EPJ you use now"),
        empty_label=_("Not recorded"),
    )
    switch_product = EpjProductField(
        queryset=Product.objects.none(),
        required=False,
        label=_("The EPJ you switch to"),
        empty_label=_("No switch planned"),
        help_text=_(
            "As agreed with the vendor. Leave empty, with no date, if no switch is planned."
        ),
    )
    switch_date = forms.DateField(
        required=False,
        label=_("Switch date"),
        help_text=_("The day the new EPJ is taken into use."),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("epj_product", "switch_product"):
            self.fields[name].queryset = _epj_products()  # type: ignore[attr-defined]

    @classmethod
    def initial_of(cls, kommune: Organisation) -> dict[str, Any]:
        return {
            "epj_product": kommune.epj_product_id,
            "switch_product": kommune.epj_switch_product_id,
            "switch_date": kommune.epj_switch_date,
        }


def recommendation(switch_date: datetime.date | None) -> tuple[str, list[str]]:
    """NHN's advice for the switch (vendor webinar of 11 December 2025): a heading and its
    paragraphs, by the year of the planned switch."""
    if switch_date is None:
        return (
            str(_("No switch planned")),
            [
                str(
                    _(
                        "If you use VKP today, you keep it until today's VKP is wound down. A "
                        "kommune that wants VKP and does not switch EPJ within reasonable time "
                        "(2026/2027) can join NHN's onboarding."
                    )
                ),
                str(
                    _(
                        "Record the switch here as soon as you have agreed it with your vendor: "
                        "NHN plans from this overview."
                    )
                ),
            ],
        )
    if switch_date.year <= 2026:
        return (
            str(_("Switching in 2026: use the new information services")),
            [
                str(
                    _(
                        "NHN recommends that a kommune switching EPJ in 2026 goes for the new "
                        "information services, not VKP. No integration is built from today's "
                        "VKP to new EPJ versions."
                    )
                ),
                str(
                    _(
                        "If you have VKP today, you lose VKP functionality for a while after the "
                        "switch, until the services are open and your EPJ vendor uses them. "
                        "Delegate the services to your vendors early, so they can start as soon "
                        "as they are ready."
                    )
                ),
            ],
        )
    return (
        str(_("Switching in 2027 or later: VKP in the meantime")),
        [
            str(
                _(
                    "If you have VKP today, NHN will consider integration with VKP until you "
                    "switch. If you do not have VKP, NHN will consider VKP onboarding and "
                    "integration with VKP."
                )
            ),
            str(
                _(
                    "Contact NHN's customer centre (kundesenter@nhn.no) with «VKP» in the "
                    "subject and a short description of your situation."
                )
            ),
        ],
    )
