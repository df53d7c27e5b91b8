"""Pages for every organisation's members: people, invitations and roles."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
