from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants.models import Kommune, Membership, Organisation, Product, Role
from tenants.validators import validate_kommunenummer, validate_orgnr


class KommuneSerializer(serializers.ModelSerializer[Kommune]):
    class Meta:
        model = Kommune
        fields = ["number", "name", "county_number", "county_name"]


class ProductRefSerializer(serializers.ModelSerializer[Product]):
    vendor = serializers.CharField(source="vendor.orgnr", read_only=True)

    class Meta:
        model = Product
        fields = ["id", "name", "system_type", "is_epic", "vendor"]


#: Renders a product inside another serializer's method field: one instance, no per-row serializer
#: (whose ``.data`` would tie the row into a reference cycle).
PRODUCT_REF = ProductRefSerializer()


class EpjSwitchSerializer(serializers.Serializer[Any]):
    product = ProductRefSerializer()
    date = serializers.DateField()


class OrganizationSerializer(serializers.ModelSerializer[Organisation]):
    # Null for a vendor (no kommune) and before an EPJ is recorded: the schema says so.
    kommune = KommuneSerializer(read_only=True, allow_null=True)
    epj_product = ProductRefSerializer(read_only=True, allow_null=True)
    epj_switch = serializers.SerializerMethodField()
    my_roles = serializers.SerializerMethodField(
        help_text="The caller's roles in this organisation (empty for NHN staff looking in)."
    )

    class Meta:
        model = Organisation
        fields = [
            "orgnr",
            "name",
            "kind",
            "kommune",
            "epj_product",
            "epj_switch",
            "uses_vkp",
            "my_roles",
            "suspended_at",
        ]
        read_only_fields = fields

    @extend_schema_field(EpjSwitchSerializer(allow_null=True))
    def get_epj_switch(self, organisation: Organisation) -> dict[str, Any] | None:
        if organisation.epj_switch_product is None:
            return None
        return {
            "product": PRODUCT_REF.to_representation(organisation.epj_switch_product),
            "date": organisation.epj_switch_date,
        }

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(Role.choices)))
    def get_my_roles(self, organisation: Organisation) -> list[str]:
        # Filled by OrganizationViewSet's Prefetch, so a list costs no query per row.
        return sorted(m.role for m in getattr(organisation, "my_memberships", []))


class OrganizationCreateSerializer(serializers.Serializer[Any]):
    orgnr = serializers.CharField(max_length=9, validators=[validate_orgnr])
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=Organisation.Kind.choices)
    kommune = serializers.CharField(
        max_length=4,
        required=False,
        allow_null=True,
        validators=[validate_kommunenummer],
        help_text="Kommune number (kommunenummer), for kind kommune.",
    )


class ProductSerializer(serializers.ModelSerializer[Product]):
    vendor = serializers.CharField(source="vendor.orgnr")
    awaiting_verification = serializers.BooleanField(
        read_only=True,
        help_text="NHN has not verified the product, or the vendor declared a new type since; "
        "production goes by verified_system_type meanwhile (none while verified_at is null).",
    )
    verified_by = serializers.SerializerMethodField(
        help_text='Who verified it: the NHN operator to NHN staff, "NHN" to everyone else '
        "(an operator's e-mail address is not for every logged-in user)."
    )

    class Meta:
        model = Product
        fields = [
            "id",
            "vendor",
            "name",
            "system_type",
            "is_epic",
            "verified_system_type",
            "verified_is_epic",
            "verified_at",
            "verified_by",
            "reverification_requested_at",
            "awaiting_verification",
            "created_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "system_type": {
                "help_text": "The vendor's declaration; the test environment goes by it."
            },
            "verified_system_type": {
                "help_text": "What NHN verified; production goes by it, and waits while "
                "verified_at is null."
            },
        }

    def get_verified_by(self, product: Product) -> str | None:
        if product.verified_at is None:
            return None
        request = self.context.get("request")
        if request is not None and Membership.objects.is_nhn_staff(request.user):
            return product.verified_by.username if product.verified_by else None
        return "NHN"


class ProductInputSerializer(serializers.Serializer[Any]):
    vendor = serializers.CharField(max_length=9, help_text="The vendor's orgnr.")
    name = serializers.CharField(max_length=200)
    system_type = serializers.ChoiceField(choices=Product.SystemType.choices)
    is_epic = serializers.BooleanField(default=False)


class ProductUpdateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200, required=False)
    system_type = serializers.ChoiceField(choices=Product.SystemType.choices, required=False)
    is_epic = serializers.BooleanField(required=False)


class ProductVerifySerializer(serializers.Serializer[Any]):
    system_type = serializers.ChoiceField(
        choices=Product.SystemType.choices, help_text="The system type NHN has verified."
    )
    is_epic = serializers.BooleanField(default=False, help_text="NHN verified it is Epic.")


class MembershipSerializer(serializers.ModelSerializer[Membership]):
    organisation = serializers.CharField(source="organisation.orgnr")
    status = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ["id", "organisation", "email", "role", "status", "created_at", "bound_at"]
        read_only_fields = fields

    def get_status(self, membership: Membership) -> str:
        return "active" if membership.user_id else "invited"


class MembershipInputSerializer(serializers.Serializer[Any]):
    organisation = serializers.CharField(max_length=9, help_text="The organisation's orgnr.")
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipRoleSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(choices=Role.choices)


class EpjPlanInputSerializer(serializers.Serializer[Any]):
    epj_product = serializers.UUIDField(allow_null=True, help_text="The EPJ product in use.")
    switch_product = serializers.UUIDField(
        required=False, allow_null=True, help_text="The EPJ the kommune has agreed to switch to."
    )
    switch_date = serializers.DateField(required=False, allow_null=True)
    uses_vkp = serializers.BooleanField(
        required=False,
        allow_null=True,
        help_text="Whether the kommune uses VKP today (null: not said). Left out: unchanged.",
    )
