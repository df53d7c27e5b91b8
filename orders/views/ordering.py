"""Pages for a vendor: new order with a dry run of the policy, orders, live provisioning, try it."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
