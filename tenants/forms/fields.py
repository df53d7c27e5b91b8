"""Filter fields that several lists share (the provisioning jobs, the audit trail), so a vendor
or a client is chosen the same way on each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.utils.translation import gettext_lazy as _

from tenants.models import Organisation
from tenants.templatetags.tilgang import orgnr

if TYPE_CHECKING:  # django-stubs' generics, which Django's classes do not take at runtime
    _OrganisationField = forms.ModelChoiceField[Organisation]
else:
    _OrganisationField = forms.ModelChoiceField


class OrganisationChoiceField(_OrganisationField):
    """An organisation by its name and its organisation number, grouped as UI.md shows it."""

    def label_from_instance(self, obj: Organisation) -> str:
        return f"{obj.name} ({orgnr(obj.orgnr)})"


def vendor_filter() -> forms.ModelChoiceField[Any]:
    """Any one vendor, by its organisation number in the query string, or all vendors."""
    return OrganisationChoiceField(
        label=_("Vendor"),
        queryset=Organisation.objects.filter(kind=Organisation.Kind.VENDOR).order_by("name"),
        to_field_name="orgnr",
        empty_label=_("All vendors"),
        required=False,
    )


def client_filter() -> forms.CharField:
    """A client by (part of) its name or its whole client_id."""
    return forms.CharField(
        label=_("Client"), help_text=_("Its name or client_id."), required=False, max_length=200
    )
