"""The national overview, for NHN: how far the country has come and how provisioning is doing.

Read only, for NHN staff (the page and the API check that), in a fixed number of queries whatever
the number of grants, so the page stays quick at national scale:

- **Kommuner onboarded** per service and environment: a kommune counts for a service when it has
  at least one active grant of it, for a client in that environment.
- **Grants over time**: the grants active at the end of each day or week (the last point: now),
  per environment, built from the grants themselves. A grant counts from the day it was granted
  (``created_at``) until the day its revocation began (``revoked_at``), if it is active now or was
  revoked since (``revoking``, ``revoked``). What ``Grant`` keeps cannot say more: a revoked grant
  that never turned active counts for its short life, a grant waiting or failed now counts for no
  day (even if it was active before a failed re-provisioning), and the gap between granted and
  active (seconds, normally) is not seen. The access history of grants' active periods (another
  part of issue 13) will give exact periods.
- **Provisioning health**: the queue (jobs pending, running), failures (jobs failed, and of those
  the ones that failed over the last day; grants failed), the oldest pending job's age, and the
  time from order to active over the last day: for each grant that turned active in the last 24
  hours, from the newest order that asked for it (placed before it turned active) to that moment,
  as the 50th and 95th percentile (nearest rank). Grants without an order (none yet today) are not
  counted.

The gateway's traffic per service is not here (orders may not import provisioning): the page and
the API in ``provisioning.overview`` add it from ``provisioning.data_access.gateway_traffic_over``.
"""

from __future__ import annotations

import bisect
import calendar
import datetime
import math
from dataclasses import dataclass, field

from django.db.models import Case, Count, DateField, F, Max, Min, Q, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from orders.models import AccessRequestItem, Grant, GrantStatus, ProvisioningJob, Service
from tenants.models import Environment, Organisation

#: The statuses of grants that were active for a while: active now, or revoked since.
HELD_STATUSES = (GrantStatus.ACTIVE, GrantStatus.REVOKING, GrantStatus.REVOKED)
#: The intervals of the chart, in days.
INTERVAL_DAYS = {"day": 1, "week": 7}
MONTHS_MAX = 24
#: Points per day for at most this many months: a point a day over years is more than a chart
#: shows or a table beside it can be read, and its page would cost as much again.
DAY_MONTHS_MAX = 3


@dataclass(frozen=True)
class Onboarding:
    """How many kommuner have a service active, per environment (``Environment.values`` order)."""

    service: Service
    kommuner: dict[str, int]


@dataclass(frozen=True)
class Point:
    """The grants active at the end of ``end`` (a day; today: now), per environment."""

    start: datetime.date
    end: datetime.date
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Health:
    pending: int
    running: int
    failed_jobs: int
    failed_last_day: int
    failed_grants: int
    oldest_pending_at: datetime.datetime | None
    oldest_pending_age: datetime.timedelta | None
    #: Grants that turned active over the last day, with an order before them.
    activated: int
    order_to_active_p50: datetime.timedelta | None
    order_to_active_p95: datetime.timedelta | None


@dataclass(frozen=True)
class Overview:
    at: datetime.datetime
    kommuner: int
    onboarding: list[Onboarding]
    months: int
    interval: str
    points: list[Point]
    health: Health
    environments: list[str] = field(default_factory=lambda: list(Environment.values))


def national_overview(
    *, now: datetime.datetime, months: int = 6, interval: str = "week"
) -> Overview:
    """The overview as of ``now``; the chart over the last ``months`` (1 to 24) per ``interval``
    (``day``, for up to 3 months, or ``week``). ValueError for anything else."""
    if (
        not 1 <= months <= MONTHS_MAX
        or interval not in INTERVAL_DAYS
        or (interval == "day" and months > DAY_MONTHS_MAX)
    ):
        raise ValueError(f"{months} months per {interval}")
    return Overview(
        at=now,
        kommuner=Organisation.objects.kommuner().count(),
        onboarding=onboarding(),
        months=months,
        interval=interval,
        points=grants_over_time(now=now, months=months, interval=interval),
        health=provisioning_health(now=now),
    )


def onboarding() -> list[Onboarding]:
    """Per service, the kommuner with at least one active grant of it, per environment."""
    counts = {
        (row["service_id"], row["client__environment"]): row["kommuner"]
        for row in Grant.objects.filter(status=GrantStatus.ACTIVE)
        .order_by()
        .values("service_id", "client__environment")
        .annotate(kommuner=Count("kommune_id", distinct=True))
    }
    return [
        Onboarding(
            service=service,
            kommuner={env: counts.get((service.pk, env), 0) for env in Environment.values},
        )
        for service in Service.objects.order_by("position", "code")
    ]


def months_before(day: datetime.date, months: int) -> datetime.date:
    """The same day ``months`` months earlier (the month's last day when it is shorter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return datetime.date(year, month + 1, min(day.day, last))


def buckets(
    today: datetime.date, *, months: int, interval: str
) -> list[tuple[datetime.date, datetime.date]]:
    """The (first day, last day) of each day or week (Monday to Sunday) from ``months`` months
    before ``today`` up to today; the last one ends today."""
    step = datetime.timedelta(days=INTERVAL_DAYS[interval])
    first = months_before(today, months)
    if interval == "week":
        first -= datetime.timedelta(days=first.weekday())
    spans = []
    start = first
    while start <= today:
        spans.append((start, min(start + step - datetime.timedelta(days=1), today)))
        start += step
    return spans


def grants_over_time(*, now: datetime.datetime, months: int, interval: str) -> list[Point]:
    """The grants active at the end of each day or week (see the module's docstring), in one
    query: the grants grouped by environment and the days they began and ended."""
    spans = buckets(timezone.localdate(now), months=months, interval=interval)
    starts = [start for start, _end in spans]
    window = datetime.datetime.combine(
        starts[0], datetime.time.min, tzinfo=timezone.get_current_timezone()
    )
    # A grant from before the window begins "before" (None): only the others' days are worked
    # out in the local time zone, the costly part of the query at national scale.
    began = Case(
        When(created_at__lt=window, then=Value(None)),
        default=TruncDate("created_at"),
        output_field=DateField(),
    )
    groups = (
        Grant.objects.filter(status__in=HELD_STATUSES)
        .filter(Q(revoked_at__isnull=True) | Q(revoked_at__gte=window))
        .order_by()
        .values("client__environment", began=began, ended=TruncDate("revoked_at"))
        .annotate(n=Count("pk"))
    )
    # Changes per span: + where a grant began (spans before the window: the first), - where it
    # ended; the running sum is the number active at each span's end.
    changes = {env: [0] * len(spans) for env in Environment.values}
    for group in groups:
        delta = changes.setdefault(group["client__environment"], [0] * len(spans))
        first = group["began"]
        delta[0 if first is None else bisect.bisect_right(starts, first) - 1] += group["n"]
        if group["ended"] is not None:
            delta[max(bisect.bisect_right(starts, group["ended"]) - 1, 0)] -= group["n"]
    running = dict.fromkeys(changes, 0)
    points = []
    for i, (start, end) in enumerate(spans):
        for env in changes:
            running[env] += changes[env][i]
        points.append(Point(start=start, end=end, counts=dict(running)))
    return points


def percentile(sorted_values: list[datetime.timedelta], p: float) -> datetime.timedelta | None:
    """The ``p``-th percentile by nearest rank (None of nothing)."""
    if not sorted_values:
        return None
    rank = max(math.ceil(p / 100 * len(sorted_values)), 1)
    return sorted_values[rank - 1]


def provisioning_health(*, now: datetime.datetime) -> Health:
    """The queue, the failures, the oldest pending job and order-to-active over the last day."""
    since = now - datetime.timedelta(days=1)
    status = ProvisioningJob.Status
    # The open and failed jobs are few beside the done ones: the status index finds them.
    jobs = ProvisioningJob.objects.filter(
        status__in=(status.PENDING, status.RUNNING, status.FAILED)
    ).aggregate(
        pending=Count("pk", filter=Q(status=status.PENDING)),
        running=Count("pk", filter=Q(status=status.RUNNING)),
        failed=Count("pk", filter=Q(status=status.FAILED)),
        failed_last_day=Count("pk", filter=Q(status=status.FAILED, finished_at__gte=since)),
        oldest=Min("created_at", filter=Q(status=status.PENDING)),
    )
    # From the order items: each grant that turned active over the last day, with the newest
    # order before that moment (a later order reusing the live grant does not count).
    durations = sorted(
        active - ordered
        for ordered, active in AccessRequestItem.objects.filter(
            grant__status=GrantStatus.ACTIVE,
            grant__status_changed_at__gte=since,
            request__created_at__lte=F("grant__status_changed_at"),
        )
        .order_by()
        .values("grant_id")
        .annotate(ordered=Max("request__created_at"), active=Max("grant__status_changed_at"))
        .values_list("ordered", "active")
    )
    oldest = jobs["oldest"]
    return Health(
        pending=jobs["pending"],
        running=jobs["running"],
        failed_jobs=jobs["failed"],
        failed_last_day=jobs["failed_last_day"],
        failed_grants=Grant.objects.filter(status=GrantStatus.FAILED).count(),
        oldest_pending_at=oldest,
        oldest_pending_age=max(now - oldest, datetime.timedelta(0)) if oldest else None,
        activated=len(durations),
        order_to_active_p50=percentile(durations, 50),
        order_to_active_p95=percentile(durations, 95),
    )
