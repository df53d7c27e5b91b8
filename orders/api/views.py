"""The ordering API. Thin: scope the queryset (outsiders get 404), check the role (members
without it get 403), parse, call one service function, answer."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from django.db.models import Prefetch, Q, QuerySet
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action, api_view
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from orders import services
from orders.api.serializers import (
    AccessPeriodSerializer,
    AccessRequestInputSerializer,
    AccessRequestSerializer,
    ApproveSerializer,
    ClientInputSerializer,
    ClientSerializer,
    DelegationInputSerializer,
    DelegationSerializer,
    GrantRevokeSerializer,
    GrantSerializer,
    InstructionInputSerializer,
    InstructionSerializer,
    ItemsActionSerializer,
    RejectSerializer,
    ServiceSerializer,
    VendorSuspendSerializer,
)
from orders.forms.history import AccessHistoryForm
from orders.history import access_history, csv_filename, csv_records
from orders.models import (
    Access,
    AccessRequest,
    AccessRequestItem,
    Delegation,
    Grant,
    GrantPeriod,
    GrantStatus,
    Instruction,
    Service,
)
from portal.api import get_or_404
from portal.exports import csv_streaming_response
from portal.http import authenticated_user
from tenants.api.serializers import OrganizationSerializer
from tenants.auth import FRESH_LOGIN_SECONDS, login_is_fresh
from tenants.models import ClientKey, Membership, OAuthClient, Organisation, Product, Role
from tenants.permissions import is_admin_of, is_nhn_operator, require_admin, require_role

Item = TypeVar("Item", services.ItemInput, services.DelegationItemInput)


def _items(kind: type[Item], rows: list[dict[str, Any]]) -> list[Item]:
    """The service functions' items from an input serializer's validated items."""
    return [
        kind(
            service=row["service"],
            access=row["access"],
            service_codes=tuple(row.get("service_codes", ())),
        )
        for row in rows
    ]


class ServiceViewSet(viewsets.ReadOnlyModelViewSet[Service]):
    """The service catalogue, for any logged-in person. Services are named by code."""

    serializer_class = ServiceSerializer
    lookup_field = "code"
    pagination_class = None  # nine services; the catalogue is one document

    def get_queryset(self) -> QuerySet[Service]:
        return Service.objects.with_availability()


# --- Helpers ------------------------------------------------------------------------------------

#: Instructions show their services by code: a list of 100 of them loads 900
#: services, and whole rows (names and descriptions in two languages) cost most of its time.
SERVICES_AS_CODES = Prefetch("services", queryset=Service.objects.only("code", "position"))


def uuid_param(request: Request, name: str) -> uuid.UUID | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationError({name: _("Not a valid id: %(value)s.") % {"value": value}}) from None


def filter_by(queryset: QuerySet[Any], request: Request, **lookups: str) -> QuerySet[Any]:
    """Apply ``?param=value`` filters: ``lookups`` maps a query parameter to a field lookup."""
    for param, lookup in lookups.items():
        if param == "client":
            value: Any = uuid_param(request, "client")
        else:
            value = request.query_params.get(param)
        if value:
            queryset = queryset.filter(**{lookup: value})
    return queryset


def addressable_kommuner(user: Any) -> QuerySet[Organisation]:
    """Kommuner a caller may name in an order: any kommune for vendors and NHN, their own for
    kommune members."""
    roles = Membership.objects.roles_of(user)
    if roles.member_of_kind(Organisation.Kind.VENDOR) or roles.has(Role.NHN_OPERATOR):
        return Organisation.objects.kommuner()
    return Organisation.objects.visible_to(user).kommuner()


def addressable_clients(user: Any) -> QuerySet[OAuthClient]:
    """Clients a caller may name in an order: their vendor's; any active one for a kommune's
    members (the vendor gives them the id) and NHN staff. Naming it is not ordering: a member
    without the right to order is then refused with 403, not told the client does not exist."""
    roles = Membership.objects.roles_of(user)
    if roles.member_of_kind(Organisation.Kind.KOMMUNE) or roles.nhn_staff:
        return OAuthClient.objects.active()
    return OAuthClient.objects.visible_to(user).active()


# --- Instructions -------------------------------------------------------------------------------


@extend_schema(parameters=[OpenApiParameter("kommune", str, description="The kommune's orgnr.")])
class InstructionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Instruction],
):
    """A kommune's data-processing instructions to NHN: drafts, and signed versions (immutable)."""

    serializer_class = InstructionSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Instruction]:
        queryset = (
            Instruction.objects.visible_to(self.request.user)
            .select_related("kommune")
            .prefetch_related(SERVICES_AS_CODES)
            .order_by("kommune__name", "-version")
        )
        return filter_by(queryset, self.request, kommune="kommune__orgnr")

    @extend_schema(request=InstructionInputSerializer, responses={201: InstructionSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = InstructionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        orgnr = fields.pop("kommune")
        kommune = get_or_404(
            Organisation.objects.visible_to(request.user).kommuner(),
            _("No kommune with orgnr %(orgnr)s.") % {"orgnr": orgnr},
            orgnr=orgnr,
        )
        require_admin(request.user, kommune)
        instruction = services.instruction_create(
            kommune=kommune,
            actor=authenticated_user(request),
            services=fields.pop("services"),
            data=fields,
        )
        return Response(InstructionSerializer(instruction).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=InstructionInputSerializer, responses=InstructionSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instruction = self.get_object()
        require_admin(request.user, instruction.kommune)
        data = InstructionInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        if "kommune" in fields and fields.pop("kommune") != instruction.kommune.orgnr:
            raise ValidationError({"kommune": _("An instruction stays with its kommune.")})
        instruction = services.instruction_update(
            instruction=instruction,
            actor=authenticated_user(request),
            services=fields.pop("services", None),
            data=fields,
        )
        return Response(InstructionSerializer(instruction).data)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.partial_update(request, *args, **kwargs)

    @extend_schema(request=None, responses=InstructionSerializer)
    @action(detail=True, methods=["post"])
    def sign(self, request: Request, pk: str) -> Response:
        instruction = self.get_object()
        require_admin(request.user, instruction.kommune)
        # The page's rule (orders.views.instruction.sign): a named person who logged in at the
        # provider a few minutes ago, so the API is no way around the fresh login.
        by_person = isinstance(request.successful_authenticator, SessionAuthentication)
        if not (by_person and login_is_fresh(request)):
            return Response(
                {
                    "detail": _(
                        "Signing needs a person who logged in at the provider in the last "
                        "%(minutes)s minutes. Log in again at the address in fresh_login, "
                        "then sign."
                    )
                    % {"minutes": FRESH_LOGIN_SECONDS // 60},
                    "fresh_login": request.build_absolute_uri(
                        reverse(
                            "orders:instruction_confirm_login",
                            args=[instruction.kommune.orgnr, instruction.version],
                        )
                    ),
                },
                status=status.HTTP_403_FORBIDDEN,
            )
        instruction = services.instruction_sign(
            instruction=instruction,
            actor=authenticated_user(request),
        )
        return Response(InstructionSerializer(instruction).data)


# --- Delegations --------------------------------------------------------------------------------


@extend_schema(
    parameters=[
        OpenApiParameter("kommune", str, description="The kommune's orgnr."),
        OpenApiParameter("vendor", str, description="The vendor's orgnr."),
    ]
)
class DelegationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[Delegation],
):
    """Services a kommune delegates to a vendor, so its requests are approved without asking."""

    serializer_class = DelegationSerializer

    def get_queryset(self) -> QuerySet[Delegation]:
        # A page's items are read at once by the serializer (DelegationListSerializer).
        queryset = Delegation.objects.visible_to(self.request.user).select_related(
            "kommune", "vendor"
        )
        return filter_by(queryset, self.request, kommune="kommune__orgnr", vendor="vendor__orgnr")

    @extend_schema(request=DelegationInputSerializer, responses={201: DelegationSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = DelegationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        kommune = get_or_404(
            Organisation.objects.visible_to(request.user).kommuner(),
            _("No kommune with orgnr %(orgnr)s.") % {"orgnr": data.validated_data["kommune"]},
            orgnr=data.validated_data["kommune"],
        )
        require_admin(request.user, kommune)
        vendor = get_or_404(
            Organisation.objects.filter(kind=Organisation.Kind.VENDOR),
            _("No vendor with orgnr %(orgnr)s.") % {"orgnr": data.validated_data["vendor"]},
            orgnr=data.validated_data["vendor"],
        )
        delegation = services.delegation_create(
            kommune=kommune,
            vendor=vendor,
            items=_items(services.DelegationItemInput, data.validated_data["items"]),
            valid_from=data.validated_data.get("valid_from"),
            valid_until=data.validated_data.get("valid_until"),
            actor=authenticated_user(request),
        )
        return Response(DelegationSerializer(delegation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=DelegationSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        delegation = self.get_object()
        require_admin(request.user, delegation.kommune)
        delegation = services.delegation_revoke(
            delegation=delegation,
            actor=authenticated_user(request),
        )
        return Response(DelegationSerializer(delegation).data)


# --- Clients ------------------------------------------------------------------------------------


@extend_schema(
    parameters=[
        OpenApiParameter("vendor", str, description="The vendor's orgnr."),
        OpenApiParameter("environment", str, enum=["test", "production"]),
    ]
)
class ClientViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[OAuthClient],
):
    """Vendors' OAuth clients (private_key_jwt, public keys only). Kommune members see the
    clients that asked their kommune for access."""

    serializer_class = ClientSerializer

    def get_queryset(self) -> QuerySet[OAuthClient]:
        user = self.request.user
        asked_mine = AccessRequest.objects.filter(
            kommune__in=Organisation.objects.visible_to(user)
        ).values("client_id")
        queryset = (
            OAuthClient.objects.filter(
                Q(pk__in=OAuthClient.objects.visible_to(user).values("pk")) | Q(pk__in=asked_mine)
            )
            .select_related("vendor")
            .prefetch_related(Prefetch("keys", queryset=ClientKey.objects.order_by("kid")))
            .order_by("name", "created_at")
        )
        return filter_by(queryset, self.request, vendor="vendor__orgnr", environment="environment")

    @extend_schema(request=ClientInputSerializer, responses={201: ClientSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = ClientInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["purpose"] == OAuthClient.Purpose.PORTAL_API:
            organisation = get_or_404(
                Organisation.objects.visible_to(request.user),
                _("No organisation with orgnr %(orgnr)s.")
                % {"orgnr": data.validated_data["organisation"]},
                orgnr=data.validated_data["organisation"],
            )
            require_admin(request.user, organisation)
            client = services.automation_client_register(
                organisation=organisation,
                name=data.validated_data["name"],
                role=data.validated_data["role"],
                jwks=data.validated_data["jwks"],
                actor=authenticated_user(request),
            )
            return Response(ClientSerializer(client).data, status=status.HTTP_201_CREATED)
        product = (
            Product.objects.filter(vendor__in=Organisation.objects.visible_to(request.user))
            .select_related("vendor")
            .filter(pk=data.validated_data["product"])
            .first()
        )
        if product is None:
            raise NotFound(_("No product with that id."))
        require_role(request.user, product.vendor, Role.VENDOR_ADMIN, Role.VENDOR_DEVELOPER)
        client = services.client_register(
            vendor=product.vendor,
            product=product,
            name=data.validated_data["name"],
            environment=data.validated_data["environment"],
            jwks=data.validated_data["jwks"],
            actor=authenticated_user(request),
        )
        return Response(ClientSerializer(client).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={"application/json": {"type": "object", "properties": {"keys": {"type": "array"}}}},
        responses=ClientSerializer,
    )
    @action(detail=True, methods=["put"])
    def jwks(self, request: Request, pk: str) -> Response:
        client = self.get_object()
        if client.purpose == OAuthClient.Purpose.PORTAL_API:
            # Its keys are its role: only the organisation's admins hold that much.
            require_admin(request.user, client.vendor)
        else:
            require_role(request.user, client.vendor, Role.VENDOR_ADMIN, Role.VENDOR_DEVELOPER)
        client = services.client_jwks_rotate(
            client=client,
            jwks=request.data,
            actor=authenticated_user(request),
        )
        return Response(ClientSerializer(self.get_queryset().get(pk=client.pk)).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        client = self.get_object()
        if is_nhn_operator(request.user):
            pass
        elif client.purpose == OAuthClient.Purpose.PORTAL_API:  # a kommune's, or a vendor's
            require_admin(request.user, client.vendor)
        else:
            require_role(request.user, client.vendor, Role.VENDOR_ADMIN)
        services.client_remove(client=client, actor=authenticated_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Access requests ----------------------------------------------------------------------------


@extend_schema(
    parameters=[
        OpenApiParameter("kommune", str, description="The kommune's orgnr."),
        OpenApiParameter("client", str, description="The client's id."),
        OpenApiParameter("status", str, description="Requests with an item in this status."),
    ]
)
class AccessRequestViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[AccessRequest],
):
    """Orders: a client asks a kommune for services. Each item carries the policy's decision."""

    serializer_class = AccessRequestSerializer

    def get_queryset(self) -> QuerySet[AccessRequest]:
        items = AccessRequestItem.objects.select_related("service").order_by(
            "service__position", "access"
        )
        # to_attr fills the attribute the model declares (the stubs see it as a second one).
        ordered = Prefetch("items", queryset=items, to_attr="ordered_items")
        queryset: QuerySet[AccessRequest] = (
            AccessRequest.objects.visible_to(self.request.user)
            .select_related("kommune", "requested_by")
            .prefetch_related(ordered)  # type: ignore[no-redef]
        )
        queryset = filter_by(queryset, self.request, kommune="kommune__orgnr", client="client_id")
        if status_filter := self.request.query_params.get("status"):
            queryset = queryset.filter(
                pk__in=AccessRequestItem.objects.filter(status=status_filter).values("request_id")
            )
        return queryset

    @extend_schema(
        request=AccessRequestInputSerializer,
        responses={201: AccessRequestSerializer(many=True)},
        description="One request per kommune. With `kommune` the answer is the request; with "
        "`kommuner` it is a list of requests.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = AccessRequestInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        client = (
            addressable_clients(request.user)
            .select_related("vendor")
            .filter(pk=data.validated_data["client"])
            .first()
        )
        if client is None:
            raise NotFound(_("No client with that id."))
        orgnrs = data.validated_data.get("kommuner") or [data.validated_data["kommune"]]
        addressable = addressable_kommuner(request.user)
        kommuner = {k.orgnr: k for k in addressable.filter(orgnr__in=orgnrs)}
        missing = [o for o in orgnrs if o not in kommuner]
        if missing:
            raise NotFound(_("No kommune with orgnr %(orgnr)s.") % {"orgnr": ", ".join(missing)})

        if is_admin_of(request.user, client.vendor):
            initiated_by = AccessRequest.Initiator.VENDOR
        elif "kommuner" not in data.validated_data and is_admin_of(
            request.user, kommuner[orgnrs[0]]
        ):
            initiated_by = AccessRequest.Initiator.KOMMUNE
        else:
            raise PermissionDenied(
                _("An access request is made by the client's vendor admin or a kommune admin.")
            )

        created = services.access_request_create(
            client=client,
            kommuner=[kommuner[o] for o in orgnrs],
            items=_items(services.ItemInput, data.validated_data["items"]),
            initiated_by=initiated_by,
            actor=authenticated_user(request),
        )
        created.sort(key=lambda r: r.kommune.name)
        body = AccessRequestSerializer(created, many=True).data
        if "kommuner" not in data.validated_data:
            return Response(body[0], status=status.HTTP_201_CREATED)
        return Response(body, status=status.HTTP_201_CREATED)

    def _items_action(
        self,
        request: Request,
        act: Any,
        who: str,
        serializer: type[ItemsActionSerializer] = ItemsActionSerializer,
    ) -> Response:
        access_request = self.get_object()
        data = serializer(data=request.data)
        data.is_valid(raise_exception=True)
        extra = {k: v for k, v in data.validated_data.items() if k != "items"}
        if who == "kommune":
            require_admin(request.user, access_request.kommune)
        elif who == "vendor":
            if access_request.initiated_by != AccessRequest.Initiator.KOMMUNE:
                raise PermissionDenied(_("Only the kommune's own orders wait for the vendor."))
            require_role(request.user, access_request.client.vendor, Role.VENDOR_ADMIN)
        else:  # the requester's side
            side = (
                access_request.client.vendor
                if access_request.initiated_by == AccessRequest.Initiator.VENDOR
                else access_request.kommune
            )
            require_admin(request.user, side)
        act(
            request=access_request,
            actor=authenticated_user(request),
            item_ids=data.validated_data.get("items"),
            **extra,
        )
        return Response(AccessRequestSerializer(self.get_queryset().get(pk=access_request.pk)).data)

    @extend_schema(request=ApproveSerializer, responses=AccessRequestSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        """A kommune admin approves items that wait for the kommune, and may narrow the
        service codes each item's grant holds."""
        return self._items_action(
            request, services.access_request_approve, "kommune", ApproveSerializer
        )

    @extend_schema(request=ItemsActionSerializer, responses=AccessRequestSerializer)
    @action(detail=True, methods=["post"])
    def consent(self, request: Request, pk: str) -> Response:
        """An admin of the client's vendor consents to a kommune's order for that client."""
        return self._items_action(request, services.access_request_consent, "vendor")

    @extend_schema(request=RejectSerializer, responses=AccessRequestSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        return self._items_action(
            request, services.access_request_reject, "kommune", RejectSerializer
        )

    @extend_schema(request=ItemsActionSerializer, responses=AccessRequestSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str) -> Response:
        return self._items_action(request, services.access_request_withdraw, "requester")


# --- Grants -------------------------------------------------------------------------------------


@extend_schema(
    parameters=[
        OpenApiParameter("kommune", str, description="The kommune's orgnr."),
        OpenApiParameter("client", str, description="The client's id."),
        OpenApiParameter("service", str, description="The service's code."),
        OpenApiParameter("status", str, enum=GrantStatus.values),
    ]
)
class GrantViewSet(viewsets.ReadOnlyModelViewSet[Grant]):
    """Who has which access: client x kommune x service x access, never deleted."""

    serializer_class = GrantSerializer

    def get_queryset(self) -> QuerySet[Grant]:
        if self.action == "revoke":  # to find it (404) and check its kommune's admin (403): the
            # service reads it again, locked, with what the answer shows
            return Grant.objects.visible_to(self.request.user).select_related("kommune")
        queryset = Grant.objects.visible_to(self.request.user).select_related(
            "client", "kommune", "service", "instruction", "approved_by"
        )
        return filter_by(
            queryset,
            self.request,
            kommune="kommune__orgnr",
            client="client_id",
            service="service__code",
            status="status",
        )

    @extend_schema(request=GrantRevokeSerializer, responses=GrantSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        grant = self.get_object()
        if not is_nhn_operator(request.user):
            require_admin(request.user, grant.kommune)
        data = GrantRevokeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        revoked = services.grant_revoke(
            grant=grant,
            actor=authenticated_user(request),
            reason=data.validated_data.get("reason", ""),
        )
        return Response(GrantSerializer(revoked).data)


# --- Who had access when ------------------------------------------------------------------------


class HistoryCSVRenderer(BaseRenderer):
    """``?format=csv`` (or ``Accept: text/csv``): the whole answer as one streamed CSV file,
    which the list writes itself (``AccessHistoryViewSet.list``); errors answer in JSON."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        raise NotImplementedError("the access history writes its CSV itself")


_MOMENT = "ISO 8601, e.g. 2026-03-01T12:00:00+01:00 (without an offset: Norwegian time)."


@extend_schema(
    parameters=[
        OpenApiParameter("kommune", str, description="The kommune's orgnr."),
        OpenApiParameter("vendor", str, description="The vendor's orgnr."),
        OpenApiParameter("client", str, description="The client's id, or its client_id."),
        OpenApiParameter("service", str, description="The service's code."),
        OpenApiParameter("access", str, enum=Access.values),
        OpenApiParameter("at", OpenApiTypes.DATETIME, description=f"A moment. {_MOMENT}"),
        OpenApiParameter(
            "from",
            OpenApiTypes.DATETIME,
            description=f"Instead of `at`: the start of a period (included). {_MOMENT}",
        ),
        OpenApiParameter(
            "to",
            OpenApiTypes.DATETIME,
            description=f"Instead of `at`: the end of a period (not included). {_MOMENT}",
        ),
        OpenApiParameter(
            "format", str, enum=["json", "csv"], description="`csv`: every row, streamed."
        ),
    ]
)
class AccessHistoryViewSet(viewsets.GenericViewSet[GrantPeriod]):
    """Who had access when: which clients of which vendors had read or write access to a
    kommune's service at a moment (``at``, default now), or at some time in a period (``from``,
    ``to``, each row with the interval it had it). Each row is one period of a grant, the
    half-open interval ``[started_at, ended_at)`` from its activation until its revocation (or
    until its client's keys all expired), with who approved it and how, and the instruction
    version and delegation it rested on. Built from the history: a grant revoked and granted
    again is two grants, each with its own periods. NHN staff see every kommune, a kommune's
    members their kommune, a vendor's its clients."""

    serializer_class = AccessPeriodSerializer
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, HistoryCSVRenderer]

    def get_queryset(self) -> QuerySet[GrantPeriod]:
        return GrantPeriod.objects.none()  # the list asks ``access_history`` (for the schema)

    def handle_exception(self, exc: Exception) -> Response:
        # A bad question asked for CSV is answered like any other: 400 with field errors, JSON.
        if getattr(getattr(self.request, "accepted_renderer", None), "format", "") == "csv":
            self.request.accepted_renderer = JSONRenderer()
            self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)

    @extend_schema(
        responses={
            (200, "application/json"): AccessPeriodSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="Every row, one line each (header: the JSON fields, flattened).",
            ),
        }
    )
    def list(self, request: Request) -> Response | StreamingHttpResponse:
        form = AccessHistoryForm(request.query_params)
        if not form.is_valid():
            raise ValidationError(form.errors_by_field())
        periods = access_history(user=request.user, query=form.query).order_by("started_at", "pk")
        if request.accepted_renderer.format == "csv":
            return csv_streaming_response(
                csv_records(periods), filename=csv_filename(form.query), bom=False
            )
        page = self.paginate_queryset(periods)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


# --- Suspending a vendor ------------------------------------------------------------------------


def _vendor_to_suspend(request: Request, orgnr: str) -> Organisation:
    """The organisation named by orgnr, if the caller may see it (404), for NHN operators only
    (403)."""
    vendor = get_or_404(
        Organisation.objects.visible_to(request.user),
        _("No organisation with orgnr %(orgnr)s.") % {"orgnr": orgnr},
        orgnr=orgnr,
    )
    if not is_nhn_operator(request.user):
        raise PermissionDenied(_("Only NHN operators suspend vendors."))
    return vendor


@extend_schema(
    request=VendorSuspendSerializer,
    responses=OrganizationSerializer,
    tags=["organizations"],
    description="NHN operators suspend a vendor: every live grant of its clients is revoked "
    "through provisioning and its new orders are rejected, until the suspension is lifted. "
    "Suspending a suspended vendor changes nothing.",
)
@api_view(["POST"])
def organization_suspend(request: Request, orgnr: str) -> Response:
    vendor = _vendor_to_suspend(request, orgnr)
    data = VendorSuspendSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    services.vendor_suspend(
        vendor=vendor, actor=authenticated_user(request), reason=data.validated_data["reason"]
    )
    vendor.refresh_from_db()
    return Response(OrganizationSerializer(vendor).data)


@extend_schema(
    request=None,
    responses=OrganizationSerializer,
    tags=["organizations"],
    description="NHN operators lift a vendor's suspension: each grant it closed is decided again "
    "by the policy and provisioned again. Lifting when none is in force changes nothing.",
)
@api_view(["POST"])
def organization_lift_suspension(request: Request, orgnr: str) -> Response:
    vendor = _vendor_to_suspend(request, orgnr)
    services.vendor_suspension_lift(vendor=vendor, actor=authenticated_user(request))
    vendor.refresh_from_db()
    return Response(OrganizationSerializer(vendor).data)
