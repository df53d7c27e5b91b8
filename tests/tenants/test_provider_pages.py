"""The local provider's own pages over HTTP (oidc/interactions.mjs, oidc/pages.mjs): the login page,
its languages and demo people, a fresh login on prompt=login, cancelling, an expired login, the
stylesheets and the policy it is sent with, and production without the demo people."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client

from tests.integration import Provider
from tests.tenants.test_oidc_login import login_at_provider

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

PERSON = {
    "email": "admin@oslo.example",
    "organisation": "Oslo kommune",
    "role": "kommune_admin",
    "role_label": {"nb": "Kommuneadministrator", "en": "Kommune administrator"},
}


@pytest.fixture
def demo_people(oidc_settings: Provider) -> Iterator[Path]:
    """A demo-people file of the test's own in the provider's place; gone afterwards."""
    file = oidc_settings.demo_people_file
    file.write_text(json.dumps({"people": [PERSON]}))
    yield file
    file.unlink(missing_ok=True)


def login_page(
    client: Client,
    provider: Provider,
    browser: requests.Session | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """Start a login at the portal and follow it to the provider's login page."""
    start = client.get("/oidc/authenticate/")
    assert start.status_code == 302
    browser = browser or requests.Session()
    page = browser.get(start["Location"], headers=headers or {}, timeout=5)
    assert page.status_code == 200, page.text[:300]
    assert re.search(r"/interaction/[\w-]+$", page.url), page.url
    return page


def back_at_portal(browser: requests.Session, provider: Provider, answer: requests.Response) -> str:
    """Follow the provider's redirects until one leads to the portal; return that URL."""
    for _ in range(5):
        assert answer.status_code in (302, 303), answer.text[:300]
        location = answer.headers["Location"]
        if location.startswith("http://testserver/"):
            return location
        if location.startswith("/"):
            location = provider.issuer + location
        answer = browser.get(location, allow_redirects=False, timeout=5)
    raise AssertionError("the provider never sent the person back to the portal")


def test_the_login_page_is_in_bokmal_with_the_demo_people_and_a_free_field(
    client: Client, oidc_settings: Provider, demo_people: Path
) -> None:
    page = login_page(client, oidc_settings)

    assert '<html lang="nb"' in page.text
    assert "<title>Logg inn · Tilgang</title>" in page.text
    assert 'name="login" value="admin@oslo.example"' in page.text
    assert "Oslo kommune" in page.text
    assert "Kommuneadministrator" in page.text
    assert '<label class="ds-label" for="login">E-postadresse</label>' in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert "script-src" not in page.headers["Content-Security-Policy"]  # no script at all
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("headers", "query", "language"),
    [
        ({"Accept-Language": "en-GB,en;q=0.9"}, "", "en"),
        ({"Accept-Language": "de, en;q=0.5, nb;q=0.8"}, "", "nb"),
        ({"Accept-Language": "nn-NO"}, "", "nb"),
        ({"Accept-Language": "fr"}, "", "nb"),
        ({"Accept-Language": "nb"}, "?ui_locales=en", "en"),
        ({"Accept-Language": "en"}, "?ui_locales=de%20nb", "nb"),
    ],
)
def test_the_page_follows_ui_locales_then_accept_language_then_bokmal(
    client: Client,
    oidc_settings: Provider,
    demo_people: Path,
    headers: dict[str, str],
    query: str,
    language: str,
) -> None:
    # The portal passes its own language on (ui_locales); it reads the same Accept-Language.
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = headers["Accept-Language"]
    browser = requests.Session()
    page = login_page(client, oidc_settings, browser)

    again = browser.get(f"{page.url}{query}", headers=headers, timeout=5)

    assert f'<html lang="{language}"' in again.text
    role = PERSON["role_label"][language]  # type: ignore[index]
    assert role in again.text
    assert ("Log in to Tilgang" in again.text) == (language == "en")


def test_everything_the_page_shows_from_the_demo_file_is_escaped(
    client: Client, oidc_settings: Provider
) -> None:
    hostile = '<script>alert("x")</script>'
    oidc_settings.demo_people_file.write_text(
        json.dumps(
            {"people": [{**PERSON, "email": f'a"b@x.example{hostile}', "organisation": hostile}]}
        )
    )
    try:
        page = login_page(client, oidc_settings)
    finally:
        oidc_settings.demo_people_file.unlink()

    assert "<script" not in page.text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page.text
    assert 'value="a&quot;b@x.example&lt;script&gt;' in page.text


def test_a_broken_demo_file_leaves_the_free_field(client: Client, oidc_settings: Provider) -> None:
    oidc_settings.demo_people_file.write_text("{not json")
    try:
        page = login_page(client, oidc_settings)
    finally:
        oidc_settings.demo_people_file.unlink()

    assert "Demopersoner" not in page.text
    assert 'id="login" name="login"' in page.text


def test_an_empty_login_is_refused_beside_the_field_and_in_a_summary(
    client: Client, oidc_settings: Provider
) -> None:
    browser = requests.Session()
    page = login_page(client, oidc_settings, browser)

    answer = browser.post(
        page.url,
        data={"prompt": "login", "login": "   ", "password": "x", "ui_locales": "en"},
        allow_redirects=False,
        timeout=5,
    )

    assert answer.status_code == 200
    assert "ds-error-summary" in answer.text
    assert 'id="login-error">Enter the e-mail address you want to log in as.</p>' in answer.text
    assert 'aria-invalid="true"' in answer.text
    # Nothing was decided: the same page logs in afterwards.
    done = browser.post(
        page.url, data={"login": "dev@vendor.example"}, allow_redirects=False, timeout=5
    )
    assert done.status_code == 303


def test_prompt_login_asks_a_logged_in_person_again_with_their_address_filled_in(
    client: Client, oidc_settings: Provider, settings: Any
) -> None:
    browser = requests.Session()
    callback = urlsplit(login_at_provider(client, oidc_settings, "admin@oslo.example", browser))
    client.get(f"{callback.path}?{callback.query}")
    settings.OIDC_AUTH_REQUEST_EXTRA_PARAMS = {"prompt": "login"}

    page = login_page(client, oidc_settings, browser)

    assert "Logg inn på nytt for å bekrefte at det er deg" in page.text
    assert 'value="admin@oslo.example"' in page.text
    answer = browser.post(
        page.url, data={"login": "admin@oslo.example"}, allow_redirects=False, timeout=5
    )
    back = urlsplit(back_at_portal(browser, oidc_settings, answer))
    assert back.path == "/oidc/callback/"
    assert "code" in parse_qs(back.query)


def test_without_prompt_login_a_logged_in_person_is_not_asked_again(
    client: Client, oidc_settings: Provider
) -> None:
    browser = requests.Session()
    login_at_provider(client, oidc_settings, "admin@oslo.example", browser)

    start = client.get("/oidc/authenticate/")
    answer = browser.get(start["Location"], timeout=5, allow_redirects=False)

    assert answer.status_code in (302, 303)
    assert answer.headers["Location"].startswith("http://testserver/oidc/callback/?code=")


def test_cancelling_sends_the_person_back_to_the_portal_with_access_denied(
    client: Client, oidc_settings: Provider
) -> None:
    browser = requests.Session()
    page = login_page(client, oidc_settings, browser)

    answer = browser.post(f"{page.url}/abort", allow_redirects=False, timeout=5)

    back = urlsplit(back_at_portal(browser, oidc_settings, answer))
    assert back.path == "/oidc/callback/"
    assert parse_qs(back.query)["error"] == ["access_denied"]


def test_a_login_page_opened_without_its_cookie_says_it_expired_and_leads_back(
    client: Client, oidc_settings: Provider
) -> None:
    page = login_page(client, oidc_settings)

    stranger = requests.get(page.url, headers={"Accept-Language": "en"}, timeout=5)

    assert stranger.status_code == 400
    assert "The login has expired" in stranger.text
    assert 'href="http://testserver/"' in stranger.text


def test_the_stylesheets_are_served_and_nothing_else(oidc_settings: Provider) -> None:
    for name in ("login.css", "designsystemet.css", "designsystemet-theme.css"):
        css = requests.get(f"{oidc_settings.issuer}/login-assets/{name}", timeout=5)
        assert css.status_code == 200, name
        assert css.headers["Content-Type"].startswith("text/css")
    for name in ("../provider.mjs", "..%2Fprovider.mjs", "jwks.json", ""):
        assert (
            requests.get(f"{oidc_settings.issuer}/login-assets/{name}", timeout=5).status_code
            == 404
        )


def test_the_logout_question_is_the_providers_own_page_in_the_language_asked(
    client: Client, oidc_settings: Provider
) -> None:
    browser = requests.Session()
    callback = urlsplit(login_at_provider(client, oidc_settings, "admin@oslo.example", browser))
    client.get(f"{callback.path}?{callback.query}")
    end_session = client.post("/oidc/logout/")["Location"]

    question = browser.get(end_session, headers={"Accept-Language": "en"}, timeout=5)

    assert "Do you want to log out of the login service too?" in question.text
    assert "<style" not in question.text
    assert 'form="op.logoutForm" name="logout" value="yes"' in question.text


@pytest.fixture
def production_provider(tmp_path: Path) -> Iterator[Provider]:
    """The provider as it runs with DJANGO_DEBUG off: every secret given."""
    provider = Provider(tmp_path, "initial-access-token-for-a-production-test")
    provider.env.update({"DJANGO_DEBUG": "0", "OIDC_COOKIE_KEY": "a-production-cookie-key"})
    provider.demo_people_file.write_text(json.dumps({"people": [PERSON]}))
    provider.start()
    try:
        yield provider
    finally:
        provider.close()


def test_in_production_the_login_page_lists_nobody(
    client: Client, production_provider: Provider, settings: Any
) -> None:
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{production_provider.issuer}/auth"

    page = login_page(client, production_provider)

    assert "admin@oslo.example" not in page.text
    assert "Demopersoner" not in page.text
    assert 'id="login" name="login"' in page.text
