"""Forms of a vendor's pages: its products."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from portal.forms import PageForm
from tenants.models import Product


class ProductForm(PageForm):
    """Register a product, or declare a change of it (the same three things)."""

    name = forms.CharField(label=_("Name of the product"), max_length=200)
    system_type = forms.ChoiceField(
        label=_("System type"),
        choices=Product.SystemType.choices,
        widget=forms.RadioSelect,
        help_text=_(
            "What the system is decides which services it may read and write. NHN checks it "
            "before the product is used in production."
        ),
    )
    is_epic = forms.BooleanField(
        label=_("The product is Epic (Helseplattformen)"),
        required=False,
        help_text=_("Only an EPJ can be Epic. Some services are for Epic kommuner only."),
    )

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError(_("Give the product a name."), code="required")
        return name


class ProductFilterForm(PageForm):
    """The products list's filters (a GET form; anything unknown is ignored)."""

    STATUS_CHOICES = [
        ("", _("All")),
        ("verified", _("Verified by NHN")),
        ("awaiting", _("Awaiting NHN's verification")),
    ]

    system_type = forms.ChoiceField(
        label=_("System type"),
        choices=[("", _("All")), *Product.SystemType.choices],
        required=False,
    )
    status = forms.ChoiceField(label=_("Verification"), choices=STATUS_CHOICES, required=False)

    def filters(self) -> dict[str, Any]:
        """The filters given and valid (an unknown value filters nothing)."""
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if value}
