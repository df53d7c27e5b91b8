from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Manager
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orders.history import revoke_reason
from orders.models import (
    Access,
    AccessRequest,
    AccessRequestItem,
    Delegation,
    DelegationItem,
    Grant,
    GrantPeriod,
    Instruction,
    Service,
)
from orders.policy import grant_reason_text, reason_text
from tenants.models import ClientKey, Environment, OAuthClient, Role
from tenants.validators import validate_orgnr


class AvailabilitySerializer(serializers.Serializer[Any]):
    environment = serializers.ChoiceField(choices=Environment.choices)
    available_from = serializers.DateField(allow_null=True)
    available = serializers.BooleanField()


class ServiceSerializer(serializers.ModelSerializer[Service]):
    name = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    availability = serializers.SerializerMethodField()

    class Meta:
        model = Service
        fields = [
            "code",
            "name",
            "description",
            "fhir_resource",
            "read_scope",
            "write_scope",
            "readable_by",
            "writable_by",
            "epj_requirement",
            "planned_quarter",
            "availability",
        ]
        read_only_fields = fields

    @extend_schema_field(AvailabilitySerializer(many=True))
    def get_availability(self, service: Service) -> list[dict[str, Any]]:
        today = timezone.localdate()
        return [
            {
                "environment": environment,
                "available_from": service.available_from(environment),
                "available": service.is_available(environment, on=today),
            }
            for environment in Environment.values
        ]


# --- Shared fields: organisations by orgnr, services by code -------------------------------------

SERVICE_CODES = ("RT", "TA", "GPS", "MD", "DT", "DHO")


class ServiceCodesField(serializers.ListField):
    """The services by code; unknown codes are a field error."""

    child = serializers.SlugField()

    def to_internal_value(self, data: Any) -> list[Service]:
        codes = super().to_internal_value(data)
        if not codes:
            raise serializers.ValidationError(_("Name at least one service."))
        found = {s.code: s for s in Service.objects.filter(code__in=codes)}
        unknown = [c for c in codes if c not in found]
        if unknown:
            raise serializers.ValidationError(
                _("Unknown service code: %(codes)s.") % {"codes": ", ".join(unknown)}
            )
        return [found[c] for c in dict.fromkeys(codes)]

    def to_representation(self, value: Any) -> list[str]:
        return [s.code for s in value.all()]


# --- Instructions -------------------------------------------------------------------------------


class InstructionSerializer(serializers.ModelSerializer[Instruction]):
    kommune = serializers.CharField(source="kommune.orgnr")
    services = ServiceCodesField()
    status = serializers.CharField()
    signed_by = serializers.CharField(source="signed_by_name")

    class Meta:
        model = Instruction
        fields = [
            "id",
            "kommune",
            "version",
            "status",
            "subject_matter",
            "duration",
            "nature_and_purpose",
            "personal_data_categories",
            "data_subject_categories",
            "services",
            "sharing_scope",
            "shared_with",
            "retention",
            "sub_processors_acknowledged",
            "contact_name",
            "contact_email",
            "contact_phone",
            "signed_by",
            "signed_at",
            "superseded_at",
            "created_at",
        ]
        read_only_fields = fields


class StringListField(serializers.ListField):
    child = serializers.CharField(max_length=200)


class OrgnrListField(serializers.ListField):
    child = serializers.CharField(max_length=9, validators=[validate_orgnr])


class InstructionInputSerializer(serializers.Serializer[Any]):
    kommune = serializers.CharField(max_length=9, help_text="The kommune's orgnr (create only).")
    services = ServiceCodesField()
    subject_matter = serializers.CharField()
    duration = serializers.CharField(max_length=200)
    nature_and_purpose = serializers.CharField()
    personal_data_categories = StringListField(allow_empty=False)
    data_subject_categories = StringListField(allow_empty=False)
    sharing_scope = serializers.ChoiceField(choices=Instruction.SharingScope.choices)
    shared_with = OrgnrListField(required=False)
    retention = serializers.CharField(max_length=500)
    sub_processors_acknowledged = StringListField(required=False)
    contact_name = serializers.CharField(max_length=200)
    contact_email = serializers.EmailField()
    contact_phone = serializers.CharField(max_length=40, required=False, allow_blank=True)


# --- Items: a service by code and an access ------------------------------------------------


class ItemInputSerializer(serializers.Serializer[Any]):
    service = serializers.SlugField()
    access = serializers.ChoiceField(choices=Access.choices)
    service_codes = serializers.ListField(
        child=serializers.ChoiceField(choices=SERVICE_CODES),
        required=False,
        help_text="Tjenstlig behov: the service codes the client may send with this item.",
    )

    def validate_service(self, code: str) -> Service:
        service = Service.objects.filter(code=code).first()
        if service is None:
            raise serializers.ValidationError(
                _("Unknown service code: %(codes)s.") % {"codes": code}
            )
        return service


# --- Delegations --------------------------------------------------------------------------------


class DelegationItemSerializer(serializers.ModelSerializer[DelegationItem]):
    service = serializers.CharField(source="service.code")

    class Meta:
        model = DelegationItem
        fields = ["service", "access", "service_codes"]
        read_only_fields = fields


#: One instance renders every item (no per-row serializer; see tenants' PRODUCT_REF).
DELEGATION_ITEM = DelegationItemSerializer()


def delegation_items_written(delegations: Iterable[Delegation]) -> dict[Any, list[dict[str, Any]]]:
    """The items of ``delegations`` as ``DelegationItemSerializer`` writes them, by delegation,
    read as values in one query: a page of 100 delegations holds 1,800 items, and making them
    and their services model instances took most of the list's time."""
    written: dict[Any, list[dict[str, Any]]] = {delegation.pk: [] for delegation in delegations}
    rows = (
        DelegationItem.objects.filter(delegation__in=list(written))
        .order_by("service__position", "access")
        .values_list("delegation_id", "service__code", "access", "service_codes")
    )
    for delegation_id, code, access, codes in rows:
        written[delegation_id].append({"service": code, "access": access, "service_codes": codes})
    return written


class DelegationListSerializer(serializers.ListSerializer[Delegation]):
    """A list of delegations, whose items are read for the whole list at once."""

    items_written: dict[Any, list[dict[str, Any]]] | None = None

    def to_representation(self, data: Any) -> list[Any]:
        rows = list(data.all() if isinstance(data, Manager) else data)
        self.items_written = delegation_items_written(rows)
        return super().to_representation(rows)


class DelegationSerializer(serializers.ModelSerializer[Delegation]):
    kommune = serializers.CharField(source="kommune.orgnr")
    vendor = serializers.CharField(source="vendor.orgnr")
    items = serializers.SerializerMethodField()
    status = serializers.CharField()

    class Meta:
        model = Delegation
        fields = [
            "id",
            "kommune",
            "vendor",
            "items",
            "valid_from",
            "valid_until",
            "status",
            "revoked_at",
            "created_at",
        ]
        read_only_fields = fields
        list_serializer_class = DelegationListSerializer

    @extend_schema_field(DelegationItemSerializer(many=True))
    def get_items(self, delegation: Delegation) -> list[dict[str, Any]]:
        # In a list: written for the whole list at once.
        if isinstance(self.parent, DelegationListSerializer) and self.parent.items_written:
            return self.parent.items_written[delegation.pk]
        # Set by the service that made the delegation; read otherwise.
        items = getattr(delegation, "ordered_items", None)
        if items is None:
            items = list(
                delegation.items.select_related("service").order_by("service__position", "access")
            )
        return [DELEGATION_ITEM.to_representation(item) for item in items]


class DelegationInputSerializer(serializers.Serializer[Any]):
    kommune = serializers.CharField(max_length=9)
    vendor = serializers.CharField(max_length=9)
    items: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=ItemInputSerializer(), allow_empty=False, max_length=50
    )
    valid_from = serializers.DateField(required=False, allow_null=True)
    valid_until = serializers.DateField(required=False, allow_null=True)


# --- Clients ------------------------------------------------------------------------------------


class ClientKeySerializer(serializers.ModelSerializer[ClientKey]):
    # ``expires_at`` is the key's own ``exp``; ``valid_until`` is when it stops being accepted:
    # that, or the key lifetime after it was added (``created_at``), whichever comes first.
    valid_until = serializers.DateTimeField(read_only=True)

    class Meta:
        model = ClientKey
        fields = ["kid", "kty", "alg", "created_at", "expires_at", "valid_until", "jwk"]
        read_only_fields = fields


class ProvisioningSerializer(serializers.Serializer[Any]):
    """Where the client stands at the authorization server and the gateway."""

    status = serializers.CharField(source="provisioning_status")
    attempts = serializers.IntegerField(source="provisioning_attempts")
    last_error = serializers.CharField(source="provisioning_error")
    provisioned_at = serializers.DateTimeField(allow_null=True)


class ClientSerializer(serializers.ModelSerializer[OAuthClient]):
    vendor = serializers.CharField(source="vendor.orgnr")
    product = serializers.UUIDField(source="product_id", allow_null=True)
    keys = ClientKeySerializer(many=True)
    status = serializers.SerializerMethodField()
    provisioning = ProvisioningSerializer(source="*")
    # Declared, not derived: DRF drops allow_blank from a read-only model field, so the schema
    # said a FHIR client's "" could not occur (schemathesis found it).
    api_role = serializers.ChoiceField(
        choices=Role.choices,
        allow_blank=True,
        read_only=True,
        help_text='An automation client\'s role; "" for a FHIR client.',
    )

    class Meta:
        model = OAuthClient
        fields = [
            "id",
            "client_id",
            "name",
            "vendor",
            "product",
            "environment",
            "purpose",
            "api_role",
            "status",
            "provisioning",
            "keys",
            "created_at",
            "removed_at",
        ]
        read_only_fields = fields

    def get_status(self, client: OAuthClient) -> str:
        if client.removed_at is not None:
            return "removed"
        return "registered" if client.client_id else "pending"


class ClientInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200)
    purpose = serializers.ChoiceField(choices=OAuthClient.Purpose.choices, default="fhir")
    product = serializers.UUIDField(required=False, help_text="For the FHIR services.")
    environment = serializers.ChoiceField(choices=Environment.choices, default="production")
    organisation = serializers.CharField(
        max_length=9, required=False, help_text="For an automation client: whose API it uses."
    )
    role = serializers.ChoiceField(
        choices=Role.choices, required=False, help_text="For an automation client: its role."
    )
    jwks = serializers.JSONField(help_text='The public keys, as a JWKS: {"keys": [...]}.')

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["purpose"] == OAuthClient.Purpose.FHIR:
            if "product" not in attrs:
                raise serializers.ValidationError({"product": _("Name the client's product.")})
        else:
            missing = [f for f in ("organisation", "role") if f not in attrs]
            if missing:
                raise serializers.ValidationError(
                    {f: _("An automation client names its organisation and role.") for f in missing}
                )
        return attrs


# --- Access requests ----------------------------------------------------------------------------


class ItemSerializer(serializers.ModelSerializer[AccessRequestItem]):
    service = serializers.CharField(source="service.code")
    reason = serializers.SerializerMethodField()
    grant = serializers.UUIDField(source="grant_id", allow_null=True)

    class Meta:
        model = AccessRequestItem
        fields = [
            "id",
            "service",
            "access",
            "service_codes",
            "status",
            "reason",
            "reason_code",
            "grant",
            "decided_at",
        ]
        read_only_fields = fields

    def get_reason(self, item: AccessRequestItem) -> str:
        return reason_text(item.reason_code, item.reason_params)


class AccessRequestSerializer(serializers.ModelSerializer[AccessRequest]):
    client = serializers.UUIDField(source="client_id")
    kommune = serializers.CharField(source="kommune.orgnr")
    requested_by = serializers.CharField(source="requested_by.username")
    # Set by the view's Prefetch, or by the service for the requests it has just made.
    items = ItemSerializer(many=True, source="ordered_items")

    class Meta:
        model = AccessRequest
        fields = ["id", "client", "kommune", "initiated_by", "requested_by", "created_at", "items"]
        read_only_fields = fields


class AccessRequestInputSerializer(serializers.Serializer[Any]):
    client = serializers.UUIDField()
    kommune = serializers.CharField(max_length=9, required=False)
    kommuner = serializers.ListField(
        child=serializers.CharField(max_length=9), required=False, max_length=1000
    )
    items: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=ItemInputSerializer(), allow_empty=False, max_length=50
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("kommune" in attrs) == ("kommuner" in attrs):
            raise serializers.ValidationError(
                {"kommune": _("Name one kommune as kommune, or several as kommuner.")}
            )
        if "kommuner" in attrs and not attrs["kommuner"]:
            raise serializers.ValidationError({"kommuner": _("Name at least one kommune.")})
        return attrs


class ItemsActionSerializer(serializers.Serializer[Any]):
    items = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        allow_empty=False,
        help_text="The items to act on; all that qualify when left out.",
    )


class ApproveSerializer(ItemsActionSerializer):
    service_codes = serializers.DictField(
        child=serializers.ListField(child=serializers.ChoiceField(choices=SERVICE_CODES)),
        required=False,
        help_text="By item id: the service codes (tjenstlig behov) the kommune allows for it, "
        "among those it asked for. An item left out keeps the codes it asked for.",
    )


class RejectSerializer(ItemsActionSerializer):
    reason = serializers.CharField(
        max_length=300,
        required=False,
        allow_blank=True,
        help_text="Why the kommune refuses: shown to the vendor with the decision.",
    )


# --- Grants -------------------------------------------------------------------------------------


class GrantSerializer(serializers.ModelSerializer[Grant]):
    client = serializers.UUIDField(source="client_id")
    client_id = serializers.CharField(source="client.client_id")
    kommune = serializers.CharField(source="kommune.orgnr")
    service = serializers.CharField(source="service.code")
    instruction_version = serializers.IntegerField(
        source="instruction.version", allow_null=True, default=None
    )
    delegation = serializers.UUIDField(source="delegation_id", allow_null=True)
    approved_by = serializers.CharField(
        source="approved_by.username", allow_null=True, default=None
    )
    provisioning = ProvisioningSerializer(source="client")
    status_reason = serializers.SerializerMethodField()
    revoke_reason = serializers.SerializerMethodField()

    class Meta:
        model = Grant
        fields = [
            "id",
            "client",
            "client_id",
            "kommune",
            "service",
            "access",
            "scope",
            "service_codes",
            "status",
            "status_reason",
            "instruction_version",
            "delegation",
            "approved_by",
            "approved_automatically",
            "created_at",
            "status_changed_at",
            "revoked_at",
            "revoke_reason",
            "provisioning",
        ]
        read_only_fields = fields

    def get_status_reason(self, grant: Grant) -> str:
        return grant_reason_text(
            grant.status_reason_code, grant.status_reason_params, grant.status_reason
        )

    def get_revoke_reason(self, grant: Grant) -> str:
        return grant_reason_text(
            grant.revoke_reason_code, grant.revoke_reason_params, grant.revoke_reason
        )


class GrantRevokeSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True)


class VendorSuspendSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        max_length=500, help_text="Why NHN suspends the vendor; shown with each grant it closes."
    )


# --- Who had access when ------------------------------------------------------------------------


class HistoryInstructionSerializer(serializers.ModelSerializer[Instruction]):
    class Meta:
        model = Instruction
        fields = ["id", "version", "signed_at", "signed_by_name"]
        read_only_fields = fields


class HistoryDelegationSerializer(serializers.ModelSerializer[Delegation]):
    class Meta:
        model = Delegation
        fields = ["id", "valid_from", "valid_until", "revoked_at"]
        read_only_fields = fields


_MOMENT, _DAY = serializers.DateTimeField(), serializers.DateField()


class AccessPeriodSerializer(serializers.ModelSerializer[GrantPeriod]):
    """One period in which a client had access: [started_at, ended_at), ended_at null while it
    lasts; with the terms it rested on then."""

    grant = serializers.UUIDField(source="grant_id")
    kommune = serializers.CharField(source="kommune.orgnr")
    kommune_name = serializers.CharField(source="kommune.name")
    vendor = serializers.CharField(source="vendor.orgnr")
    vendor_name = serializers.CharField(source="vendor.name")
    client = serializers.UUIDField(source="client_id")
    client_name = serializers.CharField(source="client.name")
    client_id = serializers.CharField(source="client.client_id")
    environment = serializers.ChoiceField(source="client.environment", choices=Environment.choices)
    service = serializers.CharField(source="service.code")
    ended_by = serializers.ChoiceField(
        source="end",
        choices=GrantPeriod.End.choices,
        allow_blank=True,
        help_text="Why the period ended: revoked, keys_expired (the client's keys all expired) "
        "or terms_changed (a new decision started the next period); empty while it lasts.",
    )
    approval = serializers.ChoiceField(
        choices=[("policy", "policy"), ("person", "person")],
        help_text="policy: approved by the rules (a delegation); person: by a kommune admin.",
    )
    approved_by = serializers.SerializerMethodField()
    instruction = HistoryInstructionSerializer(allow_null=True)
    delegation = HistoryDelegationSerializer(allow_null=True)
    revoke_reason = serializers.SerializerMethodField()

    class Meta:
        model = GrantPeriod
        fields = [
            "grant",
            "kommune",
            "kommune_name",
            "vendor",
            "vendor_name",
            "client",
            "client_name",
            "client_id",
            "environment",
            "service",
            "access",
            "scope",
            "service_codes",
            "started_at",
            "ended_at",
            "ended_by",
            "revoke_reason",
            "approval",
            "approved_automatically",
            "approved_by",
            "instruction",
            "delegation",
        ]
        read_only_fields = fields

    def to_representation(self, instance: GrantPeriod) -> dict[str, Any]:
        """The fields above, written out: a page is a hundred rows of two dozen fields, and
        DRF's field-by-field path cost several times the query's time (make bench's
        ``access_history_p95_ms``). ``tests/orders/test_access_history_api.py`` compares both."""
        period = instance
        moment, day = _MOMENT.to_representation, _DAY.to_representation
        instruction, delegation = period.instruction, period.delegation
        return {
            "grant": str(period.grant_id),
            "kommune": period.kommune.orgnr,
            "kommune_name": period.kommune.name,
            "vendor": period.vendor.orgnr,
            "vendor_name": period.vendor.name,
            "client": str(period.client_id),
            "client_name": period.client.name,
            "client_id": period.client.client_id,
            "environment": period.client.environment,
            "service": period.service.code,
            "access": period.access,
            "scope": period.scope,
            "service_codes": period.service_codes,
            "started_at": moment(period.started_at),
            "ended_at": moment(period.ended_at) if period.ended_at else None,
            "ended_by": period.end,
            "revoke_reason": self.get_revoke_reason(period),
            "approval": period.approval,
            "approved_automatically": period.approved_automatically,
            "approved_by": self.get_approved_by(period),
            "instruction": None
            if instruction is None
            else {
                "id": str(instruction.pk),
                "version": instruction.version,
                "signed_at": moment(instruction.signed_at) if instruction.signed_at else None,
                "signed_by_name": instruction.signed_by_name,
            },
            "delegation": None
            if delegation is None
            else {
                "id": str(delegation.pk),
                "valid_from": day(delegation.valid_from),
                "valid_until": day(delegation.valid_until) if delegation.valid_until else None,
                "revoked_at": moment(delegation.revoked_at) if delegation.revoked_at else None,
            },
        }

    def get_approved_by(self, period: GrantPeriod) -> str | None:
        """The login of the person who approved it (with a delegation: who ordered it)."""
        return period.approved_by.username if period.approved_by else None

    def get_revoke_reason(self, period: GrantPeriod) -> str:
        """For a period its revocation ended: why, in the reader's language."""
        return revoke_reason(period)
