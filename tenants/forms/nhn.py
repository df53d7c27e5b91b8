"""Forms of NHN's pages: organisations (the register) and product verification."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from portal.forms import PageForm
from tenants.models import Organisation, Product
from tenants.validators import validate_kommunenummer, validate_orgnr


class OrganisationFilterForm(PageForm):
    q = forms.CharField(label=_("Name or organisation number"), required=False, max_length=200)
    kind = forms.ChoiceField(
        label=_("Kind"),
        required=False,
        choices=[("", _("Every kind")), *Organisation.Kind.choices],
    )

    def value(self, name: str) -> str:
        self.is_valid()
        return str(self.cleaned_data.get(name) or "")


class OrganisationRegisterForm(PageForm):
    """Register an organisation by its orgnr and, at once, invite its first administrator."""

    orgnr = forms.CharField(
        label=_("Organisation number"),
        max_length=20,
        help_text=_("Nine digits, as in Enhetsregisteret; spaces are fine (958 935 420)."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    name = forms.CharField(label=_("Name"), max_length=200)
    kind = forms.ChoiceField(
        label=_("Kind"), choices=Organisation.Kind.choices, widget=forms.RadioSelect
    )
    kommune = forms.CharField(
        label=_("Kommune number"),
        required=False,
        max_length=4,
        validators=[validate_kommunenummer],
        help_text=_(
            "Only for a kommune: its four digits in the kommune register of 2024, e.g. 0301 for "
            "Oslo."
        ),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "list": "kommune-register"}),
    )
    admin_email = forms.EmailField(
        label=_("E-mail address of its first administrator"),
        required=False,
        help_text=_(
            "They become the organisation's administrator when they first log in with this "
            "address, and then manage its people themselves. You can also do this later."
        ),
    )

    def clean_orgnr(self) -> str:
        # UI.md: organisation numbers are accepted with or without spaces.
        orgnr = "".join(str(self.cleaned_data["orgnr"]).split())
        validate_orgnr(orgnr)
        return orgnr


class AdminBootstrapForm(PageForm):
    email = forms.EmailField(
        label=_("E-mail address of the first administrator"),
        help_text=_("They become administrator when they first log in with this address."),
    )


class ProductFilterForm(PageForm):
    AWAITING, VERIFIED = "awaiting", "verified"

    state = forms.ChoiceField(
        label=_("Show"),
        required=False,
        choices=[
            (AWAITING, _("Awaiting verification")),
            (VERIFIED, _("Verified")),
            ("all", _("All products")),
        ],
    )
    q = forms.CharField(label=_("Product or vendor"), required=False, max_length=200)

    def value(self, name: str, default: str = "") -> str:
        self.is_valid()
        return str(self.cleaned_data.get(name) or default)


class ProductVerifyForm(PageForm):
    system_type = forms.ChoiceField(
        label=_("Verified system type"),
        choices=Product.SystemType.choices,
        widget=forms.RadioSelect,
        help_text=_("What the product is, as NHN has checked it. Production goes by this."),
    )
    is_epic = forms.BooleanField(
        label=_("Verified as Epic (Helseplattformen)"),
        required=False,
        help_text=_("Only an EPJ can be Epic. The Epic-only services go by this in production."),
    )
