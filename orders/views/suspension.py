"""Pages for NHN's operators: suspending a vendor and lifting it."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
