"""The login round trip against the real local provider (oidc-provider run by Node)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.conf import settings
from django.test import Client

from tenants.models import Membership
from tests.factories import MembershipFactory
from tests.integration import Provider

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def login_at_provider(
    client: Client,
    provider: Provider,
    login: str,
    browser: requests.Session | None = None,
    start_at: str = "/oidc/authenticate/",
) -> str:
    """Start at /oidc/authenticate/ (or ``start_at``, a page that sends the person there), sign
    in on the provider's pages (in ``browser``, which then holds the provider's session); return
    the callback URL."""
    start = client.get(start_at)
    assert start.status_code == 302
    location = start["Location"]
    assert location.startswith(f"{provider.issuer}/auth?")

    if browser is None:
        browser = requests.Session()
    for _ in range(10):
        if location.startswith("http://testserver/"):
            return location
        response = browser.get(location, allow_redirects=False, timeout=5)
        if response.status_code == 200 and 'name="login"' in response.text:
            # The provider's login page (oidc/interactions.mjs): any password, the login is the
            # e-mail; the form posts to the page's own address.
            action = response.url
            response = browser.post(
                action,
                data={"prompt": "login", "login": login, "password": "any"},
                allow_redirects=False,
                timeout=5,
            )
        assert response.status_code in (302, 303), response.text[:500]
        location = response.headers["Location"]
        if location.startswith("/"):
            location = provider.issuer + location
    raise AssertionError("the provider never redirected back to the portal")


def test_a_kommune_admin_logs_in_and_lands_on_a_page_naming_their_kommune(
    client: Client, oidc_settings: Provider, kommune: Any
) -> None:
    Membership.objects.create(
        organisation=kommune, email="admin@oslo.example", role="kommune_admin"
    )

    callback = login_at_provider(client, oidc_settings, "admin@oslo.example")
    parts = urlsplit(callback)
    assert "code" in parse_qs(parts.query)
    landed = client.get(f"{parts.path}?{parts.query}")

    assert landed.status_code == 302
    assert landed["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert kommune.name in page.content.decode()
    assert "admin@oslo.example" in page.content.decode()
    membership = Membership.objects.get(email="admin@oslo.example")
    assert membership.user is not None
    assert membership.user.username == "admin@oslo.example"


def test_logging_out_ends_the_portal_session_and_the_provider_session(
    client: Client, oidc_settings: Provider
) -> None:
    MembershipFactory(user=None, email="dev@vendor.example", role="vendor_developer")
    callback = login_at_provider(client, oidc_settings, "dev@vendor.example")
    parts = urlsplit(callback)
    client.get(f"{parts.path}?{parts.query}")
    assert client.get("/").context["user"].is_authenticated

    response = client.post("/oidc/logout/")

    assert response.status_code == 302
    end_session = response["Location"]
    assert end_session.startswith(f"{oidc_settings.issuer}/session/end?")
    assert "id_token_hint=" in end_session
    assert not client.get("/").context["user"].is_authenticated
    # The provider accepts the request (its sign-out confirmation page).
    confirm = requests.get(end_session, timeout=5)
    assert confirm.status_code == 200
    assert "logout" in confirm.text.lower()


def test_a_callback_with_a_forged_state_logs_nobody_in(
    client: Client, oidc_settings: Provider
) -> None:
    callback = login_at_provider(client, oidc_settings, "someone@example.test")
    parts = urlsplit(callback)
    query = parse_qs(parts.query)
    response = client.get(parts.path, {"code": query["code"][0], "state": "forged"})
    assert response.status_code in (302, 400)
    assert not client.get("/").context["user"].is_authenticated


def test_a_person_without_memberships_is_told_how_to_get_one(
    client: Client, oidc_settings: Provider
) -> None:
    callback = login_at_provider(client, oidc_settings, "nobody@example.test")
    parts = urlsplit(callback)
    client.get(f"{parts.path}?{parts.query}")
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.context["user"].username == "nobody@example.test"
    assert list(page.context["memberships"]) == []


def test_a_provider_refusing_the_code_is_a_readable_failure_not_a_server_error(
    client: Client, oidc_settings: Provider, settings: Any
) -> None:
    callback = login_at_provider(client, oidc_settings, "someone@example.test")
    settings.OIDC_RP_CLIENT_SECRET = "not-the-secret"  # noqa: S105
    parts = urlsplit(callback)

    response = client.get(f"{parts.path}?{parts.query}", follow=True, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert not response.context["user"].is_authenticated
    assert "The login did not succeed" in response.content.decode()


@pytest.mark.parametrize("language", ["nb", "en"])
def test_the_login_asks_the_provider_to_speak_the_language_chosen_in_the_portal(
    client: Client, oidc_settings: Provider, language: str
) -> None:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    start = client.get("/oidc/authenticate/")
    assert start.status_code == 302
    assert f"ui_locales={language}" in start["Location"]
    page = requests.get(start["Location"], timeout=5)
    assert f'lang="{language}"' in page.text
