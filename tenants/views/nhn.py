"""Pages for NHN's operators and auditors (organisations, product verification, audit trail)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
