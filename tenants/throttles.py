"""Throttling per person and per automation client (README, "Hardening").

Each caller has a budget of reads (GET, HEAD, OPTIONS) and one of writes per period, set in
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (``TILGANG_THROTTLE_*``). A call past it is
answered 429 with ``Retry-After``. A person spends the same budget through the API (DRF's
throttles below) and through the pages (``PageThrottleMiddleware``). The count is a fixed window
in Django's cache, counted with the cache's atomic increment: Redis in production, so every web
process counts the same calls; DRF's own SimpleRateThrottle reads and writes a list of timestamps
instead, which concurrent processes overwrite (and which, at thousands of calls a minute, is a
large value per call).
Anonymous callers are refused by authentication before any throttle.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, cast

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from redis.exceptions import RedisError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from portal.http import is_api_path
from tenants.auth import AutomationTokenAuthentication

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
logger = logging.getLogger(__name__)


def parse_rate(rate: str) -> tuple[int, int]:
    """``"600/min"`` as (600, 60): DRF's rate format (the period's first letter counts)."""
    count, period = rate.split("/")
    return int(count), PERIODS[period.strip()[0]]


def _count(key: str, period: int) -> int:
    # add() starts the window's count; incr() is atomic in Redis and in locmem alike.
    cache.add(key, 0, timeout=period + 1)
    try:
        return int(cache.incr(key))
    except ValueError:  # the key expired between the two calls
        cache.add(key, 1, timeout=period + 1)
        return 1


def budget_spend(kind: str, method: str | None, identity: str) -> float | None:
    """Count one call of ``identity`` (a person's or a client's id) on its ``kind``'s read or
    write budget; None while within it, else the seconds until the window ends."""
    scope = f"{kind}_{'read' if method in SAFE_METHODS else 'write'}"
    allowed, period = parse_rate(str(api_settings.DEFAULT_THROTTLE_RATES[scope]))
    now = time.time()
    window = int(now // period)
    key = f"throttle:{scope}:{identity}:{window}"
    try:
        count = _count(key, period)
    except RedisError as exc:
        # The counts' Redis (the broker's, by default) is down: the call is served uncounted
        # rather than refused with a 500; orders still reach the outbox (make chaos).
        logger.warning("throttle %s not counted: %s", scope, exc)
        return None
    if count <= allowed:
        return None
    return (window + 1) * period - now


class _WindowThrottle(BaseThrottle):
    kind = ""

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def identity(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        identity = self.identity(request)
        if identity is None:
            return True
        self.retry_after = budget_spend(self.kind, request.method, identity)
        return self.retry_after is None

    def wait(self) -> float | None:
        return self.retry_after


class PersonThrottle(_WindowThrottle):
    """A person's calls through their browser session, counted per person."""

    kind = "person"

    def identity(self, request: Request) -> str | None:
        if not request.user.is_authenticated or _is_automation(request):
            return None
        return str(request.user.pk)


class AutomationClientThrottle(_WindowThrottle):
    """An automation client's calls with its bearer tokens, counted per client."""

    kind = "client"

    def identity(self, request: Request) -> str | None:
        if not _is_automation(request):
            return None
        claims = cast(dict[str, Any], request.auth)
        return str(claims["client_id"])


def _is_automation(request: Request) -> bool:
    return isinstance(request.successful_authenticator, AutomationTokenAuthentication)


class PageThrottleMiddleware:
    """A logged-in person's page requests spend their budget, as their API calls do (the API's
    own throttles count those: its paths are left to them). Past it, a page that says when to
    try again, with 429 and ``Retry-After``. Nobody logged in has pages to hammer but the login
    page, which only leads to the provider."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not is_api_path(request.path):
            retry_after = budget_spend("person", request.method, str(user.pk))
            if retry_after is not None:
                seconds = math.ceil(retry_after)
                response = render(
                    request,
                    "portal/bad_input.html",
                    {
                        "title": _("Too many requests"),
                        "message": _(
                            "You have sent more requests than Tilgang takes in a short time. "
                            "Nothing of what you sent last was saved. Try again in %(seconds)d "
                            "seconds."
                        )
                        % {"seconds": seconds},
                    },
                    status=429,
                )
                response["Retry-After"] = str(seconds)
                return response
        return self.get_response(request)
