"""The caller's own notifications: read them, mark them read. Nobody reads another's (404)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from notifications import services
from notifications.api.serializers import NotificationSerializer
from notifications.models import Notification


def _person(request: Request) -> User:
    if not isinstance(request.user, User):
        raise PermissionDenied
    return request.user


@extend_schema(
    parameters=[OpenApiParameter("unread", bool, description="Only those not read yet.")]
)
class NotificationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Notification]
):
    """What the portal told the caller, newest first (``Accept-Language`` words it)."""

    serializer_class = NotificationSerializer

    def get_queryset(self) -> QuerySet[Notification]:
        mine = Notification.objects.visible_to(self.request.user).select_related(
            "notice", "organisation"
        )
        if self.request.query_params.get("unread") in ("1", "true"):
            mine = mine.unread()
        return mine.order_by("-created_at", "pk")

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: Any = None) -> Response:
        """Mark the notification read."""
        notification = self.get_object()
        services.notification_read(notification=notification, user=_person(request))
        return Response(self.get_serializer(notification).data)

    @extend_schema(
        request=None,
        responses=inline_serializer("NotificationsRead", {"read": serializers.IntegerField()}),
    )
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request: Request) -> Response:
        """Mark every unread notification of the caller read."""
        return Response({"read": services.notifications_read_all(user=_person(request))})
