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
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import BACKEND_SESSION_KEY, logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.middleware import SessionRefresh

from portal.http import is_api_path

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


#: Methods that change something: renewed at the provider like page loads, but answered with 403
#: (and a link for a page's form), since a redirect would drop what was sent.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Writes that change nothing of the portal's data, so they need no renewal first.
NO_RENEWAL_URLS = ("set_language",)


def _return_to(request: HttpRequest) -> str:
    """Where the renewal of a held-up write or htmx request leads back: the page it came from.

    Only a page of this portal (mozilla-django-oidc redirects to ``oidc_login_next`` unchecked),
    and never the request's own URL: a write's may not answer a GET, an htmx one is a fragment.
    """
    for candidate in (request.headers.get("HX-Current-URL"), request.headers.get("Referer")):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            parts = urlsplit(candidate)
            path = f"{parts.path or '/'}{'?' + parts.query if parts.query else ''}"
            # A path of this site can still read as another host on its own (`//evil.example`,
            # `/\evil.example`): checked again as the place it becomes.
            if url_has_allowed_host_and_scheme(path, allowed_hosts={request.get_host()}):
                return path
    return "/"


class ProviderSessionRefresh(SessionRefresh):
    """``SessionRefresh`` for page loads and writes alike, never for bearer tokens.

    API calls with an automation client's bearer token are checked locally and never refreshed.
    mozilla-django-oidc renews GETs only, so a person the provider had logged out kept writing
    until the session's absolute lifetime: writes due for renewal are refused here until it
    succeeds. API calls, XHR and htmx requests cannot follow a redirect to the provider's pages:
    they get 403 with the ``refresh_url`` to open (htmx opens it itself, from ``HX-Redirect``).
    A page's form gets a 403 page that says it was not sent and links the renewal.
    """

    def is_refreshable_url(self, request: HttpRequest) -> bool:
        """The upstream test (an OIDC login, not an exempt URL), for GETs and writes."""
        if request.headers.get("Authorization", "").lower().startswith("bearer "):
            return False
        if request.method != "GET" and request.method not in WRITE_METHODS:
            return False
        if request.path in {reverse(name) for name in NO_RENEWAL_URLS}:
            return False
        backend = request.session.get(BACKEND_SESSION_KEY)
        if backend and not issubclass(import_string(backend), OIDCAuthenticationBackend):
            return False
        return bool(
            request.user.is_authenticated
            and request.path not in self.exempt_urls
            and not any(pattern.match(request.path) for pattern in self.exempt_url_patterns)
        )

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        response: HttpResponse | None = super().process_request(request)
        if response is None or response.status_code not in (302, 403):
            return response
        # 302 to the provider, or upstream's own 403 for XHR; both carry the renewal URL.
        url = response["Location"] if response.status_code == 302 else response["refresh_url"]
        write = request.method in WRITE_METHODS
        htmx = bool(request.headers.get("HX-Request"))
        if write or htmx:
            request.session["oidc_login_next"] = _return_to(request)
        api = is_api_path(request.path) and "text/html" not in request.headers.get("Accept", "")
        if response.status_code == 403 or htmx or api:
            answer: HttpResponse = JsonResponse(
                {"detail": _("Your login must be renewed. Open refresh_url."), "refresh_url": url},
                status=403,
            )
            if htmx:
                answer["HX-Redirect"] = url
        elif write:
            answer = render(request, "tenants/login_renewal.html", {"refresh_url": url}, status=403)
        else:
            return response
        answer["refresh_url"] = url
        return answer
