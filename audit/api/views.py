"""The audit trail's API: read-only, scoped to the organisations the caller may audit."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils.module_loading import import_string
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets

from audit.api.serializers import AuditEventSerializer
from audit.models import AuditEvent
from portal.api import CursorPaginationReleased

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def readable_organisations(user: User | AnonymousUser) -> Collection[Any] | None:
    """The ids of the organisations whose events ``user`` may read, or None for all of them.

    Who may audit what is decided by roles, which the apps above this one know; the audit app
    sits at the bottom and imports none of them, so settings.AUDIT_READABLE_ORGANISATIONS names
    the function that answers (tenants.permissions.audit_readable_organisations).
    """
    answer: Callable[[User | AnonymousUser], Collection[Any] | None] = import_string(
        settings.AUDIT_READABLE_ORGANISATIONS
    )
    return answer(user)


class AuditEventPagination(CursorPaginationReleased):
    """A cursor, not an offset: paging through a million events costs no COUNT(*) and stays
    stable while new events arrive."""

    ordering = ("-occurred_at", "-id")
    page_size = 100
    page_size_query_param = "limit"


@extend_schema(
    parameters=[
        OpenApiParameter("organisation", str, description="The organisation's orgnr."),
        OpenApiParameter("action", str, description="e.g. grant.revoked"),
        OpenApiParameter("object_id", str),
    ]
)
class AuditEventViewSet(viewsets.ReadOnlyModelViewSet[AuditEvent]):
    """The audit trail. NHN staff read everything; an organisation's admins read its own."""

    serializer_class = AuditEventSerializer
    pagination_class = AuditEventPagination

    def get_queryset(self) -> QuerySet[AuditEvent]:
        queryset = AuditEvent.objects.all()
        readable = readable_organisations(self.request.user)
        if readable is not None:
            queryset = queryset.filter(organisation_id__in=readable)
        params = self.request.query_params
        if orgnr := params.get("organisation"):
            queryset = queryset.filter(organisation_orgnr=orgnr)
        if event_action := params.get("action"):
            queryset = queryset.filter(action=event_action)
        if object_id := params.get("object_id"):
            queryset = queryset.filter(object_id=object_id)
        return queryset.order_by("-occurred_at", "-id")
