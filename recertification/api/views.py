"""The recertification API. Thin: scope to the kommuner the caller may read (outsiders get 404),
check the role (403), parse (400), call the service the page calls, answer."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from orders.models import Grant, GrantQuerySet
from portal.api import get_or_404
from portal.http import authenticated_user
from recertification import services
from recertification.api.serializers import (
    RecertificationConfirmedSerializer,
    RecertificationConfirmSerializer,
    RecertificationSerializer,
)
from recertification.selectors import (
    PairDue,
    may_confirm,
    pairs_due,
    recertification_kommuner,
    vendors_due,
)
from tenants.models import Membership, Organisation
from tenants.validators import validate_orgnr


def _orgnr_param(request: Request, name: str) -> str:
    """``?name=<orgnr>``, checked (400 when malformed); '' when absent."""
    value = request.query_params.get(name, "").replace(" ", "")
    if value:
        try:
            validate_orgnr(value)
        except DjangoValidationError as error:
            raise ValidationError({name: error.messages}) from error
    return value


class RecertificationViewSet(viewsets.GenericViewSet[Any]):
    """What each kommune must confirm again, and when. A kommune's admins and readers see their
    own kommune's; NHN staff see every kommune's; only the kommune's admins confirm."""

    serializer_class = RecertificationSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("kommune", str, description="The kommune's orgnr."),
            OpenApiParameter("vendor", str, description="The vendor's orgnr."),
        ],
        responses=RecertificationSerializer(many=True),
        description="Each vendor with live access in a kommune, soonest lapse first: when the "
        "kommune last confirmed it, the day it lapses and each grant's own day. A kommune the "
        "caller may not see is 404.",
    )
    def list(self, request: Request) -> Response:
        kommuner = recertification_kommuner(request.user)
        grants: GrantQuerySet = (
            Grant.objects.all()
            if Membership.objects.is_nhn_staff(request.user)
            else Grant.objects.filter(kommune__in=kommuner)
        )
        if orgnr := _orgnr_param(request, "kommune"):
            kommune = get_or_404(
                kommuner, _("No kommune with orgnr %(orgnr)s.") % {"orgnr": orgnr}, orgnr=orgnr
            )
            grants = grants.filter(kommune=kommune)
        if orgnr := _orgnr_param(request, "vendor"):
            grants = grants.filter(client__vendor__orgnr=orgnr)
        today = timezone.localdate()
        pairs = pairs_due(grants, today=today)
        page: list[PairDue] = self.paginate_queryset(pairs) or []  # type: ignore[arg-type]
        rows = vendors_due(grants, page, today=today)
        return self.get_paginated_response(RecertificationSerializer(rows, many=True).data)

    @extend_schema(
        request=RecertificationConfirmSerializer,
        responses=RecertificationConfirmedSerializer,
        description="A kommune admin confirms that the vendor keeps its live access in the "
        "kommune: each of its grants there starts its clock again. The grants in "
        "`not_confirmed` are revoked instead, through provisioning. The page's button does "
        "the same.",
    )
    @action(detail=False, methods=["post"])
    def confirm(self, request: Request) -> Response:
        data = RecertificationConfirmSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        orgnr = data.validated_data["kommune"]
        kommune = get_or_404(
            recertification_kommuner(request.user),
            _("No kommune with orgnr %(orgnr)s.") % {"orgnr": orgnr},
            orgnr=orgnr,
        )
        if not may_confirm(request.user, kommune):
            raise PermissionDenied(
                _("Only an administrator of %(kommune)s confirms its vendors' access.")
                % {"kommune": kommune.name}
            )
        vendor = Organisation.objects.filter(
            kind=Organisation.Kind.VENDOR, orgnr=data.validated_data["vendor"]
        ).first()
        if vendor is None:
            raise ValidationError(
                {
                    "vendor": [
                        _("No vendor with orgnr %(orgnr)s.")
                        % {"orgnr": data.validated_data["vendor"]}
                    ]
                }
            )
        outcome = services.recertification_confirm(
            kommune=kommune,
            vendor=vendor,
            actor=authenticated_user(request),
            not_confirmed=data.validated_data["not_confirmed"],
        )
        return Response(RecertificationConfirmedSerializer(outcome).data)
