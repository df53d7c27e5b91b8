"""NHN's national overview (``orders.overview``): kommuner onboarded per service and environment,
grants over time as a chart drawn here as SVG with the same numbers in a table beside it, the
health of provisioning, and the gateway's traffic per service over the chart's period
(``provisioning.data_access.gateway_traffic_over``). For NHN's operators and auditors. It lives in
provisioning, the top layer, because it reads both orders' figures and the gateway's counts."""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from redis.exceptions import RedisError

from orders.forms.oversight import OverviewForm
from orders.overview import Overview, Point, national_overview
from provisioning.data_access import Traffic, gateway_traffic_over
from tenants.models import Environment, Organisation, Role
from tenants.pages import Acting, organisation_page

logger = logging.getLogger(__name__)

#: The environments in the order the page shows them: production first.
ENVIRONMENTS = [Environment.PRODUCTION, Environment.TEST]

# The chart's drawing area, in SVG user units (it scales to the page's width).
WIDTH, HEIGHT = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    value: int
    title: str


@dataclass(frozen=True)
class Line:
    environment: str
    label: str
    points: str
    dots: list[Dot]


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    """What the template draws: an SVG of ``WIDTH`` x ``HEIGHT``, its lines, axes and words."""

    title: str
    description: str
    lines: list[Line]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 times a power of ten not below ``value`` (at least 4), so the axis
    reads in round numbers."""
    value = max(value, 4)
    magnitude = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def segments(top_value: int) -> int:
    """Into how many equal, whole steps the axis up to ``top_value`` divides (4 or 5)."""
    return 4 if top_value % 4 == 0 else 5


def _day(day: datetime.date) -> str:
    return date_format(day, "DATE_FORMAT")


def point_label(point: Point, interval: str) -> str:
    """The span a point counts at the end of, in words."""
    if interval == "week":
        return _("Week from %(day)s") % {"day": _day(point.start)}
    return _day(point.start)


def chart_of(points: list[Point], *, interval: str, months: int) -> Chart:
    """The line chart of ``points``: one line per environment, a dot per point whose title says
    its number (the same numbers as the table beside the chart)."""
    top_value = nice_ceiling(max(p.counts.get(env, 0) for p in points for env in ENVIRONMENTS))
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return round(LEFT + (plot_width * i / (len(points) - 1) if len(points) > 1 else 0), 1)

    def y(value: int) -> float:
        return round(TOP + plot_height * (1 - value / top_value), 1)

    labels = dict(Environment.choices)
    lines = []
    for env in ENVIRONMENTS:
        dots = [
            Dot(
                x(i),
                y(p.counts.get(env, 0)),
                p.counts.get(env, 0),
                f"{point_label(p, interval)}: {labels[env]} {number_format(p.counts.get(env, 0))}",
            )
            for i, p in enumerate(points)
        ]
        lines.append(
            Line(
                environment=str(env),
                label=str(labels[env]),
                points=" ".join(f"{d.x},{d.y}" for d in dots),
                dots=dots,
            )
        )
    first, last = points[0], points[-1]
    middle = len(points) // 2
    x_ticks = [Tick(x(0), _day(first.start))]
    if len(points) > 2:
        x_ticks.append(Tick(x(middle), _day(points[middle].start)))
    if len(points) > 1:
        x_ticks.append(Tick(x(len(points) - 1), _day(last.start)))
    per = _("per week") if interval == "week" else _("per day")
    return Chart(
        title=ngettext(
            "Active grants %(per)s over the last %(months)s month",
            "Active grants %(per)s over the last %(months)s months",
            months,
        )
        % {"per": per, "months": months},
        description=_(
            "From %(first)s to %(last)s, grants in production went from %(p0)s to %(p1)s, and "
            "in test from %(t0)s to %(t1)s. The table beside the chart has every number."
        )
        % {
            "first": _day(first.start),
            "last": _day(last.end),
            "p0": number_format(first.counts.get(Environment.PRODUCTION, 0)),
            "p1": number_format(last.counts.get(Environment.PRODUCTION, 0)),
            "t0": number_format(first.counts.get(Environment.TEST, 0)),
            "t1": number_format(last.counts.get(Environment.TEST, 0)),
        },
        lines=lines,
        y_ticks=[
            Tick(y(value), number_format(value, force_grouping=True))
            for value in range(0, top_value + 1, top_value // segments(top_value))
        ],
        x_ticks=x_ticks,
    )


def duration_text(duration: datetime.timedelta | None) -> str:
    """A duration in one unit a person reads at a glance: seconds, minutes, hours or days."""
    if duration is None:
        return "–"
    seconds = int(duration.total_seconds())
    if seconds < 120:
        return ngettext("%(count)s second", "%(count)s seconds", seconds) % {"count": seconds}
    if seconds < 2 * 3600:
        minutes = seconds // 60
        return ngettext("%(count)s minute", "%(count)s minutes", minutes) % {"count": minutes}
    if seconds < 2 * 86400:
        hours = seconds // 3600
        return ngettext("%(count)s hour", "%(count)s hours", hours) % {"count": hours}
    days = seconds // 86400
    return ngettext("%(count)s day", "%(count)s days", days) % {"count": days}


def traffic_of(overview: Overview) -> Traffic:
    """The gateway's traffic over the overview's days or weeks, its catalogue's services first."""
    return gateway_traffic_over(
        [(point.start, point.end) for point in overview.points],
        services=[row.service.code for row in overview.onboarding],
    )


#: The cache's key of one period's figures.
NATIONAL_FIGURES_KEY = "national-overview:{months}:{interval}"


def national_figures(*, months: int, interval: str) -> tuple[Overview, Traffic]:
    """The overview and its gateway traffic, as the page and the API show them: read at most once
    a minute (``TILGANG_OVERVIEW_SECONDS``) per period, in Django's cache, which every web process
    shares in production (Redis). Its figures are national aggregates over every grant, job and
    gateway call, the dearest reads of any page at national scale (docs/benchmarks.md), and they
    say "as of" the moment they were read (``Overview.at``)."""
    key = NATIONAL_FIGURES_KEY.format(months=months, interval=interval)
    try:
        found: tuple[Overview, Traffic] | None = cache.get(key)
    except RedisError as exc:  # the cache's Redis is down: read the figures each time
        logger.warning("national overview not cached: %s", exc)
        found = None
    if found is None:
        overview = national_overview(now=timezone.now(), months=months, interval=interval)
        found = (overview, traffic_of(overview))
        with contextlib.suppress(RedisError):
            cache.set(key, found, settings.TILGANG_OVERVIEW_SECONDS)
    return found


def service_label(code: str, names: dict[str, str]) -> str:
    """A service's name; its code when the catalogue no longer has it."""
    if not code:
        return _("No service (refused before one was known)")
    return names.get(code, code)


@organisation_page(kinds=(Organisation.Kind.OPERATOR,), roles=(Role.NHN_OPERATOR, Role.NHN_AUDITOR))
def national(request: HttpRequest, acting: Acting) -> HttpResponse:
    """The national overview; ``?months=&interval=`` choose the chart's period."""
    form = OverviewForm(request.GET or None)
    if form.is_bound:
        form.is_valid()  # a period that is not one of the choices says so, and the default shows
    months, interval = form.period()
    overview, traffic = national_figures(months=months, interval=interval)
    labels = dict(Environment.choices)
    health = overview.health
    names = {row.service.code: row.service.name for row in overview.onboarding}
    return render(
        request,
        "provisioning/national.html",
        {
            "form": form,
            "overview": overview,
            "environments": [labels[env] for env in ENVIRONMENTS],
            "onboarding": [
                (row.service, [row.kommuner[env] for env in ENVIRONMENTS])
                for row in overview.onboarding
            ],
            "chart": chart_of(overview.points, interval=interval, months=months),
            "table": [
                (point_label(point, interval), [point.counts.get(env, 0) for env in ENVIRONMENTS])
                for point in overview.points
            ],
            "oldest_age": duration_text(health.oldest_pending_age),
            "p50": duration_text(health.order_to_active_p50),
            "p95": duration_text(health.order_to_active_p95),
            "traffic": traffic,
            "traffic_services": [
                (service_label(code, names), calls, refused)
                for code, calls, refused in traffic.services
            ],
            "traffic_table": [
                (point_label(point, interval), calls, refused)
                for point, (_first, _last, calls, refused) in zip(
                    overview.points, traffic.spans, strict=True
                )
            ],
            "traffic_caption": (
                _("Gateway calls per week") if interval == "week" else _("Gateway calls per day")
            ),
        },
    )


urlpatterns: list[URLPattern] = [path("national/", national, name="national")]
