"""Pages for a kommune's admins: the data-processing instruction (draft, sign, versions, print)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
