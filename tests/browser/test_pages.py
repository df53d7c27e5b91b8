"""The portal's pages in Chromium, reached as people reach them (logging in through the real
provider), each holding to the rules in both languages: axe-core clean, no sideways scrolling at
375 and 1280 px, no inline script or style, "<page> · Tilgang"."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import check_in_both_languages, login, set_language

pytestmark = pytest.mark.integration


def test_the_start_page_of_someone_logged_out_offers_the_login(page: Page) -> None:
    check_in_both_languages(page, "/")

    set_language(page, "nb")
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Tilgang til NHNs informasjonstjenester"
    )
    page.get_by_role("main").get_by_role("link", name="Logg inn").click()
    expect(page.get_by_role("heading", name="Logg inn på Tilgang")).to_be_visible()


def test_the_start_page_of_a_kommune_admin_names_their_kommune(page: Page, demo_data: None) -> None:
    login(page, "admin@oslo.example")

    expect(page.get_by_role("heading", name="Mine organisasjoner", level=1)).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("Oslo kommune")
    check_in_both_languages(page, "/")


def test_the_catalogue_for_a_vendor(page: Page, demo_data: None) -> None:
    login(page, "admin@trygghet.example", next="/services/")

    expect(page.get_by_role("heading", name="Tjenestekatalog", level=1)).to_be_visible()
    check_in_both_languages(page, "/services/")
    expect(page.get_by_role("heading", name="Service catalogue", level=1)).to_be_visible()


def test_logging_out_ends_the_session_at_the_provider_and_returns_to_the_portal(
    page: Page, demo_data: None
) -> None:
    login(page, "drift@nhn.example")

    page.get_by_role("button", name="Logg ut").click()
    expect(
        page.get_by_role("heading", name="Vil du logge ut av innloggingstjenesten også?")
    ).to_be_visible()
    page.get_by_role("button", name="Ja, logg ut").click()

    expect(page.get_by_role("link", name="Logg inn").first).to_be_visible()
    # The provider forgot the person: the next login asks again.
    page.goto("/oidc/authenticate/")
    expect(page.get_by_role("heading", name="Logg inn på Tilgang")).to_be_visible()
