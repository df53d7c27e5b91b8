"""Pages for NHN's operators and auditors: the provisioning jobs."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
