"""Forms of a kommune admin's pages: delegations, approvals and access (grants).

They parse and check the shape of the input only; the rules live in ``orders.services``, whose
refusals land on these forms (``portal.forms.service_errors_add``).
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from orders.api.serializers import SERVICE_CODES
from orders.models import Access, AccessRequestItem, GrantStatus, Service
from portal.forms import PageForm
from tenants.models import Environment, Organisation

SERVICE_CODE_CHOICES = [(code, code) for code in SERVICE_CODES]
DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")

#: "Trygghet AS (958 935 420)", as the suggestions offer a vendor.
_NAME_WITH_ORGNR = re.compile(r"^(?P<name>.*?)\s*\((?P<orgnr>[\d\s]{9,13})\)\s*$")


def _digits(text: str) -> str:
    return re.sub(r"\s", "", text)


def vendor_matches(text: str) -> QuerySet[Organisation]:
    """Vendors whose name contains ``text``, or whose orgnr starts with its digits."""
    text = text.strip()
    vendors = Organisation.objects.filter(kind=Organisation.Kind.VENDOR)
    condition = Q(name__icontains=text)
    if _digits(text).isdigit():
        condition |= Q(orgnr__startswith=_digits(text))
    return vendors.filter(condition).order_by("name")


class VendorField(forms.CharField):
    """A vendor found by its organisation number (with or without spaces), its name, or a part
    of its name that only it has."""

    def clean(self, value: Any) -> Any:
        text = super().clean(value).strip()
        vendors = Organisation.objects.filter(kind=Organisation.Kind.VENDOR)
        if match := _NAME_WITH_ORGNR.match(text):
            text = match["orgnr"]
        if _digits(text).isdigit():
            found = vendors.filter(orgnr=_digits(text)).first()
            if found is None:
                raise forms.ValidationError(
                    _("No vendor has the organisation number %(orgnr)s."),
                    params={"orgnr": _digits(text)},
                )
            return found
        exact = list(vendors.filter(name__iexact=text)[:2])
        if len(exact) == 1:
            return exact[0]
        candidates = list(vendor_matches(text)[:6])
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise forms.ValidationError(
                _("No vendor is called %(name)s. Type its name or its organisation number."),
                params={"name": text},
            )
        raise forms.ValidationError(
            _(
                "Several vendors match: %(vendors)s. Type the organisation number of the one "
                "you mean."
            ),
            params={"vendors": "; ".join(f"{v.name} ({v.orgnr})" for v in candidates[:5])},
        )


class DelegationForm(PageForm):
    """A delegation: the vendor, the services and access, the service codes, the dates. Field
    names are the service's (``delegation_create``), so its errors land beside them."""

    vendor = VendorField(
        label=_("Vendor"),
        max_length=220,
        help_text=_("Its name or its organisation number (9 digits)."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "list": "vendor-options"}),
    )
    items = forms.MultipleChoiceField(
        label=_("Services and access"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one service, to read or to write.")},
    )
    service_codes = forms.MultipleChoiceField(
        label=_("Service codes the vendor may use"),
        required=False,
        choices=SERVICE_CODE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "Need-to-know (tjenstlig behov): the codes the vendor's calls may carry. Its orders "
            "get those of them it asks for."
        ),
    )
    valid_from = forms.DateField(
        label=_("Valid from"),
        required=False,
        widget=DATE_WIDGET,
        help_text=_("Empty: from today."),
    )
    valid_until = forms.DateField(
        label=_("Valid until"),
        required=False,
        widget=DATE_WIDGET,
        help_text=_("Empty: until you revoke it."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.services = list(Service.objects.order_by("position", "code"))
        self.fields["items"].choices = [  # type: ignore[attr-defined]
            (f"{service.code}:{access}", f"{service.name}: {label}")
            for service in self.services
            for access, label in Access.choices
        ]

    def grid(self) -> list[tuple[Service, list[Any]]]:
        """Each service with its read and write checkboxes, for a table of choices."""
        boxes = list(self["items"])
        width = len(Access.values)
        return [
            (service, boxes[i * width : (i + 1) * width]) for i, service in enumerate(self.services)
        ]

    def clean_items(self) -> list[tuple[Service, str]]:
        by_code = {service.code: service for service in self.services}
        chosen = []
        for value in self.cleaned_data["items"]:
            code, access = value.split(":")
            chosen.append((by_code[code], access))
        return chosen


class DelegationFilterForm(PageForm):
    STATUSES = (
        ("", _("Any status")),
        ("active", _("In force")),
        ("scheduled", _("Starts later")),
        ("expired", _("Expired")),
        ("revoked", _("Revoked")),
    )

    vendor = forms.CharField(
        label=_("Vendor (name or organisation number)"), required=False, max_length=220
    )
    status = forms.ChoiceField(label=_("Status"), required=False, choices=STATUSES)


class DecisionForm(PageForm):
    """Approve or reject: the button pressed names the decision; a rejection needs a reason."""

    DECISIONS = (("approve", _("Approve")), ("reject", _("Reject")))

    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Needed to reject. The vendor sees it with the decision."),
    )
    decision = forms.ChoiceField(
        choices=DECISIONS,
        widget=forms.HiddenInput,
        error_messages={"required": _("Choose to approve or to reject.")},
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("decision") == "reject" and not data.get("reason", "").strip():
            self.add_error("reason", _("Give a reason: the vendor sees it with the rejection."))
        return data


class BulkDecisionForm(DecisionForm):
    """Several waiting items at once (checkboxes in the list)."""

    items = forms.ModelMultipleChoiceField(
        queryset=AccessRequestItem.objects.none(),
        label=_("Items"),
        error_messages={
            "required": _("Choose the items to decide on."),
            "invalid_choice": _(
                "Some of the chosen items no longer wait for you. Reload the page."
            ),
            "invalid_pk_value": _(
                "Some of the chosen items no longer wait for you. Reload the page."
            ),
        },
    )

    field_order = ["items", "reason", "decision"]

    def __init__(self, *args: Any, items: QuerySet[AccessRequestItem], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["items"].queryset = items  # type: ignore[attr-defined]


class ItemDecisionForm(DecisionForm):
    """One item, on its own page: the admin may narrow the service codes it asked for."""

    service_codes = forms.MultipleChoiceField(
        label=_("Service codes you allow"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Among those the vendor asked for. Calls with another code are refused."),
    )

    field_order = ["service_codes", "reason", "decision"]

    def __init__(self, *args: Any, item: AccessRequestItem, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"service_codes": list(item.service_codes)})
        super().__init__(*args, **kwargs)
        if item.service_codes:
            self.fields["service_codes"].choices = [  # type: ignore[attr-defined]
                (code, code) for code in item.service_codes
            ]
        else:
            del self.fields["service_codes"]


#: The access list's status filter: its choices, and the grant statuses each one shows.
GRANT_STATUS_FILTERS: dict[str, tuple[Any, tuple[str, ...] | None]] = {
    "": (
        _("Current (not revoked)"),
        (
            GrantStatus.PENDING,
            GrantStatus.PROVISIONING,
            GrantStatus.ACTIVE,
            GrantStatus.FAILED,
            GrantStatus.REVOKING,
        ),
    ),
    "active": (_("Active"), (GrantStatus.ACTIVE,)),
    "setting_up": (_("Being set up"), (GrantStatus.PENDING, GrantStatus.PROVISIONING)),
    "failed": (_("Failed"), (GrantStatus.FAILED,)),
    "revoking": (_("Being revoked"), (GrantStatus.REVOKING,)),
    "revoked": (_("Revoked"), (GrantStatus.REVOKED,)),
    "all": (_("All, also revoked"), None),
}


class GrantFilterForm(PageForm):
    vendor = forms.ChoiceField(label=_("Vendor"), required=False)
    service = forms.ChoiceField(label=_("Service"), required=False)
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[(key, label) for key, (label, _statuses) in GRANT_STATUS_FILTERS.items()],
    )
    environment = forms.ChoiceField(
        label=_("Environment"),
        required=False,
        choices=[("", _("Test and production")), *Environment.choices],
    )

    def __init__(
        self,
        *args: Any,
        vendors: list[tuple[str, str]],
        services: list[Service],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["vendor"].choices = [  # type: ignore[attr-defined]
            ("", _("All vendors")),
            *vendors,
        ]
        self.fields["service"].choices = [  # type: ignore[attr-defined]
            ("", _("All services")),
            *((service.code, service.name) for service in services),
        ]


class GrantRevokeForm(PageForm):
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Kept in the audit trail and shown to the vendor."),
    )
