"""The audit trail's API: the list, its export and the chain's head. Read-only; the list is
scoped to the organisations the caller may audit, the export and the head are NHN staff's.

The list and the export take the audit page's filters, by the same names and through the same
function (``tenants.audit.audit_events_filter``): ``kommune`` and ``vendor`` (orgnr), ``client``
(name, client_id or id), ``actor``, ``action``, ``date_from`` and ``date_to`` (days).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from audit.export import FORMATS, audit_events_export
from audit.models import AuditEvent
from audit.selectors import audit_chain_head
from portal.api import CursorPaginationReleased
from tenants.audit import audit_events_filter, audit_events_readable
from tenants.forms.audit import AuditApiFilterForm
from tenants.permissions import IsNhnStaff

#: The newest first, as the page shows them; the id breaks ties between events of one moment.
ORDER = ("-occurred_at", "-id")

FILTERS = [
    OpenApiParameter("kommune", str, description="The kommune's orgnr."),
    OpenApiParameter(
        "vendor", str, description="The vendor's orgnr: its own events and its clients'."
    ),
    OpenApiParameter("client", str, description="A client's name (or part), client_id or id."),
    OpenApiParameter("actor", str, description="Who did it: (part of) a login, or system."),
    OpenApiParameter("action", str, description="e.g. grant.revoked"),
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="From this day (portal time)."),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="To this day, inclusive."),
    OpenApiParameter("organisation", str, description="Any organisation's orgnr."),
    OpenApiParameter("object_id", str),
]


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.CharField(source="actor_label")
    organisation = serializers.CharField(source="organisation_orgnr")
    hash = serializers.CharField(source="chain_hash")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "occurred_at",
            "actor",
            "organisation",
            "action",
            "object_type",
            "object_id",
            "before",
            "after",
            "request_id",
            "hash",
        ]
        read_only_fields = fields


class ChainHeadSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(allow_null=True)
    occurred_at = serializers.DateTimeField(allow_null=True)
    hash = serializers.CharField()


class AuditEventPagination(CursorPaginationReleased):
    """A cursor, not an offset: paging through a million events costs no COUNT(*) and stays
    stable while new events arrive."""

    ordering = ORDER
    page_size = 100
    page_size_query_param = "limit"


@extend_schema(parameters=FILTERS)
class AuditEventViewSet(viewsets.ReadOnlyModelViewSet[AuditEvent]):
    """The audit trail. NHN staff read everything; an organisation's admins read its own."""

    serializer_class = AuditEventSerializer
    pagination_class = AuditEventPagination

    def get_queryset(self) -> QuerySet[AuditEvent]:
        events = audit_events_readable(self.request.user)
        if self.action in ("list", "export"):
            form = AuditApiFilterForm(self.request.query_params)
            if not form.is_valid():
                raise ValidationError(
                    {name: [str(e) for e in errors] for name, errors in form.errors.items()}
                )
            events = audit_events_filter(events, form.cleaned_data)
        return events.order_by(*ORDER)

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        # The export's ?format=csv|jsonl is its own, not DRF's renderer override; what it
        # answers besides the stream (401, 403, 400) is JSON.
        if self.action == "export":
            return JSONRenderer(), JSONRenderer.media_type
        return super().perform_content_negotiation(request, force)

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=sorted(FORMATS), required=True),
            *FILTERS,
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV, one row each"),
            (200, "application/jsonl"): OpenApiResponse(
                OpenApiTypes.STR, description="JSON Lines, one object each"
            ),
        },
    )
    @action(
        detail=False,
        methods=["get"],
        permission_classes=[IsAuthenticated, IsNhnStaff],
        pagination_class=None,
    )
    def export(self, request: Request) -> StreamingHttpResponse:
        """Every event the filters select, newest first, streamed as CSV or JSON Lines (columns
        as the list's, and each event's chain hash). Cells a spreadsheet would run as a formula
        start with '. NHN staff only."""
        kind = request.query_params.get("format", "")
        if kind not in FORMATS:
            raise ValidationError({"format": [_("Choose csv or jsonl.")]})
        media_type, extension = FORMATS[kind]
        response = StreamingHttpResponse(
            audit_events_export(self.get_queryset(), kind=kind), content_type=media_type
        )
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="audit-events-{stamp}.{extension}"'
        return response

    @extend_schema(parameters=[], responses=ChainHeadSerializer)
    @action(
        detail=False,
        methods=["get"],
        url_path="head",
        url_name="head",
        permission_classes=[IsAuthenticated, IsNhnStaff],
        pagination_class=None,
    )
    def chain_head(self, request: Request) -> Response:
        """The chain's newest event (id, time, hash), to keep elsewhere: `manage.py
        audit_verify --head` with it later proves nothing up to it was rewritten or removed."""
        return Response(ChainHeadSerializer(audit_chain_head()).data)
