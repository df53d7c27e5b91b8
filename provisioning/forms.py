"""Forms of the provisioning jobs page."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from orders.models import ProvisioningJob
from tenants.forms.fields import client_filter, vendor_filter


class JobFilterForm(forms.Form):
    """Which jobs to list: by status, by client (name or client_id) and by vendor."""

    status = forms.ChoiceField(
        label=_("Status"),
        choices=[("", _("Any status")), *ProvisioningJob.Status.choices],
        required=False,
    )
    client = client_filter()
    vendor = vendor_filter()
