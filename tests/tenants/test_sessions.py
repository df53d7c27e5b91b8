"""Sessions end when idle and at an absolute age, and are refreshed against the provider."""

from __future__ import annotations

import html
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client

from tenants.models import Membership, Organisation, Role
from tenants.sessions import LOGIN_AT, RENEW_AT
from tests.factories import MembershipFactory
from tests.integration import Provider
from tests.tenants.test_oidc_login import login_at_provider

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
    browser = requests.Session()
    parts = urlsplit(login_at_provider(client, provider, login, browser))
    assert client.get(f"{parts.path}?{parts.query}").status_code == 302
    return browser


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


# --- Writes are renewed too (review S7) -----------------------------------------------------------


def _write(
    client: Client, method: str, url: str, body: dict[str, Any] | None, **headers: Any
) -> Any:
    data = json.dumps(body) if body is not None else ""
    return getattr(client, method)(url, data, content_type="application/json", **headers)


@pytest.mark.parametrize("method", ["post", "patch", "delete"])
def test_api_writes_due_for_renewal_get_403_with_the_refresh_url_and_change_nothing(
    client: Client, people: dict[str, Any], kommune: Organisation, settings: Any, method: str
) -> None:
    """mozilla-django-oidc renews GETs only: a person the provider logged out kept writing."""
    settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 0
    client.force_login(people["kommune_admin"])
    reader = Membership.objects.get(organisation=kommune, role=Role.KOMMUNE_READER)
    url, body = {
        "post": (
            "/api/v1/memberships/",
            {"organisation": kommune.orgnr, "email": "new@k.example", "role": "kommune_reader"},
        ),
        "patch": (f"/api/v1/memberships/{reader.pk}/", {"role": "kommune_admin"}),
        "delete": (f"/api/v1/memberships/{reader.pk}/", None),
    }[method]

    response = _write(client, method, url, body)

    assert response.status_code == 403, response.content
    assert response.json()["refresh_url"].startswith(settings.OIDC_OP_AUTHORIZATION_ENDPOINT)
    assert response["refresh_url"] == response.json()["refresh_url"]
    reader.refresh_from_db()
    assert reader.role == Role.KOMMUNE_READER
    assert not Membership.objects.filter(email="new@k.example").exists()


def test_htmx_and_xhr_writes_due_for_renewal_get_403_with_the_refresh_url(
    client: Client, people: dict[str, Any], settings: Any
) -> None:
    settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 0
    client.force_login(people["kommune_admin"])

    htmx = client.post(
        "/services/", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/services/"
    )
    # After the renewal the person is back on the page they were on, not on the write's URL.
    assert client.session["oidc_login_next"] == "/services/"
    xhr = client.post("/services/", HTTP_X_REQUESTED_WITH="XMLHttpRequest")

    for response in (htmx, xhr):
        assert response.status_code == 403, response.content
        assert response.json()["refresh_url"].startswith(settings.OIDC_OP_AUTHORIZATION_ENDPOINT)
    assert htmx["HX-Redirect"] == htmx.json()["refresh_url"]


def test_a_page_form_due_for_renewal_gets_a_page_that_says_it_was_not_sent_and_links_the_renewal(
    client: Client, people: dict[str, Any], settings: Any
) -> None:
    settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 0
    client.force_login(people["kommune_admin"])

    page = client.post(
        "/",
        {"field": "value"},
        HTTP_ACCEPT_LANGUAGE="en",
        HTTP_REFERER="http://testserver/services/?x=1",
    )

    assert page.status_code == 403
    assert page["Content-Type"].startswith("text/html")
    text = page.content.decode()
    assert "was not sent" in text
    refresh = page["refresh_url"]
    assert refresh.startswith(settings.OIDC_OP_AUTHORIZATION_ENDPOINT)
    assert f'href="{html.escape(refresh)}"' in text
    assert client.session["oidc_login_next"] == "/services/?x=1"


def test_a_page_form_from_another_site_does_not_choose_where_the_renewal_returns(
    client: Client, people: dict[str, Any], settings: Any
) -> None:
    settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 0
    client.force_login(people["kommune_admin"])

    page = client.post("/services/", HTTP_REFERER="https://evil.example/phish")

    assert page.status_code == 403
    assert client.session["oidc_login_next"] == "/"


@pytest.mark.parametrize("path", ["//evil.example/phish", "/\\evil.example/phish"])
def test_a_path_of_this_site_that_reads_as_another_host_is_no_place_to_return_to(
    client: Client, people: dict[str, Any], settings: Any, path: str
) -> None:
    settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 0
    client.force_login(people["kommune_admin"])

    page = client.post("/services/", HTTP_REFERER=f"http://testserver{path}")

    assert page.status_code == 403
    assert client.session["oidc_login_next"] == "/"


def test_writes_before_the_renewal_time_and_logging_out_are_not_held_up(
    client: Client, people: dict[str, Any], kommune: Organisation, settings: Any
) -> None:
    settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 900
    client.force_login(people["kommune_admin"])
    invited = _write(
        client,
        "post",
        "/api/v1/memberships/",
        {"organisation": kommune.orgnr, "email": "new@k.example", "role": "kommune_reader"},
    )
    settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 0
    client.force_login(people["kommune_admin"])
    language = client.post("/i18n/setlang/", {"language": "nb", "next": "/"})
    logout = client.post("/oidc/logout/")

    assert invited.status_code == 201, invited.content
    assert language.status_code == 302
    assert not language["Location"].startswith(settings.OIDC_OP_AUTHORIZATION_ENDPOINT)
    assert logout.status_code == 302


@pytest.mark.integration
def test_a_write_after_the_provider_ended_the_login_is_refused_and_the_renewal_logs_out(
    client: Client, oidc_settings: Provider, settings: Any, kommune: Organisation
) -> None:
    """The real path: a write due for renewal goes to the provider, which no longer knows the
    person (its session ended), so the portal's session ends too and the write never happens."""
    MembershipFactory(
        organisation=kommune, user=None, email="admin@k.example", role=Role.KOMMUNE_ADMIN
    )
    provider_login(client, oidc_settings, "admin@k.example")
    body = {"organisation": kommune.orgnr, "email": "new@k.example", "role": "kommune_reader"}
    session = client.session
    session[RENEW_AT] = 0  # due for renewal
    session.save()

    refused = _write(client, "post", "/api/v1/memberships/", body)

    assert refused.status_code == 403, refused.content
    refresh = refused.json()["refresh_url"]
    assert parse_qs(urlsplit(refresh).query)["prompt"] == ["none"]
    # A browser without the provider's session: as after a logout at the provider.
    answer = requests.get(refresh, allow_redirects=False, timeout=5)
    assert answer.status_code in (302, 303), answer.text[:300]
    callback = urlsplit(answer.headers["Location"])
    assert callback.path == "/oidc/callback/"
    assert parse_qs(callback.query)["error"] == ["login_required"]
    client.get(f"{callback.path}?{callback.query}")
    after = _write(client, "post", "/api/v1/memberships/", body)
    assert after.status_code in (401, 403)
    assert "refresh_url" not in after.json()  # logged out, not asked to renew again
    assert not Membership.objects.filter(email="new@k.example").exists()


@pytest.mark.integration
def test_a_write_due_for_renewal_goes_through_after_a_silent_renewal_at_the_provider(
    client: Client, oidc_settings: Provider, settings: Any, kommune: Organisation
) -> None:
    MembershipFactory(
        organisation=kommune, user=None, email="admin@k.example", role=Role.KOMMUNE_ADMIN
    )
    browser = provider_login(client, oidc_settings, "admin@k.example")
    body = {"organisation": kommune.orgnr, "email": "new@k.example", "role": "kommune_reader"}
    session = client.session
    session[RENEW_AT] = 0
    session.save()

    refused = _write(
        client, "post", "/api/v1/memberships/", body, HTTP_REFERER="http://testserver/services/"
    )
    answer = browser.get(refused.json()["refresh_url"], allow_redirects=False, timeout=5)
    callback = urlsplit(answer.headers["Location"])
    back = client.get(f"{callback.path}?{callback.query}")
    sent = _write(client, "post", "/api/v1/memberships/", body)

    assert refused.status_code == 403
    assert back.status_code == 302
    assert back["Location"] == "/services/"
    assert sent.status_code == 201, sent.content


def test_an_htmx_load_due_for_renewal_returns_to_the_page_not_to_the_fragment(
    client: Client, people: dict[str, Any], settings: Any
) -> None:
    """htmx opens the renewal in the whole window (HX-Redirect): coming back to the fragment's
    URL would show the fragment alone."""
    settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 0
    client.force_login(people["kommune_admin"])

    response = client.get(
        "/services/?fragment=1",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/?tab=1",
    )

    assert response.status_code == 403
    assert client.session["oidc_login_next"] == "/?tab=1"
