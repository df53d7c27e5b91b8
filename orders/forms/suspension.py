"""Forms of the pages where NHN's operators suspend a vendor and lift the suspension."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from orders.models import Suspension
from portal.forms import PageForm


class VendorFilterForm(PageForm):
    """The list of vendors: by name or organisation number, and by whether they are suspended."""

    STATES = [
        ("", _("All vendors")),
        ("suspended", _("Suspended")),
        ("active", _("Not suspended")),
    ]

    q = forms.CharField(
        label=_("Name or organisation number"), required=False, max_length=200, strip=True
    )
    state = forms.ChoiceField(label=_("Suspension"), choices=STATES, required=False)


class SuspendForm(PageForm):
    reason = forms.CharField(
        label=_("Reason"),
        help_text=_(
            "Why NHN suspends the vendor. It is shown with every grant the suspension closes "
            "and kept in the audit trail."
        ),
        max_length=Suspension._meta.get_field("reason").max_length,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
