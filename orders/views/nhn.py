"""Pages for NHN's operators and auditors: the national picture, the grants matrix and its grants,
and the catalogue's opening days. Auditors read every page; only operators change anything."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from orders import policy
from orders.forms.nhn import (
    MATRIX_STATUSES,
    AvailabilityForm,
    FilterForm,
    GrantsFilterForm,
    MatrixFilterForm,
)
from orders.models import (
    WAITING_STATUSES,
    AccessRequestItem,
    Grant,
    GrantStatus,
    ItemStatus,
    ProvisioningJob,
    Service,
)
from orders.services import service_availability_set
from portal.forms import service_errors_add
from tenants.models import Environment, Organisation, Product, Role
from tenants.pages import Acting, listing, organisation_page, person_of

FormT = TypeVar("FormT", bound=FilterForm)

OPERATOR = (Organisation.Kind.OPERATOR,)
#: Who reads NHN's pages; writes need ``Role.NHN_OPERATOR`` as well.
NHN_STAFF = (Role.NHN_OPERATOR, Role.NHN_AUDITOR)

#: The grant statuses behind each status of the matrix (``waiting`` is order items, not grants).
GRANT_STATUSES: dict[str, tuple[str, ...]] = {
    "active": (GrantStatus.ACTIVE,),
    "setting_up": (GrantStatus.PENDING, GrantStatus.PROVISIONING),
    "failed": (GrantStatus.FAILED,),
    "revoked": (GrantStatus.REVOKING, GrantStatus.REVOKED),
}
BUCKET_OF = {status: key for key, statuses in GRANT_STATUSES.items() for status in statuses}

#: Kommuner per page of the matrix: 50 rows of 9 services stay quick to read and to render.
MATRIX_ROWS = 50


@dataclass(frozen=True)
class StatusCount:
    key: str
    label: str
    colour: str
    count: int


def status_counts(counter: Counter[str]) -> list[StatusCount]:
    """The non-zero counts in the matrix's order of statuses, with their words and colour."""
    return [
        StatusCount(key, str(label), colour, counter[key])
        for key, (label, colour) in MATRIX_STATUSES.items()
        if counter[key]
    ]


def _url(name: str, acting: Acting, **query: str) -> str:
    url = reverse(name, args=[acting.orgnr])
    query = {k: v for k, v in query.items() if v}
    return f"{url}?{urlencode(query)}" if query else url


# --- The start page -----------------------------------------------------------------------------


def dashboard(request: HttpRequest, acting: Acting) -> HttpResponse:
    """The national picture in numbers, each a way into the page behind it."""
    user = request.user
    services = list(Service.objects.order_by("position", "code"))
    grants = Grant.objects.visible_to(user).order_by()
    live_kommuner = {
        (row["service_id"], row["client__environment"]): row["kommuner"]
        for row in grants.filter(status=GrantStatus.ACTIVE)
        .values("service_id", "client__environment")
        .annotate(kommuner=Count("kommune_id", distinct=True))
    }
    by_status: Counter[str] = Counter()
    for row in grants.values("status").annotate(n=Count("pk")):
        by_status[BUCKET_OF[row["status"]]] += row["n"]
    by_status["waiting"] = AccessRequestItem.objects.filter(status__in=WAITING_STATUSES).count()
    kommuner = Organisation.objects.visible_to(user).kommuner().count()
    try:
        jobs_url: str | None = _url("provisioning:jobs", acting, status="failed")
    except NoReverseMatch:  # the jobs page is another part of the portal
        jobs_url = None
    context = {
        "kommuner": kommuner,
        "environments": Environment.choices,
        "service_rows": [
            (service, [live_kommuner.get((service.pk, env), 0) for env in Environment.values])
            for service in services
        ],
        "statuses": [
            (item, _url("orders:matrix", acting, status=item.key))
            for item in status_counts(by_status)
        ],
        "failed_jobs": ProvisioningJob.objects.filter(status=ProvisioningJob.Status.FAILED).count(),
        "jobs_url": jobs_url,
        "unverified": Product.objects.filter(
            Q(verified_at__isnull=True) | Q(reverification_requested_at__isnull=False)
        ).count(),
    }
    return render(request, "orders/nhn/dashboard.html", context)


# --- The national grants matrix -----------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The matrix's filters, read from the GET form."""

    vendor: Organisation | None
    environment: str
    status: str

    def grants(self, grants: QuerySet[Grant]) -> QuerySet[Grant]:
        if self.status == "waiting":
            return grants.none()
        if self.vendor is not None:
            grants = grants.filter(client__vendor=self.vendor)
        if self.environment:
            grants = grants.filter(client__environment=self.environment)
        if self.status:
            grants = grants.filter(status__in=GRANT_STATUSES[self.status])
        return grants

    def items(self, items: QuerySet[AccessRequestItem]) -> QuerySet[AccessRequestItem]:
        """Order items that wait: the matrix's ``waiting``."""
        if self.status not in ("", "waiting"):
            return items.none()
        items = items.filter(status__in=WAITING_STATUSES)
        if self.vendor is not None:
            items = items.filter(request__client__vendor=self.vendor)
        if self.environment:
            items = items.filter(request__client__environment=self.environment)
        return items

    def query(self) -> dict[str, str]:
        return {
            "vendor": self.vendor.orgnr if self.vendor else "",
            "environment": self.environment,
            "status": self.status,
        }


def _filters(request: HttpRequest, form_class: type[FormT], **kwargs: Any) -> tuple[FormT, Filters]:
    """The filter form (bound to the query string, every field optional) and its filters."""
    vendors = list(
        Organisation.objects.visible_to(request.user)
        .filter(kind=Organisation.Kind.VENDOR)
        .only("pk", "orgnr", "name")
        .order_by("name")
    )
    form = form_class(request.GET, vendors=vendors, **kwargs)
    by_orgnr = {vendor.orgnr: vendor for vendor in vendors}
    filters = Filters(
        vendor=by_orgnr.get(form.value("vendor")),
        environment=form.value("environment"),
        status=form.value("status"),
    )
    return form, filters


@dataclass(frozen=True)
class Cell:
    service: Service
    counts: list[StatusCount]
    url: str


@organisation_page(kinds=OPERATOR, roles=NHN_STAFF)
def matrix(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Kommune x service: how many grants of each status, and the order items that wait.

    A constant number of queries whatever the number of kommuner: one page of kommuner, then
    the grants and the waiting items of that page, each counted in one grouped query.
    """
    user = request.user
    form, filters = _filters(request, MatrixFilterForm)
    services = list(Service.objects.order_by("position", "code"))
    # The kommuner come from ``visible_to``, and the grants and items are read for those
    # kommuner only: the same rows the API's grants and access requests show NHN staff.
    kommuner = Organisation.objects.visible_to(user).kommuner().select_related("kommune")
    search = form.value("q").strip()
    if search:
        kommuner = kommuner.filter(
            Q(name__icontains=search) | Q(kommune__number=search) | Q(orgnr=search.replace(" ", ""))
        )
    only_used = form.flag("only")
    if only_used:
        kommuner = kommuner.filter(
            Exists(filters.grants(Grant.objects.filter(kommune=OuterRef("pk"))))
            | Exists(
                filters.items(AccessRequestItem.objects.filter(request__kommune=OuterRef("pk")))
            )
        )
    page = listing(
        request,
        kommuner,
        sorts={"name": "name", "number": "kommune__number"},
        default="name",
        per_page=MATRIX_ROWS,
    )
    rows = page.rows
    ids = [kommune.pk for kommune in rows]
    counts: dict[tuple[Any, Any], Counter[str]] = {}
    grant_counts = (
        filters.grants(Grant.objects.visible_to(user).filter(kommune_id__in=ids))
        .order_by()
        .values("kommune_id", "service_id", "status")
        .annotate(n=Count("pk"))
    )
    for row in grant_counts:
        key = (row["kommune_id"], row["service_id"])
        counts.setdefault(key, Counter())[BUCKET_OF[row["status"]]] += row["n"]
    item_counts = (
        filters.items(AccessRequestItem.objects.filter(request__kommune_id__in=ids))
        .order_by()
        .values("request__kommune_id", "service_id")
        .annotate(n=Count("pk"))
    )
    for row in item_counts:
        key = (row["request__kommune_id"], row["service_id"])
        counts.setdefault(key, Counter())["waiting"] += row["n"]

    query = filters.query()
    grants_url = reverse("orders:nhn_grants", args=[acting.orgnr])
    table = []
    for kommune in rows:
        cells = []
        for service in services:
            found = status_counts(counts.get((kommune.pk, service.pk), Counter()))
            url = ""
            if found:
                # A cell of waiting items only opens the waiting items, not an empty grants list.
                only_waiting = [c.key for c in found] == ["waiting"]
                params = {
                    **query,
                    "status": "waiting" if only_waiting else query["status"],
                    "kommune": kommune.orgnr,
                    "service": service.code,
                }
                url = f"{grants_url}?{urlencode({k: v for k, v in params.items() if v})}"
            cells.append(Cell(service, found, url))
        table.append((kommune, cells))
    context = {
        "form": form,
        "filtered": bool(search or only_used or any(query.values())),
        "services": services,
        "table": table,
        "listing": page,
        "legend": [
            StatusCount(key, str(label), colour, 0)
            for key, (label, colour) in MATRIX_STATUSES.items()
        ],
        "crumbs": [
            (reverse("orders:dashboard", args=[acting.orgnr]), _("Overview")),
            (request.path, _("Access matrix")),
        ],
    }
    return render(request, "orders/nhn/matrix.html", context)


# --- The grants behind a cell -------------------------------------------------------------------


@dataclass(frozen=True)
class GrantRow:
    kommune: Organisation
    vendor: Organisation
    client_name: str
    environment: str
    service: Service
    access: str
    status: StatusCount
    since: Any
    reason: str
    granted: Any = None


@organisation_page(kinds=OPERATOR, roles=NHN_STAFF)
def grants(request: HttpRequest, acting: Acting) -> HttpResponse:
    """The grants (or, for ``status=waiting``, the order items that wait) behind the matrix."""
    user = request.user
    kommuner = list(
        Organisation.objects.visible_to(user)
        .kommuner()
        .only("pk", "orgnr", "name")
        .order_by("name")
    )
    services = list(Service.objects.order_by("position", "code"))
    form, filters = _filters(request, GrantsFilterForm, kommuner=kommuner, services=services)
    kommune = {k.orgnr: k for k in kommuner}.get(form.value("kommune"))
    service = {s.code: s for s in services}.get(form.value("service"))
    waiting_only = filters.status == "waiting"

    items = filters.items(
        AccessRequestItem.objects.filter(
            request__kommune__in=Organisation.objects.visible_to(user).kommuner().values("pk")
        )
        if kommune is None
        else AccessRequestItem.objects.filter(request__kommune=kommune)
    )
    if service is not None:
        items = items.filter(service=service)
    rows: list[GrantRow] = []
    if waiting_only:
        page = listing(
            request,
            items.select_related("request__kommune", "request__client__vendor", "service"),
            sorts={
                "kommune": "request__kommune__name",
                "vendor": "request__client__vendor__name",
                "service": "service__position",
                "since": "request__created_at",
            },
            default="-since",
        )
        label, colour = MATRIX_STATUSES["waiting"]
        for item in page.rows:
            order = item.request
            rows.append(
                GrantRow(
                    kommune=order.kommune,
                    vendor=order.client.vendor,
                    client_name=order.client.name,
                    environment=order.client.get_environment_display(),
                    service=item.service,
                    access=item.get_access_display(),
                    status=StatusCount("waiting", str(label), colour, 1),
                    since=order.created_at,
                    reason=policy.reason_text(item.reason_code, item.reason_params),
                )
            )
        waiting_count = 0
    else:
        queryset = filters.grants(Grant.objects.visible_to(user))
        if kommune is not None:
            queryset = queryset.filter(kommune=kommune)
        if service is not None:
            queryset = queryset.filter(service=service)
        page = listing(
            request,
            queryset.select_related("kommune", "client__vendor", "service"),
            sorts={
                "kommune": "kommune__name",
                "vendor": "client__vendor__name",
                "service": "service__position",
                "status": "status",
                "since": "status_changed_at",
                # Newest first by default: ``created_at`` has an index, so a page of the nation's
                # grants walks it instead of sorting them all.
                "granted": "created_at",
            },
            default="-granted",
        )
        for grant in page.rows:
            key = BUCKET_OF[grant.status]
            label, colour = MATRIX_STATUSES[key]
            reason = (
                policy.grant_reason_text(
                    grant.revoke_reason_code, grant.revoke_reason_params, grant.revoke_reason
                )
                if key == "revoked"
                else policy.grant_reason_text(
                    grant.status_reason_code, grant.status_reason_params, grant.status_reason
                )
            )
            rows.append(
                GrantRow(
                    kommune=grant.kommune,
                    vendor=grant.client.vendor,
                    client_name=grant.client.name,
                    environment=grant.client.get_environment_display(),
                    service=grant.service,
                    access=grant.get_access_display(),
                    status=StatusCount(key, str(label), colour, 1),
                    since=grant.status_changed_at,
                    reason=reason,
                    granted=grant.created_at,
                )
            )
        waiting_count = items.count() if not filters.status else 0
    query = {
        **filters.query(),
        "kommune": kommune.orgnr if kommune else "",
        "service": service.code if service else "",
    }
    context = {
        "form": form,
        "rows": rows,
        "listing": page,
        "waiting_only": waiting_only,
        "waiting_count": waiting_count,
        "waiting_url": _url("orders:nhn_grants", acting, **{**query, "status": "waiting"}),
        "kommune": kommune,
        "service": service,
        "crumbs": [
            (reverse("orders:dashboard", args=[acting.orgnr]), _("Overview")),
            (_url("orders:matrix", acting, **filters.query()), _("Access matrix")),
            (request.get_full_path(), _("Grants")),
        ],
    }
    return render(request, "orders/nhn/grants.html", context)


# --- The catalogue's opening days ---------------------------------------------------------------


@organisation_page(kinds=OPERATOR, roles=NHN_STAFF)
def availability(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Per service and environment the day it opens, and the orders that wait for it."""
    waiting = {
        (row["service_id"], row["request__client__environment"]): row["orders"]
        for row in AccessRequestItem.objects.filter(status=ItemStatus.AWAITING_AVAILABILITY)
        .order_by()
        .values("service_id", "request__client__environment")
        .annotate(orders=Count("request_id", distinct=True))
    }
    today = timezone.localdate()
    rows = []
    for service in Service.objects.with_availability().order_by("position", "code"):
        days = []
        for environment, label in Environment.choices:
            day = service.available_from(environment)
            days.append(
                {
                    "environment": environment,
                    "label": label,
                    "day": day,
                    "open": day is not None and day <= today,
                    "waiting": waiting.get((service.pk, environment), 0),
                }
            )
        rows.append((service, days))
    context = {
        "rows": rows,
        "environments": Environment.choices,
        "can_edit": acting.can(Role.NHN_OPERATOR),
        "crumbs": [
            (reverse("orders:dashboard", args=[acting.orgnr]), _("Overview")),
            (request.path, _("Catalogue and availability")),
        ],
    }
    return render(request, "orders/nhn/availability.html", context)


def _availability_message(change: Any) -> str:
    names = {
        "service": change.service.name,
        "environment": str(Environment(change.environment).label).lower(),
    }
    if change.available_from is None:
        return ngettext(
            "%(service)s has no opening day in %(environment)s now. %(count)s order waits until "
            "NHN sets one.",
            "%(service)s has no opening day in %(environment)s now. %(count)s orders wait until "
            "NHN sets one.",
            change.waiting_orders,
        ) % {**names, "count": change.waiting_orders}
    names["date"] = date_format(change.available_from, "DATE_FORMAT")
    if change.available_from <= timezone.localdate():
        return ngettext(
            "%(service)s is open in %(environment)s from %(date)s. %(count)s waiting access is "
            "being set up now.",
            "%(service)s is open in %(environment)s from %(date)s. %(count)s waiting accesses "
            "are being set up now.",
            change.released,
        ) % {**names, "count": change.released}
    return ngettext(
        "%(service)s opens in %(environment)s on %(date)s. %(count)s waiting order goes on "
        "%(date)s.",
        "%(service)s opens in %(environment)s on %(date)s. %(count)s waiting orders go on "
        "%(date)s.",
        change.waiting_orders,
    ) % {**names, "count": change.waiting_orders}


@organisation_page(kinds=OPERATOR, roles=(Role.NHN_OPERATOR,))
def availability_edit(
    request: HttpRequest, acting: Acting, code: str, environment: str
) -> HttpResponse:
    """An operator sets the day a service opens in an environment, or removes it."""
    service = get_object_or_404(Service.objects.with_availability(), code=code)
    if environment not in Environment.values:
        raise Http404
    current = service.available_from(environment)
    form = AvailabilityForm(
        request.POST if request.method == "POST" else None, initial={"available_from": current}
    )
    if request.method == "POST" and form.is_valid():
        try:
            change = service_availability_set(
                service=service,
                environment=environment,
                available_from=form.day,
                actor=person_of(request),
            )
        except ValidationError as error:
            service_errors_add(form, error)
        else:
            messages.success(request, _availability_message(change))
            return redirect("orders:availability", acting.orgnr)
    context = {
        "form": form,
        "service": service,
        "environment": Environment(environment),
        "current": current,
        "crumbs": [
            (reverse("orders:dashboard", args=[acting.orgnr]), _("Overview")),
            (reverse("orders:availability", args=[acting.orgnr]), _("Catalogue and availability")),
            (request.path, f"{service.name}, {Environment(environment).label}"),
        ],
    }
    return render(request, "orders/nhn/availability_edit.html", context)


urlpatterns: list[URLPattern] = [
    path("matrix/", matrix, name="matrix"),
    path("matrix/grants/", grants, name="nhn_grants"),
    path("availability/", availability, name="availability"),
    path(
        "availability/<slug:code>/<str:environment>/",
        availability_edit,
        name="availability_edit",
    ),
]
