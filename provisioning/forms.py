"""Forms of the provisioning jobs page and the data-access page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from orders.models import ProvisioningJob, Service
from portal.forms import PageForm
from tenants.forms.fields import OrganisationChoiceField, client_filter, vendor_filter
from tenants.models import Organisation


class JobFilterForm(PageForm):
    """Which jobs to list: by status, by client (name or client_id) and by vendor."""

    status = forms.ChoiceField(
        label=_("Status"),
        choices=[("", _("Any status")), *ProvisioningJob.Status.choices],
        required=False,
    )
    client = client_filter()
    vendor = vendor_filter()


#: The periods the data-access page offers, in days back from today (today included).
DAYS = {
    1: _("Today"),
    7: _("The last 7 days"),
    30: _("The last 30 days"),
    90: _("The last 90 days"),
    365: _("The last 365 days"),
}


class DataAccessFilterForm(PageForm):
    """Which calls to count and list: by municipality (NHN's page), client, service, period
    and answer."""

    kommune = OrganisationChoiceField(
        label=_("Municipality"),
        queryset=Organisation.objects.kommuner().order_by("name"),
        to_field_name="orgnr",
        empty_label=_("All municipalities"),
        required=False,
    )
    client = client_filter()
    service = forms.ChoiceField(label=_("Service"), required=False)
    days = forms.TypedChoiceField(
        label=_("Period"),
        choices=list(DAYS.items()),
        coerce=int,
        required=False,
        empty_value=None,
    )
    answer = forms.ChoiceField(
        label=_("Answer"),
        choices=[
            ("", _("Every call")),
            ("refused", _("Refused by the gateway")),
            ("passed", _("Let through")),
        ],
        required=False,
    )

    def __init__(
        self, *args: Any, services: list[Service], by_kommune: bool, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if not by_kommune:  # a municipality's page shows the calls to it alone
            del self.fields["kommune"]
        self.fields["service"].choices = [  # type: ignore[attr-defined]
            ("", _("All services")),
            *((service.code, service.name) for service in services),
        ]
