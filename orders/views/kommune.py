"""Pages for a kommune's admins and readers."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern

from tenants.pages import Acting

urlpatterns: list[URLPattern] = []


def dashboard(request: HttpRequest, acting: Acting) -> HttpResponse:
    """The start page: what they have, what waits for them, what to do next."""
    return render(request, "orders/kommune/dashboard.html", {})
