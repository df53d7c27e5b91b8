"""The data-access page: which vendor client called which service, how often and with what
answer, including the calls the gateway refused (Normen's question: who accessed what, when).

One page for every kind of organisation, each reading its own calls: a kommune the calls to it,
a vendor its clients' calls, NHN every kommune's. Two parts: the calls counted per client and
service over the period, and the calls themselves, newest first, paged by a cursor (the log
grows while it is read, and a page costs no COUNT). It reads through the same functions as the
API (``provisioning.data_access``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils import timezone

from orders.models import Service
from provisioning import data_access
from provisioning.forms import DataAccessFilterForm
from provisioning.models import DataAccessEntry
from tenants.models import OAuthClient, Organisation
from tenants.pages import Acting, organisation_page

#: Calls listed per page, and rows of the counts at most.
PAGE_SIZE = 50
USAGE_ROWS = 100
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def cursor_of(entry: DataAccessEntry) -> str:
    """The position of a call in the log: its time in microseconds and its id."""
    micros = (entry.occurred_at - EPOCH) // datetime.timedelta(microseconds=1)
    return f"{micros}.{entry.pk}"


def _cursor_parse(value: str) -> tuple[datetime.datetime, int] | None:
    """A cursor's time and id; None for anything else (a stale or edited link starts over)."""
    micros, _dot, pk = value.partition(".")
    if not (micros.isdigit() and pk.isdigit()) or len(micros) > 18 or len(pk) > 18:
        return None
    return EPOCH + datetime.timedelta(microseconds=int(micros)), int(pk)


@dataclass(frozen=True)
class Caller:
    """Who a client_id is, as far as the portal knows: its client and that client's vendor."""

    client_id: str
    client: OAuthClient | None


def _callers(client_ids: set[str]) -> dict[str, Caller]:
    known = {
        client.client_id: client
        for client in OAuthClient.objects.filter(client_id__in=client_ids - {""}).select_related(
            "vendor"
        )
    }
    return {client_id: Caller(client_id, known.get(client_id)) for client_id in client_ids}


def _acting_entries(acting: Acting, request: HttpRequest) -> QuerySet[DataAccessEntry]:
    """The calls this organisation's page shows, within what the person may read."""
    entries = DataAccessEntry.objects.visible_to(request.user)
    kind = acting.organisation.kind
    if kind == Organisation.Kind.KOMMUNE:
        return entries.filter(kommune=acting.orgnr)
    if kind == Organisation.Kind.VENDOR:
        clients = OAuthClient.objects.filter(vendor=acting.organisation).exclude(client_id="")
        return entries.filter(client_id__in=clients.order_by().values("client_id"))
    return entries  # NHN: visible_to gave its staff every call


@organisation_page()
def data_access_page(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Calls through the gateway: counted per client and service, then listed newest first."""
    services = list(Service.objects.order_by("position", "code"))
    kind = acting.organisation.kind
    by_kommune = kind != Organisation.Kind.KOMMUNE
    # NHN's page counts every kommune's calls: today's, unless it asks for more.
    default_days = 1 if kind == Organisation.Kind.OPERATOR else 30
    params = request.GET.copy()
    params.setdefault("days", str(default_days))
    form = DataAccessFilterForm(
        params if request.GET else None,
        services=services,
        by_kommune=by_kommune,
        initial={"days": default_days},
    )
    data: dict[str, Any] = {}
    if form.is_bound:
        form.is_valid()  # the valid filters apply; the others say what is wrong
        data = form.cleaned_data
    days: int = data.get("days") or default_days
    today = timezone.localdate()
    start = data_access.day_start(today - datetime.timedelta(days=days - 1))
    kommune: Organisation | None = data.get("kommune")
    client = data.get("client") or ""
    answer = data.get("answer") or ""
    entries = data_access.entries_filter(
        _acting_entries(acting, request),
        kommune=kommune.orgnr if kommune else "",
        client_ids=data_access.client_ids_named(client) if client else None,
        service=data.get("service") or "",
        start=start,
        refused={"refused": True, "passed": False}.get(answer),
    )

    counted = data_access.usage(entries, limit=USAGE_ROWS)
    older = _cursor_parse(request.GET.get("before", ""))
    listed = entries
    if older is not None:
        moment, pk = older
        listed = listed.filter(Q(occurred_at__lt=moment) | Q(occurred_at=moment, pk__lt=pk))
    page = list(listed.order_by("-occurred_at", "-pk")[: PAGE_SIZE + 1])
    has_older, page = len(page) > PAGE_SIZE, page[:PAGE_SIZE]

    callers = _callers({row.client_id for row in counted} | {row.client_id for row in page})
    names = {service.code: service.name for service in services}
    orgnrs = {row.kommune for row in counted} | {row.kommune for row in page}
    kommuner = {
        organisation.orgnr: organisation
        for organisation in Organisation.objects.filter(orgnr__in=orgnrs - {""})
    }
    return render(
        request,
        "provisioning/data_access.html",
        {
            "form": form,
            "filtered": any(request.GET.get(name) for name in form.fields if name != "days"),
            "days": days,
            "start": start,
            "kind": kind,
            "show_kommune": by_kommune,
            "usage": [
                (row, callers[row.client_id], names.get(row.service), kommuner.get(row.kommune))
                for row in counted
            ],
            "usage_full": len(counted) == USAGE_ROWS,
            "calls": [
                (row, callers[row.client_id], names.get(row.service), kommuner.get(row.kommune))
                for row in page
            ],
            "older": cursor_of(page[-1]) if page and has_older else None,
            "paged": older is not None,
            "retention_days": settings.DATA_ACCESS_RETENTION_DAYS,
        },
    )


urlpatterns: list[URLPattern] = [
    path("data-access/", data_access_page, name="data_access"),
]
