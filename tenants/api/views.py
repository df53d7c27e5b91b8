"""The who-API: organisations, products and memberships. Thin: scope, check the role, call one
service function."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api import get_or_404
from portal.http import authenticated_user
from tenants import services
from tenants.api.serializers import (
    EpjPlanInputSerializer,
    MembershipInputSerializer,
    MembershipRoleSerializer,
    MembershipSerializer,
    OrganizationCreateSerializer,
    OrganizationSerializer,
    ProductInputSerializer,
    ProductSerializer,
    ProductUpdateSerializer,
    ProductVerifySerializer,
)
from tenants.models import Membership, Organisation, Product, Role
from tenants.permissions import IsNhnOperator, is_nhn_operator, require_admin, require_role


class OrganizationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[Organisation],
):
    """Organisations the caller may see, named by orgnr. NHN operators register new ones."""

    serializer_class = OrganizationSerializer
    lookup_field = "orgnr"
    lookup_value_regex = r"[^/]+"

    def get_permissions(self) -> list[Any]:
        if self.action == "create":
            return [IsAuthenticated(), IsNhnOperator()]
        return [IsAuthenticated()]

    def get_queryset(self) -> QuerySet[Organisation]:
        user = self.request.user
        return (
            Organisation.objects.visible_to(user)
            .select_related(
                "kommune",
                "epj_product__vendor",
                "epj_switch_product__vendor",
            )
            .prefetch_related(
                Prefetch(
                    "memberships",
                    queryset=Membership.objects.of_user(user),
                    to_attr="my_memberships",
                )
            )
            .order_by("name")
        )

    @extend_schema(request=OrganizationCreateSerializer, responses={201: OrganizationSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = OrganizationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organisation = services.organisation_register(
            orgnr=data.validated_data["orgnr"],
            name=data.validated_data["name"],
            kind=data.validated_data["kind"],
            kommune_number=data.validated_data.get("kommune"),
            actor=authenticated_user(request),
        )
        return Response(
            OrganizationSerializer(self.get_queryset().get(pk=organisation.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=EpjPlanInputSerializer, responses=OrganizationSerializer)
    @action(detail=True, methods=["put"])
    def epj(self, request: Request, orgnr: str) -> Response:
        """A kommune admin records the EPJ in use, the agreed switch (product and date) and
        whether the kommune uses VKP today: its row of NHN's EPJ transition register."""
        kommune = self.get_object()
        require_admin(request.user, kommune)
        data = EpjPlanInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        epj_products = Product.objects.filter(system_type=Product.SystemType.EPJ)

        def product(field: str) -> Product | None:
            pk = data.validated_data.get(field)
            if pk is None:
                return None
            found = epj_products.filter(pk=pk).first()
            if found is None:
                raise ValidationError({field: _("No EPJ product with that id.")})
            return found

        services.kommune_epj_set(
            kommune=kommune,
            product=product("epj_product"),
            switch_product=product("switch_product"),
            switch_date=data.validated_data.get("switch_date"),
            uses_vkp=data.validated_data.get("uses_vkp", services.UNCHANGED),
            actor=authenticated_user(request),
        )
        return Response(OrganizationSerializer(self.get_queryset().get(pk=kommune.pk)).data)


@extend_schema(
    parameters=[
        OpenApiParameter("vendor", str, description="The vendor's orgnr."),
        OpenApiParameter("system_type", str, enum=Product.SystemType.values),
    ]
)
class ProductViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[Product],
):
    """Vendors' systems. Anyone logged in may read them (a kommune picks its EPJ here), so
    nobody logged in is an outsider: those without the role get 403. The vendor declares the
    system type; NHN operators verify it, and production goes by NHN's word."""

    serializer_class = ProductSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Product]:
        queryset = Product.objects.select_related("vendor", "verified_by").order_by(
            "vendor__name", "name"
        )
        if vendor := self.request.query_params.get("vendor"):
            queryset = queryset.filter(vendor__orgnr=vendor)
        if system_type := self.request.query_params.get("system_type"):
            queryset = queryset.filter(system_type=system_type)
        return queryset

    @extend_schema(request=ProductInputSerializer, responses={201: ProductSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = ProductInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        vendor = get_or_404(
            Organisation.objects.visible_to(request.user),
            _("No organisation with orgnr %(orgnr)s.") % {"orgnr": data.validated_data["vendor"]},
            orgnr=data.validated_data["vendor"],
        )
        require_role(request.user, vendor, Role.VENDOR_ADMIN)
        product = services.product_register(
            vendor=vendor,
            name=data.validated_data["name"],
            system_type=data.validated_data["system_type"],
            is_epic=data.validated_data["is_epic"],
            actor=authenticated_user(request),
        )
        return Response(self.get_serializer(product).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ProductUpdateSerializer, responses=ProductSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A vendor admin changes the product; a new type or Epic flag asks NHN to verify again
        (production keeps going by NHN's last verification meanwhile)."""
        product = self.get_object()
        require_role(request.user, product.vendor, Role.VENDOR_ADMIN)
        data = ProductUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.product_declare(
            product=product,
            actor=authenticated_user(request),
            **data.validated_data,
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=product.pk)).data)

    @extend_schema(request=ProductVerifySerializer, responses=ProductSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, IsNhnOperator])
    def verify(self, request: Request, pk: str) -> Response:
        """An NHN operator records the system type (and Epic) NHN has verified; clients of the
        product are re-evaluated: waiting items go on, grants it no longer allows are revoked."""
        product = self.get_object()
        data = ProductVerifySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.product_verify(
            product=product,
            system_type=data.validated_data["system_type"],
            is_epic=data.validated_data["is_epic"],
            actor=authenticated_user(request),
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=product.pk)).data)


@extend_schema(
    parameters=[OpenApiParameter("organisation", str, description="The organisation's orgnr.")]
)
class MembershipViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[Membership],
):
    """People and their roles. An organisation's admins invite, change roles and remove; NHN
    operators bootstrap the first admin of any organisation. Nobody grants above their own role."""

    serializer_class = MembershipSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Membership]:
        queryset = Membership.objects.visible_to(self.request.user).select_related("organisation")
        if orgnr := self.request.query_params.get("organisation"):
            queryset = queryset.filter(organisation__orgnr=orgnr)
        return queryset.order_by("organisation__name", "email")

    def _require_manager(self, request: Request, organisation: Organisation) -> None:
        if not is_nhn_operator(request.user):
            require_admin(request.user, organisation)

    @extend_schema(request=MembershipInputSerializer, responses={201: MembershipSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = MembershipInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organisation = get_or_404(
            Organisation.objects.visible_to(request.user),
            _("No organisation with orgnr %(orgnr)s.")
            % {"orgnr": data.validated_data["organisation"]},
            orgnr=data.validated_data["organisation"],
        )
        self._require_manager(request, organisation)
        membership = services.membership_invite(
            organisation=organisation,
            email=data.validated_data["email"],
            role=data.validated_data["role"],
            actor=authenticated_user(request),
        )
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MembershipRoleSerializer, responses=MembershipSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        membership = self.get_object()
        self._require_manager(request, membership.organisation)
        data = MembershipRoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_role_change(
            membership=membership,
            role=data.validated_data["role"],
            actor=authenticated_user(request),
        )
        return Response(MembershipSerializer(membership).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        membership = self.get_object()
        self._require_manager(request, membership.organisation)
        services.membership_remove(membership=membership, actor=authenticated_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
