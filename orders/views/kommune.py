"""Pages for a kommune's admins and readers: the start page, delegations, approvals and access.

Thin, like the API (``orders.api.views``): they read through ``visible_to`` querysets filtered to
the kommune the page acts for, and write through the same service functions, whose refusals land
on the forms. Readers see every page; only a kommune admin writes (403 otherwise).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from orders import services
from orders.forms.kommune import (
    GRANT_STATUS_FILTERS,
    BulkDecisionForm,
    DelegationFilterForm,
    DelegationForm,
    GrantFilterForm,
    GrantRevokeForm,
    ItemDecisionForm,
    vendor_matches,
)
from orders.models import (
    LIVE_GRANT_STATUSES,
    WAITING_STATUSES,
    Access,
    AccessRequest,
    AccessRequestItem,
    Delegation,
    DelegationItem,
    Grant,
    GrantStatus,
    Instruction,
    ItemStatus,
    Service,
)
from orders.policy import reason_text
from portal.exceptions import Conflict
from portal.forms import service_errors_add
from tenants.models import Environment, Organisation, Role
from tenants.pages import Acting, listing, organisation_page, person_of

if TYPE_CHECKING:
    from django.contrib.auth.models import User

KOMMUNE = (Organisation.Kind.KOMMUNE,)
#: Readers see the kommune's pages; only its admins change anything.
kommune_page = organisation_page(kinds=KOMMUNE, roles=(Role.KOMMUNE_ADMIN, Role.KOMMUNE_READER))
admin_page = organisation_page(kinds=KOMMUNE, roles=(Role.KOMMUNE_ADMIN,))

#: How a grant's status reads in the lists: the words of UI.md and a colour (with the text).
GRANT_STATUS_DISPLAY: dict[str, tuple[Any, str]] = {
    GrantStatus.PENDING: (GRANT_STATUS_FILTERS["setting_up"][0], "info"),
    GrantStatus.PROVISIONING: (GRANT_STATUS_FILTERS["setting_up"][0], "info"),
    GrantStatus.ACTIVE: (GRANT_STATUS_FILTERS["active"][0], "success"),
    GrantStatus.FAILED: (GRANT_STATUS_FILTERS["failed"][0], "danger"),
    GrantStatus.REVOKING: (GRANT_STATUS_FILTERS["revoking"][0], "warning"),
    GrantStatus.REVOKED: (GRANT_STATUS_FILTERS["revoked"][0], "neutral"),
}


def _url_or_none(name: str, acting: Acting) -> str | None:
    """A page of another module, when it is built (the instruction is another helper's)."""
    try:
        return reverse(name, args=[acting.orgnr])
    except NoReverseMatch:
        return None


def _access_word(access: str) -> str:
    """ "read" or "write" as a verb in a sentence, in the reader's language."""
    return str(Access(access).label).lower()


def _crumbs(acting: Acting, *pages: tuple[str, str]) -> list[tuple[str, str]]:
    return [(reverse("orders:dashboard", args=[acting.orgnr]), acting.organisation.name), *pages]


# --- The start page ------------------------------------------------------------------------------


@dataclass
class Cell:
    """One service in one environment: who uses it, and what waits for it."""

    opens: Any = None  # the date it opens, while it is not open yet
    vendors: list[tuple[str, int]] = field(default_factory=list)  # active: (vendor, clients)
    setting_up: int = 0
    failed: int = 0
    waiting_to_open: int = 0


def dashboard(request: HttpRequest, acting: Acting) -> HttpResponse:
    """The start page: what we have, what waits for me, what to do next. A fixed number of
    queries whatever the kommune holds."""
    user, kommune = request.user, acting.organisation
    today = timezone.localdate()
    environments = list(Environment.choices)
    catalogue = list(Service.objects.with_availability())
    cells = {(s.pk, env): Cell() for s in catalogue for env, _label in environments}
    for service in catalogue:
        for env, _label in environments:
            if not service.is_available(env, on=today):
                cells[service.pk, env].opens = service.available_from(env) or "unplanned"

    grants = (
        Grant.objects.visible_to(user)
        .filter(kommune=kommune, status__in=LIVE_GRANT_STATUSES)
        .values("service_id", "client__environment", "client__vendor__name", "status")
        .annotate(clients=Count("client_id", distinct=True))
        .order_by("client__vendor__name")
    )
    vendors_in_use: set[str] = set()
    for row in grants:
        cell = cells.get((row["service_id"], row["client__environment"]))
        if cell is None:
            continue
        if row["status"] == GrantStatus.ACTIVE:
            cell.vendors.append((row["client__vendor__name"], row["clients"]))
            vendors_in_use.add(row["client__vendor__name"])
        elif row["status"] == GrantStatus.FAILED:
            cell.failed += row["clients"]
        else:
            cell.setting_up += row["clients"]

    waiting: Counter[str] = Counter()
    items = (
        AccessRequestItem.objects.filter(
            request__in=AccessRequest.objects.visible_to(user).filter(kommune=kommune),
            status__in=WAITING_STATUSES,
        )
        .values("status", "service_id", "request__client__environment")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in items:
        waiting[row["status"]] += row["n"]
        if row["status"] == ItemStatus.AWAITING_AVAILABILITY:
            cell = cells.get((row["service_id"], row["request__client__environment"]))
            if cell is not None:
                cell.waiting_to_open += row["n"]

    instruction = Instruction.objects.visible_to(user).current_for(kommune)
    draft = (
        Instruction.objects.visible_to(user)
        .filter(kommune=kommune, signed_at__isnull=True)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )
    epj = Organisation.objects.select_related(
        "epj_product__vendor", "epj_switch_product__vendor"
    ).get(pk=kommune.pk)
    delegated_to = list(
        Delegation.objects.visible_to(user)
        .filter(kommune=kommune)
        .in_force(today)
        .values_list("vendor__name", flat=True)
        .distinct()
        .order_by("vendor__name")
    )

    rows = [
        (
            service,
            instruction is not None and instruction.covers(service),
            [cells[service.pk, env] for env, _label in environments],
        )
        for service in catalogue
    ]
    opening = [
        (service, label, cells[service.pk, env])
        for service in catalogue
        for env, label in environments
        if cells[service.pk, env].waiting_to_open
    ]
    instruction_url = _url_or_none("orders:instruction", acting)
    next_steps = []
    if instruction is None:
        next_steps.append(
            (
                instruction_url,
                _(
                    "Sign the data-processing instruction: access in production waits for it. "
                    "The test environment does not."
                ),
            )
        )
    if waiting[ItemStatus.AWAITING_KOMMUNE]:
        next_steps.append(
            (
                reverse("orders:approvals", args=[acting.orgnr]),
                ngettext(
                    "%(count)s item of an order waits for your approval.",
                    "%(count)s items of orders wait for your approval.",
                    waiting[ItemStatus.AWAITING_KOMMUNE],
                )
                % {"count": waiting[ItemStatus.AWAITING_KOMMUNE]},
            )
        )
    if epj.epj_product_id is None:
        next_steps.append(
            (
                reverse("tenants:epj", args=[acting.orgnr]),
                _(
                    "Record the EPJ you use and any planned switch: some services are for Epic "
                    "only."
                ),
            )
        )
    may_change = acting.can(Role.KOMMUNE_ADMIN)
    if not delegated_to and not vendors_in_use:
        next_steps.append(
            (
                # A reader cannot delegate; the list says who may.
                reverse(
                    "orders:delegation_new" if may_change else "orders:delegations",
                    args=[acting.orgnr],
                ),
                _(
                    "Delegate services to your vendors, so their orders are approved without "
                    "asking you each time."
                ),
            )
        )
    return render(
        request,
        "orders/kommune/dashboard.html",
        {
            "environments": environments,
            "rows": rows,
            "opening": opening,
            "awaiting_kommune": waiting[ItemStatus.AWAITING_KOMMUNE],
            "awaiting_others": {
                "availability": waiting[ItemStatus.AWAITING_AVAILABILITY],
                "verification": waiting[ItemStatus.AWAITING_VERIFICATION],
                "vendor": waiting[ItemStatus.AWAITING_VENDOR],
            },
            "instruction": instruction,
            "draft_version": draft,
            "instruction_url": instruction_url,
            "epj": epj,
            "delegated_to": delegated_to,
            "vendors_in_use": sorted(vendors_in_use),
            "next_steps": next_steps,
            "may_change": may_change,
        },
    )


# --- Delegations ---------------------------------------------------------------------------------


def _delegations(request: HttpRequest, acting: Acting) -> QuerySet[Delegation]:
    return Delegation.objects.visible_to(request.user).filter(kommune=acting.organisation)


def _delegation_status(status: str, today: Any) -> Q:
    live = Q(revoked_at__isnull=True)
    return {
        "active": live
        & Q(valid_from__lte=today)
        & (Q(valid_until__isnull=True) | Q(valid_until__gte=today)),
        "scheduled": live
        & Q(valid_from__gt=today)
        & (Q(valid_until__isnull=True) | Q(valid_until__gte=today)),
        "expired": live & Q(valid_until__lt=today),
        "revoked": Q(revoked_at__isnull=False),
    }[status]


DELEGATION_STATUS_DISPLAY = {
    "active": (gettext_lazy("In force"), "success"),
    "scheduled": (gettext_lazy("Starts later"), "info"),
    "expired": (gettext_lazy("Expired"), "neutral"),
    "revoked": (gettext_lazy("Revoked"), "neutral"),
}


@kommune_page
def delegations(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Which vendor may order what for us?"""
    items = DelegationItem.objects.select_related("service").order_by("service__position", "access")
    # to_attr fills the attribute the model declares (the stubs see it as a second one).
    ordered = Prefetch("items", queryset=items, to_attr="ordered_items")
    rows: QuerySet[Delegation] = _delegations(request, acting).select_related("vendor")
    rows = rows.prefetch_related(ordered)  # type: ignore[no-redef]
    filters = DelegationFilterForm(request.GET)
    if filters.is_valid():
        if vendor := filters.cleaned_data["vendor"].strip():
            digits = vendor.replace(" ", "")
            rows = rows.filter(
                Q(vendor__name__icontains=vendor)
                | (Q(vendor__orgnr__startswith=digits) if digits.isdigit() else Q(pk__in=[]))
            )
        if status := filters.cleaned_data["status"]:
            rows = rows.filter(_delegation_status(status, timezone.localdate()))
    page = listing(
        request,
        rows,
        sorts={
            "vendor": "vendor__name",
            "from": "valid_from",
            "until": "valid_until",
            "created": "created_at",
        },
        default="-created",
    )
    shown = [(d, *DELEGATION_STATUS_DISPLAY[d.status]) for d in page.rows]
    return render(
        request,
        "orders/kommune/delegations.html",
        {
            "listing": page,
            "shown": shown,
            "filters": filters,
            "filtered": any(request.GET.get(name) for name in ("vendor", "status")),
            "may_change": acting.can(Role.KOMMUNE_ADMIN),
        },
    )


@admin_page
def delegation_new(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Delegate services and access to a vendor found by name or orgnr."""
    form = DelegationForm(request.POST if request.method == "POST" else None)
    form.fields["vendor"].widget.attrs.update(
        {
            "hx-get": reverse("orders:vendor_suggestions", args=[acting.orgnr]),
            "hx-trigger": "input changed delay:300ms",
            "hx-target": "#vendor-options",
            "hx-swap": "innerHTML",
        }
    )
    if request.method == "POST" and form.is_valid():
        vendor = form.cleaned_data["vendor"]
        waiting = AccessRequestItem.objects.filter(
            request__kommune=acting.organisation,
            request__client__vendor=vendor,
            status=ItemStatus.AWAITING_KOMMUNE,
        )
        before = waiting.count()
        codes = tuple(form.cleaned_data["service_codes"])
        try:
            delegation = services.delegation_create(
                kommune=acting.organisation,
                vendor=vendor,
                items=[
                    services.DelegationItemInput(
                        service=service, access=access, service_codes=codes
                    )
                    for service, access in form.cleaned_data["items"]
                ],
                valid_from=form.cleaned_data["valid_from"],
                valid_until=form.cleaned_data["valid_until"],
                actor=person_of(request),
            )
        except (ValidationError, PermissionDenied, Conflict) as error:
            service_errors_add(form, error)
        else:
            text = _(
                "The delegation to %(vendor)s is saved. From %(date)s its orders for these "
                "services are approved without asking you; the access they get shows under Access."
            ) % {
                "vendor": vendor.name,
                "date": date_format(delegation.valid_from, "DATE_FORMAT"),
            }
            went_on = before - waiting.count()
            if went_on > 0:
                text += " " + ngettext(
                    "%(count)s item that waited for you went on by itself.",
                    "%(count)s items that waited for you went on by themselves.",
                    went_on,
                ) % {"count": went_on}
            messages.success(request, text)
            return redirect("orders:delegations", acting.orgnr)
    url = reverse("orders:delegation_new", args=[acting.orgnr])
    return render(
        request,
        "orders/kommune/delegation_new.html",
        {
            "form": form,
            "crumbs": _crumbs(
                acting,
                (reverse("orders:delegations", args=[acting.orgnr]), _("Delegations")),
                (url, _("New delegation")),
            ),
        },
    )


@admin_page
def vendor_suggestions(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Vendors matching what has been typed so far (htmx fills the field's suggestions)."""
    typed = request.GET.get("vendor", "").strip()
    vendors = list(vendor_matches(typed)[:10]) if len(typed) >= 2 else []
    return render(request, "orders/kommune/_vendor_options.html", {"vendors": vendors})


@admin_page
def delegation_revoke(request: HttpRequest, acting: Acting, pk: str) -> HttpResponse:
    """Revoke a delegation, after a preview of the grants it closes."""
    delegation = get_object_or_404(_delegations(request, acting).select_related("vendor"), pk=pk)
    error = ""
    if request.method == "POST":
        closing = services.delegation_revoke_closes(delegation=delegation).count()
        try:
            services.delegation_revoke(delegation=delegation, actor=person_of(request))
        except Conflict as conflict:
            error = conflict.message
        else:
            names = {"vendor": delegation.vendor.name, "count": closing}
            text = _("The delegation to %(vendor)s is revoked.") % names
            if closing:
                text += (
                    " "
                    + ngettext(
                        "%(count)s access that rested on it is being closed: the gateway "
                        "stops it within seconds.",
                        "%(count)s accesses that rested on it are being closed: the gateway "
                        "stops them within seconds.",
                        closing,
                    )
                    % names
                )
            text += " " + _("New orders from %(vendor)s wait for your approval.") % names
            messages.success(request, text)
            return redirect("orders:delegations", acting.orgnr)
    closes = (
        services.delegation_revoke_closes(delegation=delegation)
        .select_related("client", "service")
        .order_by("client__name", "service__position", "access")
    )
    url = reverse("orders:delegation_revoke", args=[acting.orgnr, delegation.pk])
    return render(
        request,
        "orders/kommune/delegation_revoke.html",
        {
            "delegation": delegation,
            "closes": list(closes),
            "error": error,
            "crumbs": _crumbs(
                acting,
                (reverse("orders:delegations", args=[acting.orgnr]), _("Delegations")),
                (url, _("Revoke the delegation")),
            ),
        },
    )


# --- Approvals -----------------------------------------------------------------------------------


def _waiting_items(request: HttpRequest, acting: Acting) -> QuerySet[AccessRequestItem]:
    """The items of the kommune's orders that wait for its decision."""
    return AccessRequestItem.objects.filter(
        request__in=AccessRequest.objects.visible_to(request.user).filter(
            kommune=acting.organisation
        ),
        status=ItemStatus.AWAITING_KOMMUNE,
    )


def _decide(
    *,
    items: list[AccessRequestItem],
    decision: str,
    reason: str,
    actor: User,
    service_codes: dict[str, list[str]] | None = None,
) -> dict[str, int]:
    """Approve or reject ``items`` (of one kommune) through the API's service functions, one
    call per order; all of them or, on a refusal, none. Returns their statuses counted."""
    by_request: dict[Any, list[Any]] = {}
    for item in items:
        by_request.setdefault(item.request_id, []).append(item.pk)
    orders = AccessRequest.objects.visible_to(actor).filter(pk__in=list(by_request))
    with transaction.atomic():
        for order in orders.select_related("kommune").order_by("created_at", "pk"):
            if decision == "approve":
                services.access_request_approve(
                    request=order,
                    actor=actor,
                    item_ids=by_request[order.pk],
                    service_codes=service_codes,
                )
            else:
                services.access_request_reject(
                    request=order, actor=actor, item_ids=by_request[order.pk], reason=reason
                )
    statuses = AccessRequestItem.objects.filter(pk__in=[item.pk for item in items])
    return dict(statuses.values_list("status").annotate(n=Count("pk")).order_by())


def _decided_message(decision: str, counts: dict[str, int], vendors: set[str]) -> str:
    if decision == "reject":
        count = counts.get(ItemStatus.REJECTED, 0)
        return ngettext(
            "%(count)s item rejected. %(vendors)s sees your reason with its order.",
            "%(count)s items rejected. %(vendors)s sees your reason with its orders.",
            count,
        ) % {"count": count, "vendors": ", ".join(sorted(vendors))}
    parts = []
    if approved := counts.get(ItemStatus.APPROVED, 0):
        parts.append(
            ngettext(
                "%(count)s item approved: its access is being set up now.",
                "%(count)s items approved: their access is being set up now.",
                approved,
            )
            % {"count": approved}
        )
    if opening := counts.get(ItemStatus.AWAITING_AVAILABILITY, 0):
        parts.append(
            ngettext(
                "%(count)s waits for the service to open, and is set up by itself then.",
                "%(count)s wait for the service to open, and are set up by themselves then.",
                opening,
            )
            % {"count": opening}
        )
    if verifying := counts.get(ItemStatus.AWAITING_VERIFICATION, 0):
        parts.append(
            ngettext(
                "%(count)s waits for NHN to verify the vendor's product.",
                "%(count)s wait for NHN to verify the vendor's product.",
                verifying,
            )
            % {"count": verifying}
        )
    if refused := counts.get(ItemStatus.REJECTED, 0):
        parts.append(
            ngettext(
                "%(count)s was refused by the rules; its reason shows under the order.",
                "%(count)s were refused by the rules; their reasons show under the order.",
                refused,
            )
            % {"count": refused}
        )
    return " ".join(parts) or _("Nothing changed.")


@dataclass(frozen=True)
class WaitingRow:
    item: AccessRequestItem
    reason: str


@kommune_page
def approvals(request: HttpRequest, acting: Acting) -> HttpResponse:
    """What do vendors want, and why did the rules not decide it? Approve or reject several."""
    waiting = _waiting_items(request, acting)
    may_change = acting.can(Role.KOMMUNE_ADMIN)
    form = BulkDecisionForm(request.POST if request.method == "POST" else None, items=waiting)
    if request.method == "POST":
        if not may_change:
            raise PermissionDenied
        if form.is_valid():
            chosen = list(form.cleaned_data["items"].select_related("request__client__vendor"))
            decision = form.cleaned_data["decision"]
            try:
                counts = _decide(
                    items=chosen,
                    decision=decision,
                    reason=form.cleaned_data["reason"],
                    actor=person_of(request),
                )
            except (ValidationError, PermissionDenied, Conflict) as error:
                service_errors_add(form, error)
            else:
                vendors = {item.request.client.vendor.name for item in chosen}
                messages.success(request, _decided_message(decision, counts, vendors))
                return redirect("orders:approvals", acting.orgnr)
    vendor = request.GET.get("vendor", "")
    rows = waiting.select_related(
        "service", "request__client__vendor", "request__client__product", "request__requested_by"
    )
    vendor_choices = list(
        waiting.values_list("request__client__vendor__orgnr", "request__client__vendor__name")
        .distinct()
        .order_by("request__client__vendor__name")
    )
    if vendor:
        rows = rows.filter(request__client__vendor__orgnr=vendor)
    page = listing(
        request,
        rows,
        sorts={
            "asked": "request__created_at",
            "vendor": ("request__client__vendor__name", "request__created_at"),
            "service": ("service__position", "access"),
            "environment": ("request__client__environment", "request__created_at"),
        },
        default="asked",
    )
    shown = [
        WaitingRow(item, reason_text(item.reason_code, item.reason_params)) for item in page.rows
    ]
    return render(
        request,
        "orders/kommune/approvals.html",
        {
            "listing": page,
            "rows": shown,
            "form": form,
            "selected": set(request.POST.getlist("items")),
            "vendors": vendor_choices,
            "vendor": vendor,
            "may_change": may_change,
            "instruction_url": _url_or_none("orders:instruction", acting),
        },
    )


@kommune_page
def approval(request: HttpRequest, acting: Acting, pk: str) -> HttpResponse:
    """One item of an order, with the policy's reason; approve it (narrowing the service codes)
    or reject it with a reason."""
    requests = AccessRequest.objects.visible_to(request.user).filter(kommune=acting.organisation)
    item = get_object_or_404(
        AccessRequestItem.objects.filter(request__in=requests).select_related(
            "service",
            "request__client__vendor",
            "request__client__product",
            "request__requested_by",
        ),
        pk=pk,
    )
    may_change = acting.can(Role.KOMMUNE_ADMIN)
    form = ItemDecisionForm(request.POST if request.method == "POST" else None, item=item)
    if request.method == "POST":
        if not may_change:
            raise PermissionDenied
        if form.is_valid():
            decision = form.cleaned_data["decision"]
            codes = None
            if "service_codes" in form.cleaned_data:
                codes = {str(item.pk): list(form.cleaned_data["service_codes"])}
            try:
                counts = _decide(
                    items=[item],
                    decision=decision,
                    reason=form.cleaned_data["reason"],
                    actor=person_of(request),
                    service_codes=codes,
                )
            except (ValidationError, PermissionDenied, Conflict) as error:
                service_errors_add(form, error)
            else:
                vendors = {item.request.client.vendor.name}
                messages.success(request, _decided_message(decision, counts, vendors))
                return redirect("orders:approvals", acting.orgnr)
    url = reverse("orders:approval", args=[acting.orgnr, item.pk])
    return render(
        request,
        "orders/kommune/approval.html",
        {
            "item": item,
            "reason": reason_text(item.reason_code, item.reason_params),
            "waits": item.status == ItemStatus.AWAITING_KOMMUNE,
            "form": form,
            "may_change": may_change,
            "instruction_url": _url_or_none("orders:instruction", acting),
            "crumbs": _crumbs(
                acting,
                (reverse("orders:approvals", args=[acting.orgnr]), _("Approvals")),
                (url, f"{item.service.name}: {_access_word(item.access)}"),
            ),
        },
    )


# --- Access (grants) -----------------------------------------------------------------------------


def _grants(request: HttpRequest, acting: Acting) -> QuerySet[Grant]:
    return Grant.objects.visible_to(request.user).filter(kommune=acting.organisation)


@dataclass(frozen=True)
class GrantRow:
    grant: Grant
    status: Any
    colour: str
    live: bool


@kommune_page
def access(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Who can read or write our data right now? Filter, sort, and revoke after a preview."""
    grants = _grants(request, acting)
    vendors = list(
        grants.values_list("client__vendor__orgnr", "client__vendor__name")
        .distinct()
        .order_by("client__vendor__name")
    )
    catalogue = list(Service.objects.order_by("position", "code"))
    filters = GrantFilterForm(request.GET, vendors=vendors, services=catalogue)
    status_filter = ""
    rows = grants.select_related("client__vendor", "service")
    if filters.is_valid():
        if vendor := filters.cleaned_data["vendor"]:
            rows = rows.filter(client__vendor__orgnr=vendor)
        if service := filters.cleaned_data["service"]:
            rows = rows.filter(service__code=service)
        if environment := filters.cleaned_data["environment"]:
            rows = rows.filter(client__environment=environment)
        status_filter = filters.cleaned_data["status"]
    statuses = GRANT_STATUS_FILTERS[status_filter][1]
    if statuses is not None:
        rows = rows.filter(status__in=statuses)
    page = listing(
        request,
        rows,
        sorts={
            "vendor": ("client__vendor__name", "client__name"),
            "client": "client__name",
            "service": ("service__position", "access"),
            "access": "access",
            "environment": "client__environment",
            "status": "status",
            "since": "status_changed_at",
        },
        default="-since",
    )
    shown = [
        GrantRow(grant, *GRANT_STATUS_DISPLAY[grant.status], grant.status in LIVE_GRANT_STATUSES)
        for grant in page.rows
    ]
    return render(
        request,
        "orders/kommune/access.html",
        {
            "listing": page,
            "rows": shown,
            "filters": filters,
            "filtered": any(
                request.GET.get(name) for name in ("vendor", "service", "status", "environment")
            ),
            "may_change": acting.can(Role.KOMMUNE_ADMIN),
        },
    )


@admin_page
def grant_revoke(request: HttpRequest, acting: Acting, pk: str) -> HttpResponse:
    """Revoke one grant, after a preview of what closes for which vendor's client."""
    grant = get_object_or_404(
        _grants(request, acting).select_related("client__vendor", "service"), pk=pk
    )
    form = GrantRevokeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.grant_revoke(
                grant=grant, actor=person_of(request), reason=form.cleaned_data["reason"]
            )
        except (ValidationError, PermissionDenied, Conflict) as error:
            service_errors_add(form, error)
        else:
            messages.success(
                request,
                _(
                    "Access revoked: %(client)s of %(vendor)s can no longer %(access)s "
                    "%(service)s for %(kommune)s. The gateway stops it within seconds."
                )
                % {
                    "client": grant.client.name,
                    "vendor": grant.client.vendor.name,
                    "access": _access_word(grant.access),
                    "service": grant.service.name,
                    "kommune": acting.organisation.name,
                },
            )
            return redirect("orders:access", acting.orgnr)
    others = (
        _grants(request, acting)
        .filter(client=grant.client, status__in=LIVE_GRANT_STATUSES)
        .exclude(pk=grant.pk)
        .count()
    )
    url = reverse("orders:grant_revoke", args=[acting.orgnr, grant.pk])
    label, colour = GRANT_STATUS_DISPLAY[grant.status]
    return render(
        request,
        "orders/kommune/grant_revoke.html",
        {
            "grant": grant,
            "status": label,
            "colour": colour,
            "live": grant.status in LIVE_GRANT_STATUSES,
            "others": others,
            "form": form,
            "crumbs": _crumbs(
                acting,
                (reverse("orders:access", args=[acting.orgnr]), _("Access")),
                (url, _("Revoke access")),
            ),
        },
    )


urlpatterns: list[URLPattern] = [
    path("delegations/", delegations, name="delegations"),
    path("delegations/new/", delegation_new, name="delegation_new"),
    path("delegations/vendors/", vendor_suggestions, name="vendor_suggestions"),
    path("delegations/<uuid:pk>/revoke/", delegation_revoke, name="delegation_revoke"),
    path("approvals/", approvals, name="approvals"),
    path("approvals/<uuid:pk>/", approval, name="approval"),
    path("access/", access, name="access"),
    path("access/<uuid:pk>/revoke/", grant_revoke, name="grant_revoke"),
]
