"""HTML pages of the orders app: the catalogue, and each organisation's start page by its kind.

The pages of each kind of organisation are in their own module (``kommune``, ``vendor``, ``nhn``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from orders.models import Service
from orders.views import kommune, nhn, vendor
from tenants.models import Environment, Organisation
from tenants.pages import Acting, organisation_page


@login_required
def catalogue(request: HttpRequest) -> HttpResponse:
    """The service catalogue: scopes, who may read and write, availability per environment."""
    rows = [
        (service, [service.available_from(env) for env in Environment.values])
        for service in Service.objects.with_availability()
    ]
    return render(
        request,
        "orders/catalogue.html",
        {"rows": rows, "environments": Environment.choices},
    )


@organisation_page()
def dashboard(request: HttpRequest, acting: Acting) -> HttpResponse:
    """``/o/<orgnr>/``: the start page of a kommune, a vendor or NHN."""
    start: Callable[[HttpRequest, Acting], HttpResponse] = {
        Organisation.Kind.KOMMUNE: kommune.dashboard,
        Organisation.Kind.VENDOR: vendor.dashboard,
        Organisation.Kind.OPERATOR: nhn.dashboard,
    }[Organisation.Kind(acting.organisation.kind)]
    return start(request, acting)
