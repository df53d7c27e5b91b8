"""NHN's EPJ transition register: when each kommune switches EPJ, whether it uses VKP, the path NHN
recommends, and the kommuner at risk of losing VKP functionality (``orders.transition``).

Kommune admins keep their own row up to date on their EHR switch page (``tenants:epj``, through
``tenants.services.kommune_epj_set``); this page reads every row, for NHN staff. The same rows,
filtered the same way, are the API's ``/api/v1/epj-register/`` and this page's CSV download.
"""

from __future__ import annotations

from collections import Counter

from django.core.paginator import Paginator
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils import timezone

from orders.forms.oversight import RegisterFilterForm
from orders.transition import (
    DEFAULT_SORT,
    SORTS,
    csv_records,
    register_kommuner,
    register_rows,
    rows_sorted,
)
from portal.exports import csv_streaming_response
from tenants.models import Organisation, Role
from tenants.pages import PAGE_SIZE, Acting, Listing, organisation_page
from tenants.transition import EpjPath, new_services_year

#: Kommuner at risk named at the top of the page; the filter shows them all.
RISK_LIST_ROWS = 10


@organisation_page(kinds=(Organisation.Kind.OPERATOR,), roles=(Role.NHN_OPERATOR, Role.NHN_AUDITOR))
def epj_register(request: HttpRequest, acting: Acting) -> HttpResponseBase:
    """The register, filtered, sorted and paged; ``?format=csv`` downloads the filtered rows."""
    form = RegisterFilterForm(request.GET or None)
    if form.is_bound:
        form.is_valid()  # the valid filters apply; the others say what is wrong beside them
    filters = form.filters()
    today = timezone.localdate()
    rows = register_rows(register_kommuner(request.user), on=today)
    sort = request.GET.get("sort", DEFAULT_SORT)
    if sort.removeprefix("-") not in SORTS:
        sort = DEFAULT_SORT
    shown = rows_sorted([row for row in rows if filters.keep(row)], sort)
    if request.GET.get("format") == "csv":
        return csv_streaming_response(
            csv_records(shown), filename=f"epj-register-{today.isoformat()}.csv"
        )

    at_risk = rows_sorted([row for row in rows if row.at_risk], "switch")
    paths = Counter(row.path for row in rows)
    return render(
        request,
        "orders/register/register.html",
        {
            "form": form,
            "filtered": any(request.GET.get(name) for name in form.fields),
            "listing": Listing(
                page_obj=Paginator(shown, PAGE_SIZE).get_page(request.GET.get("page")), sort=sort
            ),
            "total": len(rows),
            "switching": sum(1 for row in rows if row.switch_date is not None),
            "paths": [(path, paths[path]) for path in EpjPath],
            "at_risk": at_risk[:RISK_LIST_ROWS],
            "at_risk_count": len(at_risk),
            "vkp_unknown": sum(1 for row in rows if row.uses_vkp is None),
            "year": new_services_year(),
        },
    )


urlpatterns: list[URLPattern] = [path("epj-register/", epj_register, name="epj_register")]
