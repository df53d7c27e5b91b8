"""Pages for a vendor: new order with a dry run of the policy, orders, live provisioning, try it.

"What will happen if I order this for these kommuner?" is answered by the policy itself
(``services.access_request_preview``); the send decides again (``access_request_create``), so
nothing a preview said is trusted. "Is it working yet?" is read from the stored state of each
grant and of its client's provisioning jobs, polled while something is under way.
"""

from __future__ import annotations

import datetime
import json
import shlex
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.datastructures import MultiValueDict
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy
from django.views.decorators.http import require_POST

from orders import policy, services
from orders.forms.ordering import ItemsForm, OrderFilterForm, OrderForm, item_label, order_data
from orders.models import (
    WAITING_STATUSES,
    Access,
    AccessRequest,
    AccessRequestItem,
    Grant,
    GrantStatus,
    ItemStatus,
    ProvisioningJob,
)
from portal.exceptions import Conflict
from portal.forms import service_errors_add
from tenants.models import ClientKey, Environment, OAuthClient, Organisation, Role
from tenants.pages import Acting, listing, organisation_page, person_of

VENDOR = (Organisation.Kind.VENDOR,)
READERS = (Role.VENDOR_ADMIN, Role.VENDOR_DEVELOPER)
#: Only a vendor's admins order (as the API: ``is_admin_of`` the client's vendor).
ADMINS = (Role.VENDOR_ADMIN,)

#: An item's decision in the words of UI.md, with the colour of its tag.
DECISIONS: dict[str, tuple[Any, str]] = {
    ItemStatus.APPROVED: (pgettext_lazy("order decision", "Approved"), "success"),
    ItemStatus.AWAITING_KOMMUNE: (
        pgettext_lazy("order decision", "Waits for the municipality"),
        "warning",
    ),
    ItemStatus.AWAITING_AVAILABILITY: (
        pgettext_lazy("order decision", "Waits for the service to open"),
        "warning",
    ),
    ItemStatus.AWAITING_VERIFICATION: (
        pgettext_lazy("order decision", "Waits for NHN"),
        "warning",
    ),
    ItemStatus.AWAITING_VENDOR: (
        pgettext_lazy("order decision", "Waits for the vendor"),
        "warning",
    ),
    ItemStatus.REJECTED: (pgettext_lazy("order decision", "Rejected"), "danger"),
    ItemStatus.WITHDRAWN: (pgettext_lazy("order decision", "Withdrawn"), "neutral"),
}
#: The order in which a preview counts its decisions.
COUNTED = (
    ItemStatus.APPROVED,
    ItemStatus.AWAITING_KOMMUNE,
    ItemStatus.AWAITING_AVAILABILITY,
    ItemStatus.AWAITING_VERIFICATION,
    ItemStatus.AWAITING_VENDOR,
    ItemStatus.REJECTED,
)


def decision_tag(status: str) -> tuple[str, str]:
    word, colour = DECISIONS[status]
    return str(word), colour


def preview_counts(statuses: Iterable[str]) -> str:
    """The counts per decision, as in "12 godkjennes, 3 venter på kommunen, 1 avslås"."""
    counts = Counter(statuses)
    words = {
        ItemStatus.APPROVED: lambda n: ngettext(
            "%(count)s will be approved", "%(count)s will be approved", n
        ),
        ItemStatus.AWAITING_KOMMUNE: lambda n: ngettext(
            "%(count)s will wait for the municipality",
            "%(count)s will wait for the municipality",
            n,
        ),
        ItemStatus.AWAITING_AVAILABILITY: lambda n: ngettext(
            "%(count)s will wait for the service to open",
            "%(count)s will wait for the service to open",
            n,
        ),
        ItemStatus.AWAITING_VERIFICATION: lambda n: ngettext(
            "%(count)s will wait for NHN's verification",
            "%(count)s will wait for NHN's verification",
            n,
        ),
        ItemStatus.AWAITING_VENDOR: lambda n: ngettext(
            "%(count)s will wait for the vendor", "%(count)s will wait for the vendor", n
        ),
        ItemStatus.REJECTED: lambda n: ngettext(
            "%(count)s will be rejected", "%(count)s will be rejected", n
        ),
    }
    return ", ".join(
        words[status](counts[status]) % {"count": counts[status]}
        for status in COUNTED
        if counts[status]
    )


def sent_message(created: Sequence[AccessRequest]) -> str:
    """What happened, as in "Bestillingen er sendt. 2 tilganger klargjøres nå; 1 venter på
    Bergen kommune."."""
    items = [item for request in created for item in request.ordered_items]
    counts = Counter(item.status for item in items)
    already = sum(
        1
        for item in items
        if item.status == ItemStatus.APPROVED
        and item.grant is not None
        and item.grant.status == GrantStatus.ACTIVE
    )
    parts = []
    if setting_up := counts[ItemStatus.APPROVED] - already:
        parts.append(
            ngettext(
                "%(count)s access is being set up now",
                "%(count)s accesses are being set up now",
                setting_up,
            )
            % {"count": setting_up}
        )
    if already:
        parts.append(
            ngettext("%(count)s was already active", "%(count)s were already active", already)
            % {"count": already}
        )
    if waiting := counts[ItemStatus.AWAITING_KOMMUNE]:
        kommuner = [
            request.kommune
            for request in created
            if any(i.status == ItemStatus.AWAITING_KOMMUNE for i in request.ordered_items)
        ]
        if len(kommuner) == 1:
            parts.append(
                ngettext(
                    "%(count)s waits for %(kommune)s", "%(count)s wait for %(kommune)s", waiting
                )
                % {"count": waiting, "kommune": kommuner[0].name}
            )
        else:
            parts.append(
                _("%(count)s wait for %(kommuner)s municipalities")
                % {"count": waiting, "kommuner": len(kommuner)}
            )
    if n := counts[ItemStatus.AWAITING_AVAILABILITY]:
        parts.append(
            ngettext(
                "%(count)s waits for the service to open",
                "%(count)s wait for the service to open",
                n,
            )
            % {"count": n}
        )
    if n := counts[ItemStatus.AWAITING_VERIFICATION]:
        parts.append(
            ngettext(
                "%(count)s waits for NHN's verification", "%(count)s wait for NHN's verification", n
            )
            % {"count": n}
        )
    if n := counts[ItemStatus.AWAITING_VENDOR]:
        parts.append(
            ngettext("%(count)s waits for the vendor", "%(count)s wait for the vendor", n)
            % {"count": n}
        )
    if n := counts[ItemStatus.REJECTED]:
        parts.append(
            ngettext("%(count)s was rejected", "%(count)s were rejected", n) % {"count": n}
        )
    sent = _("The order is sent.")
    return f"{sent} {'; '.join(parts)}."


# --- New order: the form, the dry run, the send ----------------------------------------------


def _crumbs(acting: Acting, *more: tuple[str, str]) -> list[tuple[str, str]]:
    return [(reverse("orders:orders", args=[acting.orgnr]), _("Orders")), *more]


def _form_page(request: HttpRequest, acting: Acting, form: OrderForm) -> HttpResponse:
    return render(
        request,
        "orders/ordering/order_new.html",
        {
            "form": form,
            "crumbs": _crumbs(
                acting, (reverse("orders:order_new", args=[acting.orgnr]), _("New order"))
            ),
        },
    )


def _answers(data: Any) -> dict[str, Any]:
    """A posted order form as the initial values of a fresh one."""
    return {
        "client": data.get("client"),
        "items": data.getlist("items"),
        "service_codes": data.getlist("service_codes"),
        "which": data.get("which") or OrderForm.CHOSEN,
        "search": data.get("search", ""),
        "kommuner": data.getlist("kommuner"),
    }


def _order_inputs(request: HttpRequest, answers: dict[str, Any]) -> dict[str, Any]:
    """The order form's answers as the services take them: the dry run and the order itself get
    the same, so what the preview showed is what is decided again when it is sent."""
    return {
        "client": answers["client"],
        "kommuner": answers["kommune_list"],
        "items": answers["item_inputs"],
        "initiated_by": AccessRequest.Initiator.VENDOR,
        "actor": person_of(request),
    }


@organisation_page(kinds=VENDOR, roles=ADMINS)
def order_new(request: HttpRequest, acting: Acting) -> HttpResponse:
    """The question "What will happen if I order this for these kommuner?": the form; posted,
    the dry run (or, for the search button, the form again with the kommuner narrowed)."""
    vendor = acting.organisation
    if request.method != "POST":
        initial = None
        if token := request.GET.get("order"):  # "Change your answers" from the preview
            data = order_data(token, acting_orgnr=acting.orgnr, user_id=request.user.pk)
            initial = _answers(MultiValueDict({k: _as_list(v) for k, v in (data or {}).items()}))
        return _form_page(request, acting, OrderForm(initial=initial, vendor=vendor))

    if request.POST.get("action") == "search":
        form = OrderForm(initial=_answers(request.POST), vendor=vendor)
        form.narrow_kommuner(request.POST.get("search", ""), request.POST.getlist("kommuner"))
        return _form_page(request, acting, form)

    form = OrderForm(request.POST, vendor=vendor)
    if form.is_valid():
        data = form.cleaned_data
        try:
            previews = services.access_request_preview(**_order_inputs(request, data))
        except (ValidationError, Conflict) as exc:
            service_errors_add(form, exc)
        else:
            return _preview_page(request, acting, form, previews)
    return _form_page(request, acting, form)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class PreviewRow:
    kommune: Organisation
    label: str
    word: str
    colour: str
    reason: str
    first_of_kommune: bool


def _preview_page(
    request: HttpRequest,
    acting: Acting,
    form: OrderForm,
    previews: list[services.ItemPreview],
) -> HttpResponse:
    data = form.cleaned_data
    token = form.signed(acting_orgnr=acting.orgnr, user_id=request.user.pk)
    rows = []
    previous = None
    for preview in previews:
        word, colour = decision_tag(preview.status)
        rows.append(
            PreviewRow(
                kommune=preview.kommune,
                label=item_label(preview.service, preview.access),
                word=word,
                colour=colour,
                reason=preview.reason,
                first_of_kommune=preview.kommune.pk != previous,
            )
        )
        previous = preview.kommune.pk
    change = reverse("orders:order_new", args=[acting.orgnr]) + "?" + urlencode({"order": token})
    return render(
        request,
        "orders/ordering/order_preview.html",
        {
            "client": data["client"],
            "items": [item_label(i.service, i.access) for i in data["item_inputs"]],
            "service_codes": data.get("service_codes") or [],
            "kommuner": data["kommune_list"],
            "rows": rows,
            "counts": preview_counts(p.status for p in previews),
            "token": token,
            "change_url": change,
            "crumbs": _crumbs(
                acting,
                (reverse("orders:order_new", args=[acting.orgnr]), _("New order")),
                (request.path, _("Check your order")),
            ),
        },
    )


@require_POST
@organisation_page(kinds=VENDOR, roles=ADMINS)
def order_send(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Send the checked order: the same answers, decided again by the policy as it stands."""
    data = order_data(
        request.POST.get("order", ""), acting_orgnr=acting.orgnr, user_id=request.user.pk
    )
    if data is None:
        messages.error(
            request,
            _(
                "The checked order could not be read (it may be too old). Check it again, "
                "then send it."
            ),
        )
        return redirect("orders:order_new", acting.orgnr)
    form = OrderForm(
        MultiValueDict({k: _as_list(v) for k, v in data.items()}), vendor=acting.organisation
    )
    if form.is_valid():
        answers = form.cleaned_data
        try:
            created = services.access_request_create(**_order_inputs(request, answers))
        except (ValidationError, Conflict) as exc:
            service_errors_add(form, exc)
        else:
            messages.success(request, sent_message(created))
            if len(created) == 1:
                return redirect("orders:order", acting.orgnr, created[0].pk)
            url = reverse("orders:orders", args=[acting.orgnr])
            return HttpResponseRedirect(f"{url}?{urlencode({'client': answers['client'].pk})}")
    return _form_page(request, acting, form)


# --- The list of orders ------------------------------------------------------------------------


def _requests(request: HttpRequest, acting: Acting) -> QuerySet[AccessRequest]:
    """The vendor's orders (its clients' access requests), as the API shows them to it."""
    return AccessRequest.objects.visible_to(request.user).filter(client__vendor=acting.organisation)


@dataclass(frozen=True)
class Tag:
    word: str
    colour: str
    count: int = 1


def _item_state(item: AccessRequestItem) -> tuple[str, str]:
    """An item as a person wants to know it: its decision, or once approved its grant's state."""
    if item.status == ItemStatus.APPROVED and item.grant is not None:
        return grant_tag(item.grant.status)
    return decision_tag(item.status)


def _summary(items: Iterable[AccessRequestItem]) -> list[Tag]:
    counts = Counter(_item_state(item) for item in items)
    return [Tag(word, colour, n) for (word, colour), n in counts.items()]


@organisation_page(kinds=VENDOR, roles=READERS)
def orders(request: HttpRequest, acting: Acting) -> HttpResponse:
    """The vendor's orders, per kommune, filtered by client, kommune and status."""
    filters = OrderFilterForm(
        request.GET or None,
        vendor=acting.organisation,
        statuses=[(status, decision_tag(status)[0]) for status in DECISIONS],
    )
    queryset = _requests(request, acting)
    if filters.is_valid():
        wanted = filters.cleaned_data
        if wanted.get("client"):
            queryset = queryset.filter(client=wanted["client"])
        if term := (wanted.get("kommune") or "").strip():
            queryset = queryset.filter(
                Q(kommune__name__icontains=term)
                | Q(kommune__kommune__number=term)
                | Q(kommune__orgnr=term.replace(" ", ""))
            )
        if wanted.get("status"):
            queryset = queryset.filter(
                pk__in=AccessRequestItem.objects.filter(status=wanted["status"]).values(
                    "request_id"
                )
            )
    items = AccessRequestItem.objects.select_related("service", "grant").order_by(
        "service__position", "access"
    )
    # to_attr fills the attribute the model declares (the stubs see it as a second one).
    ordered = Prefetch("items", queryset=items, to_attr="ordered_items")
    queryset = queryset.select_related("client", "kommune").prefetch_related(ordered)  # type: ignore[no-redef]
    page = listing(
        request,
        queryset,
        sorts={"created": "created_at", "kommune": "kommune__name", "client": "client__name"},
        default="-created",
    )
    rows = [(r, _summary(r.ordered_items)) for r in page.rows]
    waiting_for_us = AccessRequestItem.objects.filter(
        status=ItemStatus.AWAITING_VENDOR, request__client__vendor=acting.organisation
    ).count()
    return render(
        request,
        "orders/ordering/orders.html",
        {
            "filters": filters,
            "listing": page,
            "rows": rows,
            "filtered": bool(request.GET.get("client") or request.GET.get("kommune"))
            or bool(request.GET.get("status")),
            "waiting_for_us": waiting_for_us,
            "can_order": acting.can(*ADMINS),
        },
    )


# --- One order: its items, live provisioning, withdraw and consent -------------------------------

#: A grant's state in the words of UI.md ("klargjøres, aktiv, feilet"), with its tag colour.
GRANT_WORDS: dict[str, tuple[Any, str]] = {
    GrantStatus.PENDING: (pgettext_lazy("grant state", "Being set up"), "info"),
    GrantStatus.PROVISIONING: (pgettext_lazy("grant state", "Being set up"), "info"),
    GrantStatus.ACTIVE: (pgettext_lazy("grant state", "Active"), "success"),
    GrantStatus.FAILED: (pgettext_lazy("grant state", "Failed"), "danger"),
    GrantStatus.REVOKING: (pgettext_lazy("grant state", "Being revoked"), "warning"),
    GrantStatus.REVOKED: (pgettext_lazy("grant state", "Revoked"), "neutral"),
}


def grant_tag(status: str) -> tuple[str, str]:
    word, colour = GRANT_WORDS[status]
    return str(word), colour


STEP_STATES = {
    "done": gettext_lazy("done"),
    "current": gettext_lazy("under way"),
    "waiting": gettext_lazy("not yet"),
    "failed": gettext_lazy("failed"),
}


@dataclass(frozen=True)
class Step:
    label: str
    state: str  # done, current, waiting or failed
    note: str = ""

    @property
    def state_word(self) -> str:
        return str(STEP_STATES[self.state])


@dataclass
class GrantProgress:
    """Where one grant is on its way to the gateway, read from what is stored."""

    grant: Grant
    word: str
    colour: str
    steps: list[Step] = field(default_factory=list)
    note: str = ""
    settled: bool = True  # nothing left to wait for but a person

    @property
    def callable(self) -> bool:
        return self.settled and self.grant.status == GrantStatus.ACTIVE and not self.note


def _retry_note(jobs: Sequence[ProvisioningJob]) -> str:
    """What the client's job under way says about a failed attempt (retried with backoff)."""
    for job in jobs:
        live = job.status in (ProvisioningJob.Status.PENDING, ProvisioningJob.Status.RUNNING)
        if live and job.last_error:
            return _("Attempt %(attempt)s failed: %(error)s It is tried again by itself.") % {
                "attempt": job.attempts,
                "error": job.last_error,
            }
    return ""


def grant_progress(
    grant: Grant, client: OAuthClient, jobs: Sequence[ProvisioningJob]
) -> GrantProgress:
    """The steps of a grant (registered at the authorization server, gateway configured,
    active) from the stored state. A grant turns active once the authorization server accepted
    its scope; the job that activated it then opens it at the gateway and ends (done or failed):
    until that job, or any job of the client made before the grant turned active, has ended, the
    gateway is still being configured."""
    registered = _("Registered at the authorization server")
    gateway = _("Gateway configured")
    active = _("Active: your system can call the service")
    word, colour = grant_tag(grant.status)
    progress = GrantProgress(grant=grant, word=word, colour=colour)
    status = grant.status
    retry = _retry_note(jobs)
    if status == GrantStatus.PENDING and grant.status_reason_code:  # e.g. every key expired
        reason = policy.grant_reason_text(
            grant.status_reason_code, grant.status_reason_params, grant.status_reason
        )
        progress.word, progress.colour = str(pgettext_lazy("grant state", "Waiting")), "warning"
        progress.steps = [Step(registered, "waiting", reason), Step(gateway, "waiting")]
        progress.steps.append(Step(active, "waiting"))
    elif status in (GrantStatus.PENDING, GrantStatus.PROVISIONING):
        if retry:
            note = retry
        elif status == GrantStatus.PENDING:
            note = _("Queued: a worker takes it within seconds.")
        elif client.client_id:
            note = _("The client is registered; its access is being added to it.")
        else:
            note = _("The client is being registered.")
        progress.steps = [Step(registered, "current", note), Step(gateway, "waiting")]
        progress.steps.append(Step(active, "waiting"))
        progress.settled = False
    elif status == GrantStatus.ACTIVE:
        since = grant.status_changed_at
        before = [j for j in jobs if j.created_at <= since]
        failed = [
            j
            for j in before
            if j.status == ProvisioningJob.Status.FAILED
            and j.finished_at is not None
            and j.finished_at >= since
        ]
        under_way = [
            j
            for j in before
            if j.status in (ProvisioningJob.Status.PENDING, ProvisioningJob.Status.RUNNING)
        ]
        if under_way:
            progress.word, progress.colour = grant_tag(GrantStatus.PROVISIONING)
            progress.steps = [Step(registered, "done"), Step(gateway, "current", retry)]
            progress.steps.append(Step(active, "waiting"))
            progress.settled = False
        elif failed:
            progress.word, progress.colour = grant_tag(GrantStatus.FAILED)
            note = _("%(error)s NHN's operators have been told and can retry it.") % {
                "error": failed[-1].last_error
            }
            progress.steps = [Step(registered, "done"), Step(gateway, "failed", note)]
            progress.steps.append(Step(active, "waiting"))
            progress.note = note
        else:
            progress.steps = [Step(registered, "done"), Step(gateway, "done")]
            progress.steps.append(Step(active, "done"))
    elif status == GrantStatus.FAILED:
        reason = policy.grant_reason_text(
            grant.status_reason_code, grant.status_reason_params, grant.status_reason
        )
        progress.steps = [Step(registered, "failed", reason), Step(gateway, "waiting")]
        progress.steps.append(Step(active, "waiting"))
    else:  # revoking or revoked: no steps to take any more
        progress.note = policy.grant_reason_text(
            grant.revoke_reason_code, grant.revoke_reason_params, grant.revoke_reason
        )
        progress.settled = status == GrantStatus.REVOKED
    return progress


def order_progress(
    access_request: AccessRequest, items: Sequence[AccessRequestItem]
) -> list[GrantProgress]:
    """Each approved item's grant on its way; the client's jobs read in one statement."""
    grants = list({item.grant.pk: item.grant for item in items if item.grant is not None}.values())
    if not grants:
        return []
    since = min(grant.status_changed_at for grant in grants)
    jobs = list(
        ProvisioningJob.objects.filter(client_id=access_request.client_id, coalesced_into=None)
        .filter(
            Q(status__in=[ProvisioningJob.Status.PENDING, ProvisioningJob.Status.RUNNING])
            | Q(status=ProvisioningJob.Status.FAILED, finished_at__gte=since)
        )
        .order_by("created_at")[:50]
    )
    return [grant_progress(grant, access_request.client, jobs) for grant in grants]


def client_url(acting: Acting, client: OAuthClient) -> str | None:
    """The client's own page, once the clients pages have one."""
    try:
        return reverse("orders:client", args=[acting.orgnr, client.pk])
    except NoReverseMatch:
        return None


def _order_of(request: HttpRequest, acting: Acting, pk: Any) -> AccessRequest:
    return get_object_or_404(
        _requests(request, acting).select_related("client", "kommune__kommune", "requested_by"),
        pk=pk,
    )


def _items(access_request: AccessRequest) -> list[AccessRequestItem]:
    return list(
        access_request.items.select_related("service", "grant").order_by(
            "service__position", "access"
        )
    )


def _withdrawable(access_request: AccessRequest) -> QuerySet[AccessRequestItem]:
    if access_request.initiated_by != AccessRequest.Initiator.VENDOR:
        return AccessRequestItem.objects.none()  # the kommune's own order is the kommune's
    return access_request.items.filter(status__in=list(WAITING_STATUSES)).select_related("service")


def _consentable(access_request: AccessRequest) -> QuerySet[AccessRequestItem]:
    return access_request.items.filter(status=ItemStatus.AWAITING_VENDOR).select_related("service")


def _withdraw_form(access_request: AccessRequest, data: Any = None) -> ItemsForm:
    return ItemsForm(
        data,
        queryset=_withdrawable(access_request),
        label=_("Waiting items to withdraw"),
        prefix="withdraw",
    )


def _consent_form(access_request: AccessRequest, data: Any = None) -> ItemsForm:
    return ItemsForm(
        data,
        queryset=_consentable(access_request),
        label=_("Items to consent to"),
        prefix="consent",
    )


def _order_page(
    request: HttpRequest,
    acting: Acting,
    access_request: AccessRequest,
    *,
    withdraw: ItemsForm | None = None,
    consent: ItemsForm | None = None,
) -> HttpResponse:
    items = _items(access_request)
    progress = order_progress(access_request, items)
    settled = all(p.settled for p in progress)
    context: dict[str, Any] = {
        "order": access_request,
        "progress": progress,
        "settled": settled,
    }
    if request.htmx:  # type: ignore[attr-defined] # django-htmx
        response = render(request, "orders/ordering/_progress.html", context)
        if settled:
            response.status_code = 286  # htmx stops polling
        return response
    admin = acting.can(*ADMINS)
    if admin and withdraw is None:
        withdraw = _withdraw_form(access_request)
    if admin and consent is None:
        consent = _consent_form(access_request)
    title = _("Order for %(kommune)s") % {"kommune": access_request.kommune.name}
    context.update(
        {
            "rows": [
                (
                    item,
                    item_label(item.service, item.access),
                    *decision_tag(item.status),
                    policy.reason_text(item.reason_code, item.reason_params),
                )
                for item in items
            ],
            "title": title,
            "client_url": client_url(acting, access_request.client),
            "withdraw": withdraw if withdraw is not None and withdraw.has_choices else None,
            "consent": consent if consent is not None and consent.has_choices else None,
            "crumbs": _crumbs(
                acting, (reverse("orders:order", args=[acting.orgnr, access_request.pk]), title)
            ),
        }
    )
    return render(request, "orders/ordering/order.html", context)


@organisation_page(kinds=VENDOR, roles=READERS)
def order(request: HttpRequest, acting: Acting, pk: Any) -> HttpResponse:
    """One order: each item's decision and reason, and "Is it working yet?" for its grants
    (the part htmx polls, answered 286 once nothing is left to wait for)."""
    return _order_page(request, acting, _order_of(request, acting, pk))


def _act_on_items(
    request: HttpRequest,
    acting: Acting,
    pk: Any,
    *,
    initiator: str,
    form_of: Callable[[AccessRequest, Any], ItemsForm],
    service: Callable[..., Any],
    done: Callable[[AccessRequest, list[AccessRequestItem]], str],
) -> HttpResponse:
    """Withdraw or consent to the chosen items of an order: the same steps for both. Only an
    order ``initiator`` placed; the service's refusal beside the items; on success ``done``'s
    message and back to the order, otherwise the order's page with the form and its errors
    (the form's prefix names the page's form it stands for)."""
    access_request = _order_of(request, acting, pk)
    if access_request.initiated_by != initiator:
        raise PermissionDenied
    form = form_of(access_request, request.POST)
    if form.is_valid():
        chosen = list(form.cleaned_data["items"])
        try:
            service(
                request=access_request,
                actor=person_of(request),
                item_ids=[item.pk for item in chosen],
            )
        except (ValidationError, Conflict) as exc:
            form.add_error("items", exc.message if isinstance(exc, Conflict) else exc)
        else:
            messages.success(request, done(access_request, chosen))
            return redirect("orders:order", acting.orgnr, access_request.pk)
    return _order_page(request, acting, access_request, **{str(form.prefix): form})


def _withdrawn(access_request: AccessRequest, chosen: list[AccessRequestItem]) -> str:
    return ngettext(
        "%(count)s item withdrawn. %(kommune)s no longer sees it as waiting.",
        "%(count)s items withdrawn. %(kommune)s no longer sees them as waiting.",
        len(chosen),
    ) % {"count": len(chosen), "kommune": access_request.kommune.name}


def _consented(access_request: AccessRequest, chosen: list[AccessRequestItem]) -> str:
    decided = Counter(
        AccessRequestItem.objects.filter(pk__in=[i.pk for i in chosen]).values_list(
            "status", flat=True
        )
    )
    return _(
        "You consented. %(approved)s of %(count)s are being set up now; the others "
        "say what they wait for."
    ) % {"approved": decided[ItemStatus.APPROVED], "count": len(chosen)}


@require_POST
@organisation_page(kinds=VENDOR, roles=ADMINS)
def order_withdraw(request: HttpRequest, acting: Acting, pk: Any) -> HttpResponse:
    """Take back items of the vendor's order that still wait."""
    return _act_on_items(
        request,
        acting,
        pk,
        initiator=AccessRequest.Initiator.VENDOR,
        form_of=_withdraw_form,
        service=services.access_request_withdraw,
        done=_withdrawn,
    )


@require_POST
@organisation_page(kinds=VENDOR, roles=ADMINS)
def order_consent(request: HttpRequest, acting: Acting, pk: Any) -> HttpResponse:
    """Consent to a kommune's order for one of the vendor's clients."""
    return _act_on_items(
        request,
        acting,
        pk,
        initiator=AccessRequest.Initiator.KOMMUNE,
        form_of=_consent_form,
        service=services.access_request_consent,
        done=_consented,
    )


# --- Try it: "How do I call it?" ----------------------------------------------------------------


@dataclass(frozen=True)
class TryIt:
    """The values and commands to get a token with private_key_jwt and call one grant."""

    key_file: str
    kid: str
    alg: str
    client_id: str
    token_endpoint: str
    audience: str
    scope: str
    url: str
    method: str
    service_codes: str
    body: str
    python: str
    curl: str


def key_file_name(key: ClientKey | None) -> str:
    """The file the scripts read the private key from (a variable at their top): the name the
    page's key generator downloads it as (``static/js/keygen.js``), ``<kid>.private-key.pem``."""
    return f"{key.kid}.private-key.pem" if key is not None else "private-key.pem"


def gateway_url(grant: Grant) -> str:
    """``{GATEWAY_URL}[/test]/{kommune orgnr}/fhir/{ResourceType}``: the route the gateway
    serves the grant on (the test environment's under /test)."""
    prefix = "/test" if grant.client.environment == Environment.TEST else ""
    return (
        f"{settings.GATEWAY_URL}{prefix}/{grant.kommune.orgnr}/fhir/{grant.service.resource_type}"
    )


def try_it(grant: Grant, key: ClientKey | None) -> TryIt:
    """The commands for one grant, filled in: the token endpoint and the audience the gateway
    checks (``GATEWAY_AUDIENCE``, asked for as the RFC 8707 resource), the grant's scope, and
    the client's client_id and key. A read is a GET of the type, a write a POST of it."""
    read = grant.access == Access.READ
    resource = grant.service.resource_type
    values = {
        "key_file": key_file_name(key),
        "kid": key.kid if key is not None else "",
        "alg": key.alg if key is not None else "RS256",
        "client_id": grant.client.client_id,
        "token_endpoint": settings.OIDC_OP_TOKEN_ENDPOINT,
        "audience": settings.GATEWAY_AUDIENCE,
        "scope": grant.scope,
        "url": gateway_url(grant),
        "service_codes": ",".join(grant.service_codes),
        "body": "" if read else json.dumps({"resourceType": resource}),
    }
    # String literals: JSON's are Python's too; the shell's are quoted by shlex.
    python_literals = {k: json.dumps(v) if v else "" for k, v in values.items()}
    shell_words = {k: shlex.quote(v) if v else "" for k, v in values.items()}
    if values["service_codes"]:
        shell_words["service_codes"] = shlex.quote(f"ServiceCodes: {values['service_codes']}")
    context = {
        "service": grant.service.name,
        "access": grant.get_access_display().lower(),
        "kommune": grant.kommune.name,
        "method": "get" if read else "post",
        "alg": values["alg"],
        "digest": {"RS256": "sha256", "RS384": "sha384", "RS512": "sha512"}.get(values["alg"]),
        "q": python_literals,
        "sh": shell_words,
    }
    return TryIt(
        method="GET" if read else "POST",
        python=render_to_string("orders/ordering/try_it.py.txt", context),
        curl=render_to_string("orders/ordering/try_it.sh.txt", context),
        **values,
    )


@organisation_page(kinds=VENDOR, roles=READERS)
def grant_try(request: HttpRequest, acting: Acting, pk: Any) -> HttpResponse:
    """The answer to "How do I call it?": for an active grant, the commands that get a token
    and call it."""
    grant = get_object_or_404(
        Grant.objects.visible_to(request.user)
        .filter(client__vendor=acting.organisation)
        .select_related("client", "kommune", "service"),
        pk=pk,
    )
    now = datetime.datetime.now(tz=datetime.UTC)
    keys = [key for key in grant.client.keys.order_by("-created_at", "kid") if key.is_valid(now)]
    title = _("How to call %(service)s for %(kommune)s") % {
        "service": grant.service.name,
        "kommune": grant.kommune.name,
    }
    ready = grant.status == GrantStatus.ACTIVE and bool(grant.client.client_id)
    order_item = grant.request_items.select_related("request").order_by("-decided_at").first()
    crumbs = _crumbs(acting)
    if order_item is not None:
        order_url = reverse("orders:order", args=[acting.orgnr, order_item.request_id])
        crumbs.append((order_url, _("Order for %(kommune)s") % {"kommune": grant.kommune.name}))
    crumbs.append((request.path, title))
    return render(
        request,
        "orders/ordering/try_it.html",
        {
            "grant": grant,
            "title": title,
            "ready": ready,
            "state": grant_tag(grant.status),
            "keys": keys,
            "try_it": try_it(grant, keys[0] if keys else None) if ready else None,
            "key_file": key_file_name(keys[0] if keys else None),
            "crumbs": crumbs,
        },
    )


urlpatterns: list[URLPattern] = [
    path("orders/", orders, name="orders"),
    path("orders/new/", order_new, name="order_new"),
    path("orders/new/send/", order_send, name="order_send"),
    path("orders/<uuid:pk>/", order, name="order"),
    path("orders/<uuid:pk>/withdraw/", order_withdraw, name="order_withdraw"),
    path("orders/<uuid:pk>/consent/", order_consent, name="order_consent"),
    path("orders/grants/<uuid:pk>/try/", grant_try, name="grant_try"),
]
