"""The audit trail's filters, and the words for what its events record."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from portal.forms import PageForm
from tenants.forms.fields import OrganisationChoiceField, client_filter, vendor_filter
from tenants.models import Organisation

#: Each action an audit event records, in words (``AuditEvent.action``).
ACTIONS: dict[str, Promise] = {
    "access_request.created": _("Order placed"),
    "access_request.approved": _("Order approved by the municipality"),
    "access_request.vendor_consented": _("Order accepted by the vendor"),
    "access_request.rejected": _("Order rejected"),
    "access_request.withdrawn": _("Order withdrawn"),
    "client.registered": _("Client registered"),
    "client.keys_rotated": _("Client's keys changed"),
    "client.removed": _("Client removed"),
    "client.provisioning_status": _("Client's set-up status changed"),
    "delegation.created": _("Delegation given"),
    "delegation.revoked": _("Delegation revoked"),
    "delegation.expired": _("Delegation expired"),
    "grant.approved": _("Access granted"),
    "grant.updated": _("Access changed"),
    "grant.provisioning": _("Access being set up"),
    "grant.activated": _("Access active"),
    "grant.failed": _("Access set-up failed"),
    "grant.retried": _("Access set-up retried"),
    "grant.revoked": _("Access revoked"),
    "grant.revoked_everywhere": _("Access closed everywhere"),
    "grant.suspended": _("Access closed: the client's keys expired"),
    "grant.restored": _("Access restored after a suspension"),
    "instruction.created": _("Instruction draft started"),
    "instruction.updated": _("Instruction draft changed"),
    "instruction.signed": _("Instruction signed"),
    "kommune.epj_recorded": _("EHR recorded"),
    "kommune.epj_switched": _("EHR switched"),
    "membership.invited": _("Person invited"),
    "membership.created": _("Membership created for an automation client"),
    "membership.bound": _("Invitation taken up"),
    "membership.role_changed": _("Role changed"),
    "membership.bootstrapped": _("First administrator appointed"),
    "membership.removed": _("Person removed"),
    "organisation.registered": _("Organisation registered"),
    "product.registered": _("Product registered"),
    "product.declared": _("Product's system type declared"),
    "product.verified": _("Product verified by NHN"),
    "provisioning_job.retried": _("Provisioning job retried"),
    "recertification.confirmed": _("Vendor's access confirmed again"),
    "recertification.lapsed": _("Vendor's access lapsed: not confirmed again in time"),
    "data_access.purged": _("Data-access log past its retention deleted"),
    "vendor.suspended": _("Vendor suspended"),
    "vendor.suspension_lifted": _("Vendor's suspension lifted"),
    "reconcile.gateway_keys": _("Gateway's signing keys repaired"),
    "reconcile.gateway_resources": _("Gateway's resources repaired"),
    "reconcile.gateway_reopened": _("Gateway entries reopened"),
    "reconcile.gateway_grants": _("Gateway's grants repaired"),
    "reconcile.registration": _("Registration at the authorization server repaired"),
    "reconcile.registration_unknown": _(
        "Registration at the authorization server that the database does not know removed"
    ),
}

#: What kind of thing an event is about (``AuditEvent.object_type``), in words.
OBJECT_TYPES: dict[str, Promise] = {
    "orders.accessrequest": _("Order"),
    "orders.delegation": _("Delegation"),
    "orders.grant": _("Grant"),
    "orders.instruction": _("Instruction"),
    "orders.provisioningjob": _("Provisioning job"),
    "recertification.recertification": _("Recertification"),
    "provisioning.dataaccessentry": _("Data-access log"),
    "tenants.membership": _("Membership"),
    "tenants.oauthclient": _("Client"),
    "tenants.organisation": _("Organisation"),
    "tenants.product": _("Product"),
}


def action_label(action: str) -> str:
    return str(ACTIONS.get(action, action))


class DateInput(forms.DateInput):
    """The browser's date picker, which sends and shows ISO dates whatever the language."""

    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, format="%Y-%m-%d")


class AuditFilterForm(PageForm):
    kommune = OrganisationChoiceField(
        label=_("Municipality"),
        queryset=Organisation.objects.kommuner().order_by("name"),
        to_field_name="orgnr",
        empty_label=_("All municipalities"),
        required=False,
    )
    vendor = vendor_filter()
    client = client_filter()
    actor = forms.CharField(
        label=_("Done by"),
        help_text=_("A person's login, or system."),
        required=False,
        max_length=200,
    )
    action = forms.ChoiceField(label=_("Action"), required=False)
    date_from = forms.DateField(label=_("From"), required=False, widget=DateInput)
    date_to = forms.DateField(label=_("To"), required=False, widget=DateInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = sorted(
            ((code, str(label)) for code, label in ACTIONS.items()), key=lambda c: c[1]
        )
        self.fields["action"].choices = [("", _("Any action")), *choices]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start: datetime.date | None = data.get("date_from")
        end: datetime.date | None = data.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", _("The last day comes before the first."))
        return data


class AuditApiFilterForm(AuditFilterForm):
    """The page's filters, by the same names, plus two the API has always had. An action is any
    action recorded, not only one the page has words for."""

    action = forms.CharField(required=False, max_length=60)  # type: ignore[assignment]
    organisation = forms.CharField(required=False, max_length=9)
    object_id = forms.CharField(required=False, max_length=64)
