"""Typing helpers for requests whose user is known to be logged in."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from rest_framework.request import Request


class AuthenticatedHttpRequest(HttpRequest):
    """Annotation only: an ``HttpRequest`` behind ``login_required``."""

    user: User


class AuthenticatedRequest(Request):
    """Annotation only: a DRF ``Request`` behind ``IsAuthenticated``."""

    user: User
