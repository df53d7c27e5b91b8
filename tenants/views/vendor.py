"""Pages for a vendor's admins and developers (products)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
