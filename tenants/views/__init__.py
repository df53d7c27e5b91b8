"""HTML pages of the tenants app. Thin: selectors read, templates show."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants.models import Membership


def home(request: HttpRequest) -> HttpResponse:
    """A logged-in person's organisations and roles; a login button for everyone else."""
    memberships = (
        Membership.objects.of_user(request.user)
        .select_related("organisation", "organisation__kommune")
        .order_by("organisation__name", "role")
    )
    return render(request, "tenants/home.html", {"memberships": memberships})
