"""A person's notifications ("Varsler"): the list, one notification, and marking them read.

A person's own, whatever organisation brought them: another person's notification is 404 to
everybody, NHN staff included. Reading a notification (its page) marks it read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from notifications import services
from notifications.kinds import KINDS
from notifications.models import Notification
from notifications.render import Texts, notification_texts
from tenants.pages import listing


@dataclass(frozen=True)
class Row:
    notification: Notification
    texts: Texts
    kind: str


def _person(request: HttpRequest) -> User:
    if not isinstance(request.user, User):
        raise PermissionDenied
    return request.user


def _row(notification: Notification) -> Row:
    kind = KINDS.get(notification.notice.kind)
    return Row(
        notification=notification,
        texts=notification_texts(notification),
        kind=str(kind.label) if kind else notification.notice.kind,
    )


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    """What has the portal told me, and what have I not read yet?"""
    mine = Notification.objects.visible_to(request.user)
    show = request.GET.get("show", "")
    rows = mine.unread() if show == "unread" else mine
    notifications = listing(
        request,
        rows.select_related("notice", "organisation"),
        sorts={"created": "created_at"},
        default="-created",
    )
    return render(
        request,
        "notifications/list.html",
        {
            "listing": notifications,
            "rows": [_row(n) for n in notifications.rows],
            "show": show,
            "unread": mine.unread().count(),
        },
    )


@login_required
def notification_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    """One notification, in full; opening it marks it read."""
    notification = get_object_or_404(
        Notification.objects.visible_to(request.user).select_related("notice", "organisation"),
        pk=pk,
    )
    services.notification_read(notification=notification, user=_person(request))
    list_url = reverse("notifications:list")
    row = _row(notification)
    return render(
        request,
        "notifications/notification.html",
        {
            "row": row,
            "crumbs": [
                (list_url, _("Notifications")),
                (request.get_full_path(), row.texts.subject),
            ],
        },
    )


@login_required
@require_POST
def notifications_read_all(request: HttpRequest) -> HttpResponse:
    """Mark every notification of the person read."""
    count = services.notifications_read_all(user=_person(request))
    if count:
        messages.success(request, _("All your notifications are marked as read."))
    return redirect("notifications:list")


urlpatterns: list[URLPattern] = [
    path("notifications/", notification_list, name="list"),
    path("notifications/read/", notifications_read_all, name="read_all"),
    path("notifications/<uuid:pk>/", notification_detail, name="notification"),
]
