"""People log in with OpenID Connect; their roles come from memberships, never from ``is_staff``."""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import SuspiciousOperation
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from tenants.models import OAuthClient, Profile
from tenants.services import memberships_bind, normalize_email, person_language_set

logger = logging.getLogger(__name__)


def identity_from_claims(claims: dict[str, Any]) -> str | None:
    """The value of the configured identity claim (``OIDC_IDENTITY_CLAIM``), normalised."""
    value = claims.get(settings.OIDC_IDENTITY_CLAIM)
    if not isinstance(value, str) or not value.strip():
        return None
    return normalize_email(value)


def identity_verified(claims: dict[str, Any]) -> bool:
    """The provider vouches for the identity: the claim ``OIDC_VERIFIED_CLAIM`` is true.

    A missing claim counts as unverified: an address anyone may type in must not reach the
    memberships invited for it.
    """
    value = claims.get(settings.OIDC_VERIFIED_CLAIM)
    return value is True or (isinstance(value, str) and value.lower() == "true")


def unverified_username(claims: dict[str, Any]) -> str:
    """The account of an unverified login: keyed by the provider's subject, never by the
    identity, so it can neither become a verified person's account nor be bound by an invitation
    (both match the username against the identity)."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        # verify_claims refuses such a login; every one would otherwise share one account.
        raise ValueError("a login without the sub claim has no account")
    return f"unverified:{hashlib.sha256(subject.encode()).hexdigest()[:40]}"


class MembershipOIDCBackend(OIDCAuthenticationBackend):
    """Matches a person by the identity claim and binds the memberships made for it.

    The Django username is the identity itself, so invitations made before a person's first
    login and those made after it find the same user. Only a verified identity is matched so;
    an unverified one logs in to an account of its own that holds no memberships.
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
        """The login names its subject (OpenID Connect requires ``sub`` in userinfo; unverified
        accounts are keyed by it) and the identity claim."""
        subject = claims.get("sub")
        return (
            bool(isinstance(subject, str) and subject) and identity_from_claims(claims) is not None
        )

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[User]:
        identity = identity_from_claims(claims)
        if identity is None:
            return User.objects.none()
        if not identity_verified(claims):
            return User.objects.filter(username=unverified_username(claims))
        return User.objects.filter(username=identity)

    def create_user(self, claims: dict[str, Any]) -> User:
        identity = identity_from_claims(claims)
        if identity is None:  # verify_claims ran first; this is a guard for the type checker
            raise SuspiciousOperation("login without the identity claim")
        username = identity if identity_verified(claims) else unverified_username(claims)
        user = User.objects.create_user(username, email=claims.get("email", ""))
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
        if identity is None:
            return user
        if not identity_verified(claims):
            # Says which claim was missing, never the claims or tokens themselves.
            logger.info(
                "login with an unverified identity (claim %s is not true): no invitation bound",
                settings.OIDC_VERIFIED_CLAIM,
            )
            request = getattr(self, "request", None)
            if request is not None:
                messages.warning(
                    request,
                    _(
                        "Your identity provider has not verified your e-mail address, so no "
                        "invitation was linked to your login. Verify the address with the "
                        "provider and log in again."
                    ),
                )
            return user
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


class LoginCallbackView(OIDCAuthenticationCallbackView):
    """Says in the page that a login failed, instead of silently landing on the front page."""

    def login_failure(self) -> HttpResponse:
        messages.error(self.request, _("The login did not succeed. Please try again."))
        response: HttpResponse = super().login_failure()
        return response

    def login_success(self) -> HttpResponse:
        """A person's first login keeps the language they see the portal in (their cookie or
        their browser's) as the language of their e-mails, until they choose another."""
        response: HttpResponse = super().login_success()
        user = self.request.user
        if isinstance(user, User) and not Profile.objects.filter(user=user).exists():
            language = translation.get_language() or settings.LANGUAGE_CODE
            if language in dict(settings.LANGUAGES):
                person_language_set(user=user, language=language)
        return response


#: How recent a login must be for a step that asks for a fresh one (signing an instruction).
FRESH_LOGIN_SECONDS = 300
#: How far the provider's clock may run ahead of ours.
CLOCK_SKEW_SECONDS = 60


class LoginRequestView(OIDCAuthenticationRequestView):
    """The login, with the portal's language passed on (``ui_locales``), so the provider's page
    speaks the language the person chose here rather than the browser's."""

    def get_extra_params(self, request: HttpRequest) -> dict[str, str]:
        params: dict[str, str] = super().get_extra_params(request)
        return {**params, "ui_locales": translation.get_language() or settings.LANGUAGE_CODE}

    def get(self, request: HttpRequest) -> HttpResponse:
        response: HttpResponse = super().get(request)
        # mozilla-django-oidc keeps any ``next`` on this host, absolute URLs too; the portal goes
        # back only to a path of its own, so nothing can bounce a person elsewhere after login.
        if not same_site_path(request.session.get("oidc_login_next")):
            request.session["oidc_login_next"] = None
        return response


def same_site_path(url: object) -> bool:
    """Whether ``url`` is a path of this site: it starts with one "/" and names no host or scheme
    (``//evil.example``, ``/\\evil.example``, ``https://…`` and ``javascript:`` are not)."""
    return (
        isinstance(url, str)
        and url.startswith("/")
        and not url.startswith(("//", "/\\"))
        and url_has_allowed_host_and_scheme(url, allowed_hosts=None)
    )


class FreshLoginRequestView(LoginRequestView):
    """A login that the provider must make anew, even while the person's session there lives:
    ``prompt=login`` asks it to show its login page again, and ``max_age`` makes it put
    ``auth_time`` (when the person last logged in there) into the ID token."""

    def get_extra_params(self, request: HttpRequest) -> dict[str, str]:
        params: dict[str, str] = super().get_extra_params(request)
        return {**params, "prompt": "login", "max_age": str(FRESH_LOGIN_SECONDS)}


def fresh_login_redirect(request: HttpRequest, *, then: str) -> HttpResponse:
    """Send the person to the provider for a fresh login, and back to ``then`` (a path of this
    site) afterwards."""
    view = FreshLoginRequestView()
    view.setup(request)
    response = view.get(request)
    request.session["oidc_login_next"] = then
    return response


def login_age(request: HttpRequest) -> float | None:
    """Seconds since the person last logged in at the provider: the ``auth_time`` of the ID
    token their session holds (verified by the backend when it came, and kept server-side).
    None when it is not known: no ID token (a session not made by the provider), or one without
    ``auth_time`` (the silent renewals do not ask for it), or a time in the future."""
    token = request.session.get("oidc_id_token")
    if not isinstance(token, str):
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    auth_time = claims.get("auth_time")
    if not isinstance(auth_time, int | float) or isinstance(auth_time, bool):
        return None
    age = time.time() - auth_time
    return max(age, 0.0) if age > -CLOCK_SKEW_SECONDS else None


def login_is_fresh(request: HttpRequest) -> bool:
    """The person logged in at the provider within the last ``FRESH_LOGIN_SECONDS``."""
    age = login_age(request)
    return age is not None and age <= FRESH_LOGIN_SECONDS


@functools.cache
def _jwks_client(url: str) -> jwt.PyJWKClient:
    # Keys are cached (and refetched for an unknown kid), so a request costs no call to the
    # provider.
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)


class AutomationTokenAuthentication(BaseAuthentication):
    """Bearer access tokens of automation clients for the portal's own API.

    Client-credentials tokens carry no person, so userinfo (mozilla-django-oidc's DRF class) cannot
    be used: the JWT is checked here against the provider's keys, issuer, audience and expiry, and
    the client acts through its service account, with the role an admin gave it.
    """

    def authenticate(self, request: Request) -> tuple[User, dict[str, Any]] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer":
            return None
        if len(header) != 2:
            raise AuthenticationFailed(_("Malformed bearer token."))
        token = header[1].decode("ascii", errors="replace")
        try:
            key = _jwks_client(settings.OIDC_OP_JWKS_ENDPOINT).get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256", "ES256"],
                audience=settings.PORTAL_API_AUDIENCE,
                issuer=settings.OIDC_OP_ISSUER,
                options={"require": ["exp", "iat", "client_id"]},
            )
        except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
            logger.info("API token refused: %s", type(exc).__name__)
            raise AuthenticationFailed(_("The access token is not valid.")) from None
        client = (
            OAuthClient.objects.filter(
                client_id=claims["client_id"],
                purpose=OAuthClient.Purpose.PORTAL_API,
                removed_at__isnull=True,
            )
            .select_related("service_user")
            .first()
        )
        account = client.service_user if client is not None else None
        if account is None or not account.is_active:
            raise AuthenticationFailed(_("The client is unknown or was removed."))
        return account, claims

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="tilgang"'


class AutomationTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """How the OpenAPI document describes automation clients' bearer tokens."""

    target_class = "tenants.auth.AutomationTokenAuthentication"
    name = "automationClientToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A client-credentials access token of an automation client "
            "(private_key_jwt at the authorization server, audience: the portal's API).",
        }
