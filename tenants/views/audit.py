"""Pages for NHN's auditors and operators: the audit trail."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
