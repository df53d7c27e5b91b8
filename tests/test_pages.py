"""The HTML pages: Norwegian bokmål first, English second, and the same scoping as the API."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tenants.models import Organisation

pytestmark = pytest.mark.django_db


def test_anonymous_visitors_are_offered_a_login_in_norwegian(client: Client) -> None:
    page = client.get("/")
    html = page.content.decode()
    assert page.status_code == 200
    assert '<html lang="nb"' in html
    assert "Logg inn" in html
    assert 'href="/oidc/authenticate/"' in html


def test_english_is_one_choice_away(client: Client) -> None:
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    html = client.get("/").content.decode()
    assert '<html lang="en"' in html
    assert "Log in" in html


def test_the_front_page_names_the_persons_organisations_and_roles(
    client: Client, people: dict[str, Any], kommune: Organisation, vendor: Organisation
) -> None:
    client.force_login(people["kommune_admin"])
    html = client.get("/").content.decode()
    assert kommune.name in html
    assert "Kommuneadministrator" in html
    assert vendor.name not in html


def test_the_catalogue_page_lists_the_nine_services_for_people_who_are_logged_in(
    client: Client, people: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    assert client.get("/services/").status_code == 302  # to the login
    client.force_login(people["vendor_admin"])

    with django_assert_max_num_queries(6):
        html = client.get("/services/").content.decode()

    assert html.count("nhn:ksp/") == 18
    assert "Besøksplan" in html
    assert "Kun Epic" in html


def test_the_pages_have_landmarks_a_skip_link_and_labelled_controls(client: Client) -> None:
    html = client.get("/").content.decode()
    assert 'href="#main"' in html
    assert '<main id="main"' in html
    assert '<nav class="site-nav" aria-label=' in html
    assert '<label for="language-select">' in html


def test_every_message_has_a_bokmal_translation() -> None:
    po = (Path(__file__).resolve().parents[1] / "locale/nb/LC_MESSAGES/django.po").read_text()
    entries = re.findall(r'\nmsgid ((?:".*"\n)+)msgstr ((?:".*"\n?)+)', po)
    assert len(entries) > 100
    untranslated = [
        msgid for msgid, msgstr in entries if msgstr.strip() == '""' and msgid != '""\n'
    ]
    assert untranslated == []
    assert "#, fuzzy" not in po
