"""How long a person's login lasts: an idle and an absolute lifetime, and the provider's say.

A session ends after ``TILGANG_SESSION_IDLE_SECONDS`` without a request and, however busy,
``TILGANG_SESSION_MAX_SECONDS`` after the login. Every ``OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS`` the
login is renewed at the OpenID provider (mozilla-django-oidc's ``SessionRefresh``, with
``prompt=none``), so a person the provider has logged out or disabled does not stay in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from mozilla_django_oidc.middleware import SessionRefresh

logger = logging.getLogger(__name__)

LOGIN_AT = "tilgang_login_at"
SEEN_AT = "tilgang_seen_at"
#: mozilla-django-oidc's session key: when the login is due for renewal at the provider.
RENEW_AT = "oidc_id_token_expiration"


def session_started(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """``user_logged_in``: the session's clocks start. The OIDC callback sets the renewal time
    again right after; it is set here too so that no login goes without one."""
    if request is None or not hasattr(request, "session"):
        return
    now = time.time()
    request.session[LOGIN_AT] = now
    request.session[SEEN_AT] = now
    request.session[RENEW_AT] = now + settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS


def _lifetime_passed(session: Any, now: float) -> str | None:
    """Which lifetime the session has outlived, if any; a session without its clocks has."""
    login_at, seen_at = session.get(LOGIN_AT), session.get(SEEN_AT)
    if (
        not isinstance(login_at, int | float)
        or now - login_at > settings.TILGANG_SESSION_MAX_SECONDS
    ):
        return "absolute"
    if (
        not isinstance(seen_at, int | float)
        or now - seen_at > settings.TILGANG_SESSION_IDLE_SECONDS
    ):
        return "idle"
    return None


class SessionLifetimeMiddleware:
    """Logs out a session that was idle too long or is older than its absolute lifetime."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            self._check(request)
        return self.get_response(request)

    def _check(self, request: HttpRequest) -> None:
        now = time.time()
        passed = _lifetime_passed(request.session, now)
        if passed is None:
            # The last-seen time is written at most every minute (a tenth of the idle lifetime
            # when that is shorter), not on every request: a session write per API call costs.
            idle = settings.TILGANG_SESSION_IDLE_SECONDS
            if now - request.session[SEEN_AT] >= min(60.0, idle / 10):
                request.session[SEEN_AT] = now
            return
        logout(request)
        messages.info(request, _("Your session has ended. Please log in again."))
        logger.info("session ended: its %s lifetime passed", passed)


class ProviderSessionRefresh(SessionRefresh):  # type: ignore[misc]
    """``SessionRefresh`` that sends only page loads to the provider.

    API calls with an automation client's bearer token are checked locally and never refreshed.
    API calls and htmx requests of a browser session cannot follow a redirect to the provider's
    pages: like XHR (which ``SessionRefresh`` already answers so), they get 403 with the
    ``refresh_url`` to open (htmx opens it itself, from ``HX-Redirect``).
    """

    def is_refreshable_url(self, request: HttpRequest) -> bool:
        if request.headers.get("Authorization", "").lower().startswith("bearer "):
            return False
        return bool(super().is_refreshable_url(request))

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        response: HttpResponse | None = super().process_request(request)
        if response is None or response.status_code != 302:
            return response
        htmx = bool(request.headers.get("HX-Request"))
        api = request.path.startswith("/api/") and "text/html" not in request.headers.get(
            "Accept", ""
        )
        if not (htmx or api):
            return response
        url = response["Location"]
        answer = JsonResponse(
            {"detail": _("Your login must be renewed. Open refresh_url."), "refresh_url": url},
            status=403,
        )
        answer["refresh_url"] = url
        if htmx:
            answer["HX-Redirect"] = url
        return answer
