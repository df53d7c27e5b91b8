"""Sessions end when idle and at an absolute age, and are refreshed against the provider."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client

from tenants.sessions import LOGIN_AT
from tests.integration import Provider

pytestmark = pytest.mark.django_db


class Clock:
    """``time.time`` as the session code reads it, moved on by the test instead of waited for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = time.time()
        monkeypatch.setattr(time, "time", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def lifetimes(settings: Any) -> Any:
    settings.TILGANG_SESSION_IDLE_SECONDS = 100
    settings.TILGANG_SESSION_MAX_SECONDS = 250
    settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 10_000  # not what these tests are about
    return settings


def logged_in(client: Client) -> bool:
    page = client.get("/")
    assert page.status_code == 200, page
    return bool(page.context["user"].is_authenticated)


def test_a_session_idle_longer_than_the_idle_lifetime_is_logged_out(
    client: Client, people: dict[str, Any], lifetimes: Any, clock: Clock
) -> None:
    client.force_login(people["kommune_admin"])
    clock.advance(90)
    assert logged_in(client)

    clock.advance(101)

    assert not logged_in(client)


def test_activity_keeps_a_session_but_not_beyond_its_absolute_lifetime(
    client: Client, people: dict[str, Any], lifetimes: Any, clock: Clock
) -> None:
    client.force_login(people["kommune_admin"])
    alive = []
    for _ in range(4):  # a request every 90 s: never idle for 100 s
        clock.advance(90)
        alive.append(logged_in(client))

    assert alive == [True, True, False, False]  # 180 s < 250 s < 270 s


def test_the_session_ends_with_a_message_that_says_why(
    client: Client, people: dict[str, Any], lifetimes: Any, clock: Clock
) -> None:
    client.force_login(people["kommune_admin"])
    clock.advance(101)

    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en")

    assert not page.context["user"].is_authenticated
    assert "log in again" in page.content.decode()


# --- Refresh against the OpenID provider ---------------------------------------------------------


def provider_login(client: Client, provider: Provider, login: str) -> requests.Session:
    """Log in through the provider's pages; the returned browser holds the provider's session."""
    location = client.get("/oidc/authenticate/")["Location"]
    browser = requests.Session()
    for _ in range(10):
        if location.startswith("http://testserver/"):
            parts = urlsplit(location)
            assert client.get(f"{parts.path}?{parts.query}").status_code == 302
            return browser
        response = browser.get(location, allow_redirects=False, timeout=5)
        if response.status_code == 200 and 'name="login"' in response.text:
            response = browser.post(
                response.url,
                data={"prompt": "login", "login": login, "password": "any"},
                allow_redirects=False,
                timeout=5,
            )
        assert response.status_code in (302, 303), response.text[:500]
        location = response.headers["Location"]
        if location.startswith("/"):
            location = provider.issuer + location
    raise AssertionError("the provider never redirected back to the portal")


@pytest.mark.integration
def test_after_the_renewal_time_a_page_refreshes_the_login_silently_at_the_provider(
    client: Client, oidc_settings: Provider, settings: Any
) -> None:
    settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 0  # the login is due for renewal at once
    browser = provider_login(client, oidc_settings, "dev@vendor.example")
    settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 900
    logged_in_at = client.session[LOGIN_AT]

    page = client.get("/services/?x=1")

    assert page.status_code == 302
    refresh = page["Location"]
    assert refresh.startswith(f"{oidc_settings.issuer}/auth?")
    assert parse_qs(urlsplit(refresh).query)["prompt"] == ["none"]
    # The provider still knows the person: it answers with a code, no login page.
    answer = browser.get(refresh, allow_redirects=False, timeout=5)
    assert answer.status_code in (302, 303), answer.text[:300]
    callback = urlsplit(answer.headers["Location"])
    assert callback.path == "/oidc/callback/"
    assert "code" in parse_qs(callback.query)
    back = client.get(f"{callback.path}?{callback.query}")
    assert back.status_code == 302
    assert back["Location"] == "/services/?x=1"
    again = client.get("/services/?x=1")
    assert again.status_code == 200
    assert again.context["user"].username == "dev@vendor.example"
    assert client.session[LOGIN_AT] == logged_in_at  # a renewal is no new login


@pytest.mark.integration
def test_before_the_renewal_time_nothing_is_refreshed(
    client: Client, oidc_settings: Provider, settings: Any
) -> None:
    settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 900
    provider_login(client, oidc_settings, "dev@vendor.example")

    assert client.get("/services/").status_code == 200


def test_api_and_xhr_calls_due_for_renewal_get_403_with_the_refresh_url_not_a_redirect(
    client: Client, people: dict[str, Any], settings: Any
) -> None:
    settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 0
    client.force_login(people["kommune_admin"])

    api = client.get("/api/v1/organizations/")
    xhr = client.get("/services/", HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    htmx = client.get("/services/", HTTP_HX_REQUEST="true")

    for response in (api, xhr, htmx):
        assert response.status_code == 403
        assert response.json()["refresh_url"].startswith(settings.OIDC_OP_AUTHORIZATION_ENDPOINT)
    assert htmx["HX-Redirect"] == htmx.json()["refresh_url"]


def test_a_bearer_token_call_is_never_sent_to_the_provider(
    client: Client, people: dict[str, Any], settings: Any
) -> None:
    """Automation clients' tokens are checked locally; a session cookie beside one changes
    nothing."""
    settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 0
    client.force_login(people["kommune_admin"])

    response = client.get("/api/v1/organizations/", HTTP_AUTHORIZATION="Bearer not-a-token")

    assert response.status_code == 401
