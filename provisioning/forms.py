"""Forms of the provisioning jobs page."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from orders.models import ProvisioningJob
from tenants.models import Organisation


class JobFilterForm(forms.Form):
    """Which jobs to list: by status, by client (name or client_id) and by vendor."""

    status = forms.ChoiceField(
        label=_("Status"),
        choices=[("", _("Any status")), *ProvisioningJob.Status.choices],
        required=False,
    )
    client = forms.CharField(
        label=_("Client"),
        help_text=_("Its name or client_id."),
        required=False,
        max_length=200,
    )
    vendor = forms.ModelChoiceField(
        label=_("Vendor"),
        queryset=Organisation.objects.filter(kind=Organisation.Kind.VENDOR).order_by("name"),
        to_field_name="orgnr",
        empty_label=_("All vendors"),
        required=False,
    )
