"""Pages for a vendor's admins and developers: the start page and the clients.

Reads go through ``visible_to`` and the acting vendor; writes through ``orders.services``, the
functions the API calls, with the same roles as the API: admins and developers register clients
and change their keys, only admins remove a client.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from orders import services
from orders.forms.vendor import ClientFilterForm, ClientForm, KeySetForm
from orders.models import (
    WAITING_STATUSES,
    AccessRequest,
    AccessRequestItem,
    Grant,
    GrantStatus,
    ItemStatus,
)
from orders.policy import grant_reason_text
from portal.exceptions import Conflict
from tenants.models import (
    ClientKey,
    OAuthClient,
    OAuthClientQuerySet,
    Organisation,
    Product,
    Role,
    key_lifetime,
    key_warning_window,
)
from tenants.pages import Acting, listing, organisation_page, person_of

VENDOR = (Organisation.Kind.VENDOR,)
#: Who reads a vendor's pages, and who may register clients and change their keys (as the API).
MEMBERS = (Role.VENDOR_ADMIN, Role.VENDOR_DEVELOPER)
#: Rows of each list of things that need the vendor on the start page.
ATTENTION_ROWS = 10


# --- How a status looks: colour and words ----------------------------------------------------


@dataclass(frozen=True)
class Tag:
    label: str | Promise
    color: str


#: Grant statuses as the pages say them (UI.md: "klargjøres, aktiv, feilet").
GRANT_TAGS: dict[str, Tag] = {
    GrantStatus.PENDING: Tag(gettext_lazy("Being set up"), "info"),
    GrantStatus.PROVISIONING: Tag(gettext_lazy("Being set up"), "info"),
    GrantStatus.ACTIVE: Tag(gettext_lazy("Active"), "success"),
    GrantStatus.FAILED: Tag(gettext_lazy("Failed"), "danger"),
    GrantStatus.REVOKING: Tag(gettext_lazy("Being revoked"), "warning"),
    GrantStatus.REVOKED: Tag(gettext_lazy("Revoked"), "neutral"),
}
#: A client at the authorization server.
CLIENT_TAGS: dict[str, Tag] = {
    "pending": Tag(gettext_lazy("Being registered"), "info"),
    "provisioned": Tag(gettext_lazy("Registered"), "success"),
    "failed": Tag(gettext_lazy("Failed"), "danger"),
    "keys_expired": Tag(gettext_lazy("Keys expired"), "danger"),
}
REMOVED_TAG = Tag(gettext_lazy("Removed"), "neutral")


def _key_row(key: ClientKey, now: datetime.datetime) -> dict[str, Any]:
    """A key as the pages show it: accepted until when, expired or due for rotation, and why."""
    return {
        "key": key,
        "expired": not key.is_valid(now),
        "due": key.is_due(now),
        "by_age": key.ends_by_age,
        "days_left": max(math.ceil((key.valid_until - now) / datetime.timedelta(days=1)), 0),
    }


def client_tag(client: OAuthClient) -> Tag:
    return REMOVED_TAG if client.removed_at else CLIENT_TAGS[client.provisioning_status]


#: The statuses a count of grants adds up, by the name of its annotation.
COUNTED_STATUSES: dict[str, tuple[str, ...]] = {
    "n_active": (GrantStatus.ACTIVE,),
    "n_setting_up": (GrantStatus.PENDING, GrantStatus.PROVISIONING),
    "n_failed": (GrantStatus.FAILED,),
    "n_revoking": (GrantStatus.REVOKING,),
}


def _grant_counts(prefix: str, only: Q | None = None) -> dict[str, Count]:
    """Annotations counting grants in each status the pages show; ``prefix`` reaches the grants
    from the model annotated, ``only`` narrows which grants count."""
    return {
        name: Count(f"{prefix}pk", filter=Q(**{f"{prefix}status__in": statuses}) & (only or Q()))
        for name, statuses in COUNTED_STATUSES.items()
    }


def _count_of(
    queryset: QuerySet[Any], column: str, *, counted: str = "pk", distinct: bool = False
) -> Coalesce:
    """A correlated count of ``queryset``'s rows (or of distinct ``counted`` values) whose
    ``column`` is the outer row: one subquery per row of a page, no join of the lists."""
    rows = (
        queryset.filter(**{column: OuterRef("pk")})
        .order_by()
        .values(column)
        .annotate(n=Count(counted, distinct=distinct))
        .values("n")[:1]
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))


# --- Reads ---------------------------------------------------------------------------------------


def _clients(request: HttpRequest, acting: Acting) -> OAuthClientQuerySet:
    """The acting vendor's clients for the information services (its automation clients of
    the portal's own API are not connections to the services)."""
    return OAuthClient.objects.visible_to(request.user).filter(
        vendor=acting.organisation, purpose=OAuthClient.Purpose.FHIR
    )


def _grants(request: HttpRequest, acting: Acting) -> QuerySet[Grant]:
    return Grant.objects.visible_to(request.user).filter(client__vendor=acting.organisation)


def _client(request: HttpRequest, acting: Acting, client_id: Any) -> OAuthClient:
    return get_object_or_404(_clients(request, acting).select_related("product"), pk=client_id)


def _with_tags(grants: list[Grant]) -> list[dict[str, Any]]:
    return [
        {
            "grant": grant,
            "tag": GRANT_TAGS[grant.status],
            "reason": grant_reason_text(
                grant.status_reason_code, grant.status_reason_params, grant.status_reason
            )
            if grant.status == GrantStatus.FAILED
            else grant_reason_text(
                grant.revoke_reason_code, grant.revoke_reason_params, grant.revoke_reason
            ),
        }
        for grant in grants
    ]


# --- The start page ------------------------------------------------------------------------------


def dashboard(request: HttpRequest, acting: Acting) -> HttpResponse:
    """The start page: which kommuner are live, what is stuck, what needs the vendor.

    A fixed number of queries whatever the number of clients, kommuner and grants: counts are
    aggregated in the database, and each list of things to look at is cut at ATTENTION_ROWS."""
    if not acting.can(*MEMBERS):
        raise PermissionDenied
    now = timezone.now()
    clients = _clients(request, acting)
    grants = _grants(request, acting).filter(client__purpose=OAuthClient.Purpose.FHIR)
    by_status = dict(
        grants.exclude(status=GrantStatus.REVOKED)
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    totals = [
        (GRANT_TAGS[GrantStatus.ACTIVE], by_status.get(GrantStatus.ACTIVE, 0)),
        (
            GRANT_TAGS[GrantStatus.PROVISIONING],
            by_status.get(GrantStatus.PENDING, 0) + by_status.get(GrantStatus.PROVISIONING, 0),
        ),
        (GRANT_TAGS[GrantStatus.FAILED], by_status.get(GrantStatus.FAILED, 0)),
        (GRANT_TAGS[GrantStatus.REVOKING], by_status.get(GrantStatus.REVOKING, 0)),
    ]

    # Per kommune: how many of the vendor's grants there are in each status. Counted per row
    # of the page, so only the vendor's grants are read, not every grant of each kommune.
    environment = request.GET.get("environment", "")
    shown = grants.exclude(status=GrantStatus.REVOKED)
    if environment in ("test", "production"):
        shown = shown.filter(client__environment=environment)
    kommuner = Organisation.objects.filter(pk__in=shown.order_by().values("kommune_id")).annotate(
        **{
            name: _count_of(shown.filter(status__in=statuses), "kommune")
            for name, statuses in COUNTED_STATUSES.items()
        }
    )
    kommune_list = listing(
        request,
        kommuner,
        sorts={
            "name": "name",
            "active": "n_active",
            "setting_up": "n_setting_up",
            "failed": "n_failed",
        },
        default="name",
    )

    client_rows = list(
        clients.active()
        .select_related("product")
        .annotate(**_grant_counts("grants__"))
        .order_by("name", "created_at")[: ATTENTION_ROWS + 1]
    )
    failed_clients = list(
        clients.active()
        .filter(provisioning_status__in=("failed", "keys_expired"))
        .order_by("name")[: ATTENTION_ROWS + 1]
    )
    failed_grants = _with_tags(
        list(
            grants.filter(status=GrantStatus.FAILED)
            .select_related("client", "kommune", "service")
            .order_by("-status_changed_at", "pk")[: ATTENTION_ROWS + 1]
        )
    )
    # One rule with the warnings and the workers: a key ends at its own expiry or at the key
    # lifetime, and is due for rotation within the first warning's days of that.
    old_keys = sorted(
        (
            _key_row(key, now)
            for key in ClientKey.objects.filter(client__in=clients.active())
            .ending_by(now + key_warning_window())
            .select_related("client")
            .order_by("created_at", "pk")[: ATTENTION_ROWS + 1]
        ),
        key=lambda row: row["key"].valid_until,
    )
    requests = AccessRequest.objects.visible_to(request.user).filter(
        client__vendor=acting.organisation
    )
    items = AccessRequestItem.objects.filter(request__in=requests.order_by().values("pk"))
    waiting = dict(
        items.filter(status__in=WAITING_STATUSES)
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    awaiting_vendor = list(
        items.filter(status=ItemStatus.AWAITING_VENDOR)
        .select_related("request__kommune", "request__client", "service")
        .order_by("request__created_at", "pk")[: ATTENTION_ROWS + 1]
    )
    stuck = [
        (ItemStatus.AWAITING_KOMMUNE, waiting.get(ItemStatus.AWAITING_KOMMUNE, 0)),
        (ItemStatus.AWAITING_AVAILABILITY, waiting.get(ItemStatus.AWAITING_AVAILABILITY, 0)),
        (ItemStatus.AWAITING_VERIFICATION, waiting.get(ItemStatus.AWAITING_VERIFICATION, 0)),
    ]
    attention = (
        bool(failed_clients or failed_grants or old_keys or awaiting_vendor)
        or by_status.get(GrantStatus.FAILED, 0) > 0
    )
    return render(
        request,
        "orders/vendor/dashboard.html",
        {
            "totals": totals,
            "listing": kommune_list,
            "environment": environment,
            "client_rows": client_rows[:ATTENTION_ROWS],
            "more_clients": len(client_rows) > ATTENTION_ROWS,
            "failed_clients": [(c, client_tag(c)) for c in failed_clients[:ATTENTION_ROWS]],
            "more_failed_clients": len(failed_clients) > ATTENTION_ROWS,
            "failed_grants": failed_grants[:ATTENTION_ROWS],
            "failed_total": by_status.get(GrantStatus.FAILED, 0),
            "old_keys": old_keys[:ATTENTION_ROWS],
            "more_old_keys": len(old_keys) > ATTENTION_ROWS,
            "awaiting_vendor": awaiting_vendor[:ATTENTION_ROWS],
            "awaiting_vendor_total": waiting.get(ItemStatus.AWAITING_VENDOR, 0),
            "stuck": [(ItemStatus(status).label, n) for status, n in stuck],
            "attention": attention,
            "key_lifetime_days": key_lifetime().days,
            "key_warning_days": key_warning_window().days,
            "has_products": Product.objects.filter(vendor=acting.organisation).exists(),
        },
    )


# --- Clients -------------------------------------------------------------------------------------


@organisation_page(kinds=VENDOR, roles=MEMBERS)
def clients(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Which connections do we have, with which keys?"""
    products = Product.objects.filter(vendor=acting.organisation).order_by("name")
    form = ClientFilterForm(request.GET, products=products)
    filters = form.filters()
    rows = _clients(request, acting).select_related("product")
    if filters.get("product"):
        rows = rows.filter(product=filters["product"])
    if filters.get("environment"):
        rows = rows.filter(environment=filters["environment"])
    removed = filters.get("removed", "")
    if removed == "yes":
        rows = rows.filter(removed_at__isnull=False)
    elif removed != "all":
        rows = rows.filter(removed_at__isnull=True)
    rows = rows.annotate(
        n_keys=_count_of(ClientKey.objects.all(), "client"),
        n_kommuner=_count_of(Grant.objects.live(), "client", counted="kommune", distinct=True),
    )
    client_list = listing(
        request,
        rows,
        sorts={
            "name": "name",
            "product": ("product__name", "name"),
            "environment": ("environment", "name"),
            "created": "created_at",
        },
        default="name",
    )
    return render(
        request,
        "orders/vendor/clients.html",
        {
            "form": form,
            "listing": client_list,
            "rows": [(c, client_tag(c)) for c in client_list.rows],
            "filtered": any(filters.values()),
            "has_products": products.exists(),
        },
    )


def _crumbs(acting: Acting, *more: tuple[str, str]) -> list[tuple[str, str]]:
    return [(reverse("orders:clients", args=[acting.orgnr]), _("Clients")), *more]


@organisation_page(kinds=VENDOR, roles=MEMBERS)
def client_new(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Register a client with its public keys: pasted, uploaded, or made in the browser."""
    products = Product.objects.filter(vendor=acting.organisation).order_by("name")
    form = ClientForm(request.POST or None, request.FILES or None, products=products)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            client = services.client_register(
                vendor=acting.organisation,
                product=data["product"],
                name=data["name"],
                environment=data["environment"],
                jwks=data["keys"],
                actor=person_of(request),
            )
        except ValidationError as exc:
            form.add_keys_error(exc)
        else:
            messages.success(
                request,
                _(
                    "The client %(name)s is registered. It is being registered at the "
                    "authorization server now; its client_id shows here when that is done. "
                    "Next, order access to the services for the kommuner."
                )
                % {"name": client.name},
            )
            return redirect("orders:client", acting.orgnr, client.pk)
    new_url = reverse("orders:client_new", args=[acting.orgnr])
    return render(
        request,
        "orders/vendor/client_new.html",
        {
            "form": form,
            "has_products": products.exists(),
            "crumbs": _crumbs(acting, (new_url, _("Register a client"))),
        },
    )


@organisation_page(kinds=VENDOR, roles=MEMBERS)
def client_detail(request: HttpRequest, acting: Acting, client_id: Any) -> HttpResponse:
    """One client: its keys and their age, and its grants per kommune with their status."""
    client = _client(request, acting, client_id)
    keys = list(client.keys.order_by("created_at", "kid"))
    now = timezone.now()
    key_rows = [_key_row(key, now) for key in keys]
    show = request.GET.get("show", "")
    grants = Grant.objects.visible_to(request.user).filter(client=client)
    if show != "all":
        grants = grants.exclude(status=GrantStatus.REVOKED)
    grant_list = listing(
        request,
        grants.select_related("kommune", "service"),
        sorts={
            "kommune": ("kommune__name", "service__position", "access"),
            "service": ("service__position", "access", "kommune__name"),
            "status": ("status", "kommune__name"),
            "since": "status_changed_at",
        },
        default="kommune",
    )
    url = reverse("orders:client", args=[acting.orgnr, client.pk])
    return render(
        request,
        "orders/vendor/client.html",
        {
            "client": client,
            "tag": client_tag(client),
            "key_rows": key_rows,
            "can_remove_keys": len(keys) > 1,
            "listing": grant_list,
            "grant_rows": _with_tags(grant_list.rows),
            "show": show,
            "can_remove": acting.can(Role.VENDOR_ADMIN),
            "crumbs": _crumbs(acting, (url, client.name)),
        },
    )


@organisation_page(kinds=VENDOR, roles=MEMBERS)
def client_key_add(request: HttpRequest, acting: Acting, client_id: Any) -> HttpResponse:
    """Key rotation, first step: add a new key beside the old ones."""
    client = _client(request, acting, client_id)
    if not client.is_active:
        messages.error(request, _("The client was removed; its keys cannot change."))
        return redirect("orders:client", acting.orgnr, client.pk)
    form = KeySetForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.client_keys_add(
                client=client, jwks=form.cleaned_data["keys"], actor=person_of(request)
            )
        except ValidationError as exc:
            form.add_keys_error(exc)
        except Conflict as exc:
            messages.error(request, exc.message)
            return redirect("orders:client", acting.orgnr, client.pk)
        else:
            messages.success(
                request,
                _(
                    "The new key is added, and the old keys still work. The authorization "
                    "server gets the new key now. Let the system sign with the new key, then "
                    "remove the old one here."
                ),
            )
            return redirect("orders:client", acting.orgnr, client.pk)
    url = reverse("orders:client", args=[acting.orgnr, client.pk])
    return render(
        request,
        "orders/vendor/key_add.html",
        {
            "client": client,
            "form": form,
            "keys": client.keys.order_by("created_at", "kid"),
            "crumbs": _crumbs(
                acting,
                (url, client.name),
                (reverse("orders:client_key_add", args=[acting.orgnr, client.pk]), _("New key")),
            ),
        },
    )


@require_POST
@organisation_page(kinds=VENDOR, roles=MEMBERS)
def client_key_remove(
    request: HttpRequest, acting: Acting, client_id: Any, key_id: Any
) -> HttpResponse:
    """Key rotation, last step: remove an old key (never the last one)."""
    client = _client(request, acting, client_id)
    key = get_object_or_404(ClientKey.objects.filter(client=client), pk=key_id)
    try:
        services.client_key_remove(client=client, kid=key.kid, actor=person_of(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except Conflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _(
                "The key %(kid)s is removed. The authorization server stops accepting it "
                "when it has been updated, in a few seconds."
            )
            % {"kid": key.kid},
        )
    return redirect("orders:client", acting.orgnr, client.pk)


@organisation_page(kinds=VENDOR, roles=(Role.VENDOR_ADMIN,))
def client_remove(request: HttpRequest, acting: Acting, client_id: Any) -> HttpResponse:
    """Remove a client, after a preview of the grants it closes and the orders it withdraws."""
    client = _client(request, acting, client_id)
    url = reverse("orders:client", args=[acting.orgnr, client.pk])
    if not client.is_active:
        messages.info(request, _("The client was already removed."))
        return redirect(url)
    if request.method == "POST":
        try:
            services.client_remove(client=client, actor=person_of(request))
        except Conflict as exc:
            messages.error(request, exc.message)
            return redirect(url)
        messages.success(
            request,
            _(
                "The client %(name)s is removed. Its access is being closed at the gateway and "
                "the authorization server now; its waiting orders are withdrawn."
            )
            % {"name": client.name},
        )
        return redirect("orders:clients", acting.orgnr)
    grants, items = services.client_remove_closes(client)
    grants = grants.filter(pk__in=Grant.objects.visible_to(request.user).values("pk"))
    closing = listing(
        request,
        grants.select_related("kommune", "service"),
        sorts={"kommune": ("kommune__name", "service__position", "access")},
        default="kommune",
    )
    return render(
        request,
        "orders/vendor/client_remove.html",
        {
            "client": client,
            "listing": closing,
            "grant_rows": _with_tags(closing.rows),
            "n_kommuner": grants.order_by().values("kommune").distinct().count(),
            "n_items": items.count(),
            "crumbs": _crumbs(
                acting,
                (url, client.name),
                (reverse("orders:client_remove", args=[acting.orgnr, client.pk]), _("Remove")),
            ),
        },
    )


urlpatterns: list[URLPattern] = [
    path("clients/", clients, name="clients"),
    path("clients/new/", client_new, name="client_new"),
    path("clients/<uuid:client_id>/", client_detail, name="client"),
    path("clients/<uuid:client_id>/keys/new/", client_key_add, name="client_key_add"),
    path(
        "clients/<uuid:client_id>/keys/<uuid:key_id>/remove/",
        client_key_remove,
        name="client_key_remove",
    ),
    path("clients/<uuid:client_id>/remove/", client_remove, name="client_remove"),
]
