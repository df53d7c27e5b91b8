"""The local provider's login page, in the browser: the demo people as one-click choices beside
the free login field, in bokmål and English, accessible, at 375 px."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    EMAIL_LABEL,
    check_page,
    login,
    person_button,
    set_language,
)

pytestmark = pytest.mark.integration


def open_login_page(page: Page) -> None:
    page.goto("/oidc/authenticate/")
    expect(page).to_have_url(re.compile(r"/interaction/"))


def test_the_login_page_lists_the_demo_people_with_organisation_and_role(
    page: Page, demo_data: None
) -> None:
    open_login_page(page)

    expect(page.get_by_role("heading", name="Logg inn på Tilgang", level=1)).to_be_visible()
    oslo = person_button(page, "admin@oslo.example")
    expect(oslo).to_have_accessible_name("admin@oslo.example Oslo kommune Kommuneadministrator")
    expect(person_button(page, "revisor@nhn.example")).to_contain_text("NHN-revisor")
    expect(person_button(page, "admin@trygghet.example")).to_contain_text("Trygghet AS")
    expect(page.get_by_label(EMAIL_LABEL)).to_be_editable()


def test_one_click_on_a_demo_person_logs_that_person_in(page: Page, demo_data: None) -> None:
    open_login_page(page)

    person_button(page, "admin@bergen.example").click()

    expect(page).to_have_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))
    expect(page.get_by_text("Bergen kommune")).to_be_visible()
    assert User.objects.filter(username="admin@bergen.example").exists()


def test_the_free_field_logs_in_any_address_and_an_empty_one_is_refused_beside_the_field(
    page: Page,
) -> None:
    open_login_page(page)
    page.get_by_role("button", name="Logg inn", exact=True).click()

    field = page.get_by_label(EMAIL_LABEL)
    expect(field).to_have_attribute("aria-invalid", "true")
    error = "Skriv inn e-postadressen du vil logge inn som."
    expect(page.get_by_role("link", name=error)).to_be_visible()  # the error summary
    check_page(page)

    field.fill("  Someone@Example.TEST ")
    page.get_by_label("Passord").fill("anything")
    page.get_by_role("button", name="Logg inn", exact=True).click()

    expect(page.get_by_role("heading", name="Mine organisasjoner")).to_be_visible()
    assert User.objects.filter(username="someone@example.test").exists()


def test_the_login_page_holds_to_the_rules_in_both_languages(page: Page, demo_data: None) -> None:
    # The portal passes the language chosen there on to the provider (ui_locales), so each
    # language starts its own login at the portal.
    for language in ("nb", "en"):
        set_language(page, language)
        open_login_page(page)
        expect(page.locator("html")).to_have_attribute("lang", language)
        check_page(page)

    expect(page.get_by_role("heading", name="Log in to Tilgang", level=1)).to_be_visible()
    expect(person_button(page, "admin@oslo.example")).to_contain_text("Kommune administrator")


def test_the_login_page_follows_ui_locales_and_offers_the_other_language(page: Page) -> None:
    open_login_page(page)
    page.goto(f"{page.url}?ui_locales=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    page.get_by_role("link", name="Norsk bokmål").click()

    expect(page.locator("html")).to_have_attribute("lang", "nb")
    expect(page.get_by_role("heading", name="Logg inn på Tilgang")).to_be_visible()


def test_logging_in_as_someone_already_logged_in_at_the_provider_skips_the_page(
    page: Page, demo_data: None
) -> None:
    login(page, "admin@oslo.example")
    page.context.clear_cookies(name="sessionid")

    login(page, "admin@oslo.example", next="/services/")

    expect(page.get_by_role("heading", name="Tjenestekatalog", level=1)).to_be_visible()


def test_prompt_login_asks_the_person_again_with_their_address_filled_in(
    page: Page, demo_data: None, settings: Any
) -> None:
    login(page, "admin@oslo.example")
    # As the portal will ask before a signature.
    settings.OIDC_AUTH_REQUEST_EXTRA_PARAMS = {"prompt": "login"}

    page.goto("/oidc/authenticate/?next=/services/")

    expect(page.get_by_text("Logg inn på nytt for å bekrefte at det er deg")).to_be_visible()
    expect(page.get_by_label(EMAIL_LABEL)).to_have_value("admin@oslo.example")
    check_page(page)
    page.get_by_role("button", name="Logg inn", exact=True).click()
    expect(page.get_by_role("heading", name="Tjenestekatalog", level=1)).to_be_visible()
