"""Response headers of the hardening (README, "Hardening"): the Content-Security-Policy, whose
form-action follows the OpenID provider the settings name, and the Permissions-Policy."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.middleware import PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase


def provider_origins() -> list[str]:
    """The origins a form's submission may end at besides the portal: logging out is a POST
    that the portal answers with a redirect to the provider's end-session endpoint, and a
    signature's fresh login a redirect to its authorization endpoint. Chromium applies
    form-action to such redirects too."""
    origins = []
    for url in (settings.OIDC_OP_AUTHORIZATION_ENDPOINT, settings.OIDC_OP_END_SESSION_ENDPOINT):
        parts = urlsplit(url)
        if parts.scheme and parts.netloc:
            origins.append(f"{parts.scheme}://{parts.netloc}")
    return list(dict.fromkeys(origins))


class CSPMiddleware(BaseCSPMiddleware):
    """django-csp's middleware with the provider's origins added to form-action at each
    response, so a provider set in the environment (or by a test) is the one allowed."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only:
            parts.update = {**(parts.update or {}), "form-action": provider_origins()}
        return parts


class PermissionsPolicyMiddleware:
    """Sends ``settings.PERMISSIONS_POLICY``: the browser features no page uses, turned off."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.PERMISSIONS_POLICY:
            response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response
