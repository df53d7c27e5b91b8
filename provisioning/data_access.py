"""Reading the gateway's data-access log: who called which kommune's service, when, and with
what answer (the rows, ``DataAccessEntry``, are loaded by ``provisioning.access_log``).

The API (``/api/v1/data-access/``) and the page (``provisioning.data_access_views``) read through
the same functions here, on a queryset already scoped to the reader
(``DataAccessEntry.objects.visible_to``). ``gateway_traffic`` is the national overview's: every
kommune's calls, for NHN. Days are the portal's local days (``TIME_ZONE``, Europe/Oslo).
"""

from __future__ import annotations

import bisect
import contextlib
import datetime
import uuid
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import (
    Count,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import TruncDate
from django.utils import timezone

from audit.services import audit_event_record
from provisioning.models import DataAccessEntry, GatewayTrafficDay
from tenants.models import OAuthClient

#: Rows deleted per transaction by the purge (each with its audit event).
PURGE_CHUNK = 50_000
#: The period a reader gets when they name no start: the last 30 days.
DEFAULT_DAYS = 30


def _zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def day_start(day: datetime.date) -> datetime.datetime:
    """The first moment of ``day``, a local day."""
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=_zone())


def period(
    start: datetime.datetime | None, end: datetime.datetime | None
) -> tuple[datetime.datetime, datetime.datetime]:
    """The period a reader asks for: up to ``end`` (excluded; now when not given), from
    ``start`` (DEFAULT_DAYS before the end when not given)."""
    end = end or timezone.now()
    return start or end - datetime.timedelta(days=DEFAULT_DAYS), end


# --- Filters ------------------------------------------------------------------------------------


def client_ids_named(name: str) -> list[str]:
    """The client_ids a reader means by ``name``: a client_id as the log has it, the portal's
    id of a client, or part of a client's name."""
    match = Q(name__icontains=name)
    with contextlib.suppress(ValueError):  # not an id: a client_id or a name
        match |= Q(pk=uuid.UUID(name))
    named = OAuthClient.objects.filter(match).exclude(client_id="").values_list("client_id")
    return [name, *(client_id for (client_id,) in named)]


def entries_filter(
    entries: QuerySet[DataAccessEntry],
    *,
    kommune: str = "",
    client_ids: list[str] | None = None,
    service: str = "",
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
    refused: bool | None = None,
) -> QuerySet[DataAccessEntry]:
    """``entries`` of one kommune (orgnr), of these client_ids, of one service (code), from
    ``start`` up to (not including) ``end``, refused by the gateway or not."""
    if kommune:
        entries = entries.filter(kommune=kommune)
    if client_ids is not None:
        entries = entries.filter(client_id__in=client_ids)
    if service:
        entries = entries.filter(service=service)
    if start is not None:
        entries = entries.filter(occurred_at__gte=start)
    if end is not None:
        entries = entries.filter(occurred_at__lt=end)
    if refused is not None:
        entries = entries.filter(refused=refused)
    return entries


# --- Counting -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DailyCount:
    """Calls on one day by one client to one service, with one class of status."""

    day: datetime.date
    service: str
    client_id: str
    status_class: str  # "2xx", "3xx", "4xx", "5xx" (or "0xx" for a call that got no answer)
    calls: int
    refused: int  # of them, answered by the gateway itself


def _status_class() -> ExpressionWrapper[CombinedExpression]:
    # Integer division on PostgreSQL and SQLite alike: both operands are integers.
    return ExpressionWrapper(F("status") / 100, output_field=IntegerField())


def daily_counts(entries: QuerySet[DataAccessEntry]) -> list[DailyCount]:
    """Per local day, service, client and status class: the calls and the refused among them,
    by day, service, client and class."""
    rows = (
        entries.order_by()
        .annotate(day=TruncDate("occurred_at", tzinfo=_zone()), status_class=_status_class())
        .values("day", "service", "client_id", "status_class")
        .annotate(calls=Count("pk"), refused_calls=Count("pk", filter=Q(refused=True)))
        .order_by("day", "service", "client_id", "status_class")
    )
    return [
        DailyCount(
            day=row["day"],
            service=row["service"],
            client_id=row["client_id"],
            status_class=f"{max(row['status_class'], 0)}xx",
            calls=row["calls"],
            refused=row["refused_calls"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Usage:
    """How often one client called one service of one kommune, with one access."""

    kommune: str
    client_id: str
    service: str
    access: str
    calls: int
    refused: int
    last_at: datetime.datetime


def usage(entries: QuerySet[DataAccessEntry], *, limit: int = 200) -> list[Usage]:
    """Per kommune, client, service and access: the calls, the refused among them and the last
    one; the most called first, at most ``limit``."""
    rows = (
        entries.order_by()
        .values("kommune", "client_id", "service", "access")
        .annotate(
            calls=Count("pk"),
            refused_calls=Count("pk", filter=Q(refused=True)),
            last_at=Max("occurred_at"),
        )
        .order_by("-calls", "kommune", "client_id", "service", "access")[:limit]
    )
    return [
        Usage(
            kommune=row["kommune"],
            client_id=row["client_id"],
            service=row["service"],
            access=row["access"],
            calls=row["calls"],
            refused=row["refused_calls"],
            last_at=row["last_at"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class ServiceDay:
    """The gateway's traffic to one service on one day, across every kommune."""

    day: datetime.date
    service: str  # "" for calls refused before a service was known (no valid token, no route)
    calls: int
    refused: int


def gateway_traffic(*, start: datetime.date, end: datetime.date) -> list[ServiceDay]:
    """The national overview's figure: per local day from ``start`` to ``end`` (both included)
    and per service, the calls through the gateway and the refused among them, every kommune
    and environment together; by day, then service. Days without calls are left out.

    For NHN only (the caller checks who asks). It reads the counts the collector keeps per day
    and service (``GatewayTrafficDay``), not the log: a year costs a few thousand rows however
    many calls there were, and the counts outlive the log's retention."""
    rows = GatewayTrafficDay.objects.filter(day__gte=start, day__lte=end).order_by("day", "service")
    return [
        ServiceDay(day=row.day, service=row.service, calls=row.calls, refused=row.refused)
        for row in rows
    ]


@dataclass(frozen=True)
class Traffic:
    """The gateway's traffic over consecutive spans of days (the national overview's days or
    weeks): the calls and refused calls per service over them all, and per span over every
    service."""

    #: (service code, calls, refused): the ``services`` asked for in their order (none left out,
    #: with or without calls), then any other code with calls ("" last: refused before a
    #: service was known).
    services: list[tuple[str, int, int]]
    #: (first day, last day, calls, refused) per span, in order.
    spans: list[tuple[datetime.date, datetime.date, int, int]]
    calls: int
    refused: int


def gateway_traffic_over(
    spans: list[tuple[datetime.date, datetime.date]], *, services: list[str]
) -> Traffic:
    """``gateway_traffic`` from the first span's first day to the last span's last day, added
    up per service and per span (one query)."""
    per_service: dict[str, list[int]] = {code: [0, 0] for code in services}
    per_span = [[0, 0] for _span in spans]
    firsts = [first for first, _last in spans]
    for row in gateway_traffic(start=spans[0][0], end=spans[-1][1]):
        counts = per_service.setdefault(row.service, [0, 0])
        counts[0] += row.calls
        counts[1] += row.refused
        index = bisect.bisect_right(firsts, row.day) - 1
        per_span[index][0] += row.calls
        per_span[index][1] += row.refused
    others = sorted((c for c in per_service if c not in services), key=lambda c: (not c, c))
    return Traffic(
        services=[
            (code, per_service[code][0], per_service[code][1]) for code in [*services, *others]
        ],
        spans=[
            (first, last, calls, refused)
            for (first, last), (calls, refused) in zip(spans, per_span, strict=True)
        ],
        calls=sum(calls for calls, _refused in per_span),
        refused=sum(refused for _calls, refused in per_span),
    )


# --- Retention ----------------------------------------------------------------------------------


def data_access_purge(*, now: datetime.datetime | None = None) -> int:
    """Delete the entries older than DATA_ACCESS_RETENTION_DAYS, in chunks, each chunk with
    its audit event in its transaction; the number deleted. Idempotent: run it as often as
    you like (beat runs it hourly). The per-day counts (``GatewayTrafficDay``) stay."""
    days = settings.DATA_ACCESS_RETENTION_DAYS
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    deleted = 0
    while True:
        with transaction.atomic():
            old = DataAccessEntry.objects.filter(occurred_at__lt=cutoff).order_by("occurred_at")
            chunk = old.values("pk")[:PURGE_CHUNK]
            count, _ = DataAccessEntry.objects.filter(pk__in=Subquery(chunk)).delete()
            if not count:
                return deleted
            audit_event_record(
                actor=None,
                actor_label="system:data-access-retention",
                action="data_access.purged",
                object_type="provisioning.dataaccessentry",
                after={
                    "deleted": count,
                    "older_than": cutoff.isoformat(),
                    "retention_days": days,
                },
            )
        deleted += count
