"""The page "who had access when": for NHN every kommune, for a kommune's admins and readers
their kommune, for a vendor's people its clients; with its CSV (``?format=csv``, the same
filters).

It asks what the API asks (``orders.history.access_history``) with the same form, narrowed to
the organisation the page acts for: a kommune's page never shows another kommune, a vendor's
page never another vendor's clients. Each row is one period of a grant, the half-open interval
from its activation until its revocation (or until its client's keys all expired).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _

from orders.forms.history import AccessHistoryForm, Choices
from orders.history import (
    HistoryQuery,
    access_history,
    csv_filename,
    csv_records,
    describe,
    revoke_reason,
)
from orders.models import GrantPeriod
from portal.exports import csv_streaming_response
from tenants.models import OAuthClient, Organisation, Role
from tenants.pages import Acting, listing, organisation_page
from tenants.templatetags.tilgang import orgnr as grouped

KOMMUNE, VENDOR = Organisation.Kind.KOMMUNE, Organisation.Kind.VENDOR

#: Everyone who reads an organisation's pages reads its history.
history_page = organisation_page(
    roles=(
        Role.KOMMUNE_ADMIN,
        Role.KOMMUNE_READER,
        Role.VENDOR_ADMIN,
        Role.VENDOR_DEVELOPER,
        Role.NHN_OPERATOR,
        Role.NHN_AUDITOR,
    )
)

SORTS: dict[str, str | tuple[str, ...]] = {
    "kommune": ("kommune__name", "started_at"),
    "vendor": ("vendor__name", "client__name", "started_at"),
    "client": ("client__name", "started_at"),
    "service": ("service__position", "access", "started_at"),
    "from": "started_at",
    "until": "ended_at",
}


def _organisations(rows: QuerySet[Any], field: str) -> list[tuple[str, str]]:
    """``(orgnr, "Name (orgnr)")`` of the organisations ``field`` names in ``rows``."""
    ids = rows.order_by().values(f"{field}_id").distinct()
    return [
        (number, f"{name} ({grouped(number)})")
        for number, name in Organisation.objects.filter(pk__in=ids)
        .order_by("name")
        .values_list("orgnr", "name")
    ]


def _clients(clients: QuerySet[OAuthClient], *, with_vendor: bool) -> Choices:
    rows = clients.order_by("name", "created_at").values_list(
        "pk", "name", "environment", "vendor__name"
    )
    return [
        (str(pk), f"{name} – {vendor}" if with_vendor else f"{name} ({environment})")
        for pk, name, environment, vendor in rows
    ]


def _form(request: HttpRequest, acting: Acting) -> AccessHistoryForm:
    """The filters of the page: what the page acts for is fixed; the choices are those of its
    own history (a kommune's vendors and clients, a vendor's kommuner and clients)."""
    organisation = acting.organisation
    data = request.GET  # bound even when empty: no filter asks who has access now
    if organisation.kind == KOMMUNE:
        own = GrantPeriod.objects.filter(kommune=organisation)
        return AccessHistoryForm(
            data,
            fixed="kommune",
            vendors=_organisations(own, "vendor"),
            clients=_clients(
                OAuthClient.objects.filter(pk__in=own.order_by().values("client_id")),
                with_vendor=True,
            ),
        )
    if organisation.kind == VENDOR:
        own = GrantPeriod.objects.filter(vendor=organisation)
        return AccessHistoryForm(
            data,
            fixed="vendor",
            kommuner=_organisations(own, "kommune"),
            clients=_clients(
                OAuthClient.objects.filter(vendor=organisation, purpose=OAuthClient.Purpose.FHIR),
                with_vendor=False,
            ),
        )
    # NHN: every kommune and vendor; a client by its id or client_id.
    everyone = Organisation.objects.order_by("name")
    return AccessHistoryForm(
        data,
        kommuner=[(o.orgnr, f"{o.name} ({grouped(o.orgnr)})") for o in everyone.kommuner()],
        vendors=[
            (o.orgnr, f"{o.name} ({grouped(o.orgnr)})")
            for o in everyone.filter(kind=Organisation.Kind.VENDOR)
        ],
    )


@dataclass(frozen=True)
class Row:
    period: GrantPeriod
    ended: str  # why it ended, in words; empty while it lasts


def _ended(period: GrantPeriod) -> str:
    if period.end == GrantPeriod.End.REVOKED:
        reason = revoke_reason(period)
        return f"{_('Revoked')}: {reason}" if reason else _("Revoked")
    return str(period.get_end_display()) if period.end else ""


def _scoped(query: HistoryQuery, acting: Acting) -> HistoryQuery:
    """The question, narrowed to the kommune or vendor the page acts for."""
    organisation = acting.organisation
    if organisation.kind == KOMMUNE:
        return replace(query, kommune_id=organisation.pk)
    if organisation.kind == VENDOR:
        return replace(query, vendor_id=organisation.pk)
    return query


@history_page
def history(request: HttpRequest, acting: Acting) -> HttpResponseBase:
    """Who had access when: at a moment (now, unless asked), or at some time in a period."""
    form = _form(request, acting)
    valid = form.is_valid()
    query = _scoped(form.query if valid else HistoryQuery(), acting)
    periods = access_history(user=request.user, query=query)
    if request.GET.get("format") == "csv":
        if not valid:  # the filters say what is wrong, on the page, with 400
            return _page(request, acting, form, query, periods.none(), status=400)
        scope = "" if acting.organisation.kind == Organisation.Kind.OPERATOR else acting.orgnr
        return csv_streaming_response(
            csv_records(periods.order_by("started_at", "pk")),
            filename=csv_filename(query, scope),
        )
    return _page(request, acting, form, query, periods if valid else periods.none())


def _page(
    request: HttpRequest,
    acting: Acting,
    form: AccessHistoryForm,
    query: HistoryQuery,
    periods: QuerySet[GrantPeriod],
    status: int = 200,
) -> HttpResponse:
    kind = acting.organisation.kind
    page = listing(request, periods, sorts=SORTS, default="-from")
    export = request.GET.copy()
    export["format"] = "csv"
    export.pop("page", None)
    return render(
        request,
        "orders/history/history.html",
        {
            "form": form,
            "listing": page,
            "rows": [Row(period, _ended(period)) for period in page.rows],
            "question": describe(query),
            "is_range": query.is_range,
            "filtered": any(request.GET.get(name) for name in form.fields),
            "show_kommune": kind != KOMMUNE,
            "show_vendor": kind != VENDOR,
            "export_query": export.urlencode(),
        },
        status=status,
    )


urlpatterns: list[URLPattern] = [path("access-history/", history, name="access_history")]
