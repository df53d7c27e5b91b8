"""People log in with OpenID Connect; their roles come from memberships, never from ``is_staff``."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import SuspiciousOperation
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView

from tenants.services import memberships_bind, normalize_email

logger = logging.getLogger(__name__)


def identity_from_claims(claims: dict[str, Any]) -> str | None:
    """The value of the configured identity claim (``OIDC_IDENTITY_CLAIM``), normalised."""
    value = claims.get(settings.OIDC_IDENTITY_CLAIM)
    if not isinstance(value, str) or not value.strip():
        return None
    return normalize_email(value)


class MembershipOIDCBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    """Matches a person by the identity claim and binds the memberships made for it.

    The Django username is the identity itself, so invitations made before a person's first
    login and those made after it find the same user.
    """

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        try:
            user: User | None = super().authenticate(request, **kwargs)
        except requests.RequestException as exc:
            # The provider refused the code or did not answer: a failed login, not a server error.
            # The message names the endpoint and status only; tokens are never logged.
            logger.warning("login failed at the identity provider: %s", type(exc).__name__)
            return None
        return user

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return identity_from_claims(claims) is not None

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[User]:
        identity = identity_from_claims(claims)
        if identity is None:
            return User.objects.none()
        return User.objects.filter(username=identity)

    def create_user(self, claims: dict[str, Any]) -> User:
        identity = identity_from_claims(claims)
        if identity is None:  # verify_claims ran first; this is a guard for the type checker
            raise SuspiciousOperation("login without the identity claim")
        user = User.objects.create_user(identity, email=claims.get("email", ""))
        return self.update_user(user, claims)

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        """Keep the display name and e-mail in step with the provider, and bind new invitations."""
        changed = []
        for field, claim in (
            ("first_name", "given_name"),
            ("last_name", "family_name"),
            ("email", "email"),
        ):
            value = claims.get(claim)
            if isinstance(value, str) and value and getattr(user, field) != value[:150]:
                setattr(user, field, value[:150])
                changed.append(field)
        if changed:
            user.save(update_fields=changed)
        identity = identity_from_claims(claims)
        if identity is not None:
            memberships_bind(user=user, identity=identity)
        return user


def provider_logout_url(request: HttpRequest) -> str:
    """End the session at the provider too, so the next login can choose another person."""
    params = {
        "client_id": settings.OIDC_RP_CLIENT_ID,
        "post_logout_redirect_uri": f"{settings.PORTAL_URL}/",
    }
    if id_token := request.session.get("oidc_id_token"):
        params["id_token_hint"] = id_token
    return f"{settings.OIDC_OP_END_SESSION_ENDPOINT}?{urlencode(params)}"


class LoginCallbackView(OIDCAuthenticationCallbackView):  # type: ignore[misc]
    """Says in the page that a login failed, instead of silently landing on the front page."""

    def login_failure(self) -> HttpResponse:
        messages.error(self.request, _("The login did not succeed. Please try again."))
        response: HttpResponse = super().login_failure()
        return response
