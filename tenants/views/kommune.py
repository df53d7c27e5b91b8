"""Pages for a kommune's admins (the EHR switch plan)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
