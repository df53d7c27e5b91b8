from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from tenants import services
from tenants.api.serializers import OrganizationCreateSerializer, OrganizationSerializer
from tenants.models import Membership, Organisation
from tenants.permissions import IsNhnOperator


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
        )
        return Response(OrganizationSerializer(organisation).data, status=status.HTTP_201_CREATED)
