"""What the audit trail's page, its API list and its export share: whose events a person reads,
and the one set of filters (kommune, vendor, client, who did it, action, days).

It lives here, not in the audit app: the filters name organisations and clients, which the audit
app, at the bottom, does not know; the page and the API both sit at this level or above.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid
from typing import TYPE_CHECKING, Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from audit.models import AuditEvent
from tenants.models import OAuthClient
from tenants.permissions import audit_readable_organisations

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def audit_events_readable(user: User | AnonymousUser) -> QuerySet[AuditEvent]:
    """Every event for NHN staff; an organisation's admins read their organisations' events."""
    events: QuerySet[AuditEvent] = AuditEvent.objects.all()
    readable = audit_readable_organisations(user)
    if readable is not None:
        events = events.filter(organisation_id__in=readable)
    return events


def _client_ids(query: str) -> list[str]:
    """The ids of the clients a person means by ``query``: its name, client_id or id."""
    match = Q(name__icontains=query) | Q(client_id=query)
    with contextlib.suppress(ValueError):  # not an id: the name or client_id alone
        match |= Q(pk=uuid.UUID(query))
    return [str(pk) for pk in OAuthClient.objects.filter(match).values_list("pk", flat=True)]


def _about_clients(ids: list[str]) -> Q:
    """Events about these clients: their own, and those of their grants and orders (whose
    before or after names the client)."""
    return Q(object_id__in=ids) | Q(after__client__in=ids) | Q(before__client__in=ids)


def audit_events_filter(events: QuerySet[AuditEvent], data: dict[str, Any]) -> QuerySet[AuditEvent]:
    """``events`` narrowed by the cleaned data of ``AuditFilterForm`` (or the API's form, which
    adds ``organisation`` and ``object_id``); a filter left empty narrows nothing."""
    if kommune := data.get("kommune"):
        events = events.filter(organisation_id=kommune.pk)
    if vendor := data.get("vendor"):
        ids = [str(pk) for pk in vendor.clients.values_list("pk", flat=True)]
        events = events.filter(Q(organisation_id=vendor.pk) | _about_clients(ids))
    if client := data.get("client"):
        ids = _client_ids(client)
        events = events.filter(_about_clients(ids)) if ids else events.none()
    if actor := data.get("actor"):
        events = events.filter(actor_label__icontains=actor)
    if action := data.get("action"):
        events = events.filter(action=action)
    if orgnr := data.get("organisation"):
        events = events.filter(organisation_orgnr=orgnr)
    if object_id := data.get("object_id"):
        events = events.filter(object_id=object_id)
    zone = timezone.get_current_timezone()
    if start := data.get("date_from"):
        events = events.filter(
            occurred_at__gte=datetime.datetime.combine(start, datetime.time.min, tzinfo=zone)
        )
    if end := data.get("date_to"):
        after_end = end + datetime.timedelta(days=1)
        events = events.filter(
            occurred_at__lt=datetime.datetime.combine(after_end, datetime.time.min, tzinfo=zone)
        )
    return events
