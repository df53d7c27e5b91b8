"""Forms of a kommune's own pages: the EHR (EPJ) it runs and its planned switch."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from portal.forms import PageForm
from tenants.models import Organisation, Product
from tenants.transition import EpjPath, epj_path


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


#: The answers to "do you use VKP today?", as the form sends them ("" is not said).
VKP_CHOICES = [("yes", _("Yes")), ("no", _("No")), ("", _("Not recorded"))]


def vkp_answer(uses_vkp: bool | None) -> str:
    """The form's value for a kommune's ``uses_vkp``."""
    return "" if uses_vkp is None else ("yes" if uses_vkp else "no")


class EpjForm(PageForm):
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
    uses_vkp = forms.TypedChoiceField(
        required=False,
        label=_("Do you use VKP today?"),
        help_text=_(
            "VKP is NHN's welfare-technology hub (Velferdsteknologisk knutepunkt). NHN's advice "
            "for a switch in a later year depends on it."
        ),
        choices=VKP_CHOICES,
        coerce=lambda value: value == "yes",
        empty_value=None,
        widget=forms.RadioSelect,
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
            "uses_vkp": vkp_answer(kommune.uses_vkp),
        }


def recommendation(
    switch_date: datetime.date | None, uses_vkp: bool | None = None
) -> tuple[str, list[str]]:
    """NHN's advice for the switch (vendor webinar of 11 December 2025): a heading and its
    paragraphs, for the path ``tenants.transition.epj_path`` gives the switch."""
    path = epj_path(switch_date=switch_date, uses_vkp=uses_vkp)
    contact = str(
        _(
            "Contact NHN's customer centre (kundesenter@nhn.no) with «VKP» in the "
            "subject and a short description of your situation."
        )
    )
    if switch_date is None or path == EpjPath.NO_SWITCH:
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
    year = {"year": switch_date.year}
    if path == EpjPath.NEW_SERVICES:
        return (
            str(_("Switching in %(year)s: use the new information services") % year),
            [
                str(
                    _(
                        "NHN recommends that a kommune switching EPJ in %(year)s goes for the "
                        "new information services, not VKP. No integration is built from "
                        "today's VKP to new EPJ versions."
                    )
                    % year
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
    if path == EpjPath.INTEGRATE_VKP:
        return (
            str(_("Switching in %(year)s, with VKP: integration with VKP") % year),
            [
                str(
                    _(
                        "You use VKP today, so NHN will consider integrating your EPJ with VKP "
                        "until you switch."
                    )
                ),
                contact,
            ],
        )
    if path == EpjPath.CONSIDER_VKP:
        return (
            str(_("Switching in %(year)s, without VKP: consider VKP onboarding") % year),
            [
                str(
                    _(
                        "You do not use VKP today, so NHN will consider VKP onboarding and "
                        "integration with VKP until you switch."
                    )
                ),
                contact,
            ],
        )
    return (
        str(_("Switching in %(year)s: VKP in the meantime") % year),
        [
            str(
                _(
                    "If you have VKP today, NHN will consider integration with VKP until you "
                    "switch. If you do not have VKP, NHN will consider VKP onboarding and "
                    "integration with VKP."
                )
            ),
            str(_("Tell NHN below whether you use VKP today, so the advice can be precise.")),
            contact,
        ],
    )
