"""HTML pages of the orders app."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from orders.models import Service
from tenants.models import Environment


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
