"""The Content-Security-Policy in a real browser: on the key pages (the login, a kommune's start
page and approvals, a vendor's client with the key pair made by keygen.js, a new order with
ordering.js, the htmx-driven pages) Chromium blocks nothing and no script fails. Every other
browser test holds its pages to the same (``open_page``); this one walks the pages where script
and htmx do most."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from django.urls import reverse
from playwright.sync_api import Locator, Page, Route, expect

from tenants.models import Organisation
from tests.browser.helpers import csp_violations, forget_csp_violations, login

pytestmark = pytest.mark.integration


def heading(page: Page, name: str) -> Locator:
    return page.get_by_role("heading", name=name, level=1)


def test_the_key_pages_break_no_rule_of_the_policy(
    open_page: Callable[..., Page], demo_data: None
) -> None:
    oslo = Organisation.objects.get(name="Oslo kommune")
    trygghet = Organisation.objects.get(name="Trygghet AS")

    kommune = open_page()
    kommune.goto("/")
    login(kommune, "admin@oslo.example")  # the provider's login page too
    kommune.goto(reverse("orders:dashboard", args=[oslo.orgnr]))
    expect(kommune.get_by_role("main")).to_contain_text("Oslo kommune")
    kommune.goto(reverse("orders:approvals", args=[oslo.orgnr]))
    # A new delegation: the vendor field's suggestions come from htmx as one types.
    kommune.goto(reverse("orders:delegation_new", args=[oslo.orgnr]))
    kommune.get_by_label("Leverandør", exact=True).press_sequentially("Trygg")
    expect(kommune.locator("#vendor-options option")).to_have_attribute(
        "value", "Trygghet AS (910 000 012)"
    )

    vendor = open_page()
    login(vendor, "admin@trygghet.example")
    vendor.goto(reverse("orders:client_new", args=[trygghet.orgnr]))
    vendor.get_by_role("button", name="Lag nøkkelpar i nettleseren").click()  # keygen.js
    expect(vendor.get_by_role("link", name="Last ned privat nøkkel (PEM)")).to_be_visible()
    vendor.goto(reverse("orders:order_new", args=[trygghet.orgnr]))  # ordering.js
    expect(heading(vendor, "Ny bestilling")).to_be_visible()
    # Logging out is a form whose POST ends at the provider: form-action must allow it.
    vendor.get_by_role("button", name="Logg ut").click()
    expect(vendor).to_have_url(re.compile(r"/session/end"))

    assert csp_violations(kommune) == []
    assert csp_violations(vendor) == []


def test_a_violation_is_seen(open_page: Callable[..., Page], demo_data: None) -> None:
    """The recording above can fail: inline style and script slipped into a page the portal
    served (its headers kept) are reported."""
    page = open_page()

    def with_inline_code(route: Route) -> None:
        response = route.fetch()
        body = response.text().replace(
            "</main>", '<p style="color: red">x</p><script>document.title = "x"</script></main>'
        )
        route.fulfill(response=response, body=body)

    login(page, "admin@trygghet.example")
    page.route("**/services/", with_inline_code)  # not on redirects: hence after the login
    page.goto("/services/")
    expect(heading(page, "Tjenestekatalog")).to_be_visible()

    # The browser reports them as they happen: wait for both (or the deadline).
    deadline = time.monotonic() + 10
    while len(found := csp_violations(page)) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert any('"directive":"style-src-attr"' in line for line in found), found
    assert any('"directive":"script-src-elem"' in line for line in found), found
    # The fixture's own check would fail the test for what it was made to show.
    forget_csp_violations(page)


def test_the_api_documentation_runs_under_the_policy(page: Page) -> None:
    """Swagger UI (drf-spectacular's split view): its start-up script a file, its style too."""
    page.goto("/api/v1/docs/")
    expect(page.locator(".swagger-ui .info")).to_be_visible()
    expect(page.get_by_text("Tilgang API").first).to_be_visible()
    assert csp_violations(page) == []
