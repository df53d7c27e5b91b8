"""The vendor's pages in a real browser (Debian's chromium): no WCAG 2.1 A/AA violation that
axe-core finds, in bokmål and English, and never wider than the window at 375 and 1280 px."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import sync_playwright

from orders.models import AccessRequest, GrantStatus
from tenants.models import ClientKey, Product
from tests.conftest import World
from tests.factories import GrantFactory, ProductFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

CHROMIUM = "/usr/bin/chromium"
AXE = Path(settings.BASE_DIR) / "node_modules/axe-core/axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
#: axe-core's violations of those rules, each with the HTML of the elements at fault.
AXE_RUN = """tags => axe.run(document, {
    runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]
}).then(r => r.violations.map(v => ({id: v.id, nodes: v.nodes.map(n => n.html)})))"""


def vendor_pages(world: World) -> list[str]:
    """Every page of a vendor, with something on it: failures, old keys, waiting items."""
    GrantFactory(client=world.client, kommune=world.kommune, status=GrantStatus.ACTIVE)
    GrantFactory(
        client=world.client,
        kommune=world.other_kommune,
        status=GrantStatus.FAILED,
        status_reason_code="gave_up",
        status_reason_params={"attempts": 5, "error": "invalid_client_metadata"},
    )
    ClientKey.objects.filter(client=world.client).update(
        created_at=timezone.now() - datetime.timedelta(days=400)
    )
    world.order("care-plan.read", initiated_by=AccessRequest.Initiator.KOMMUNE)
    ProductFactory(vendor=world.vendor, name="Journal", system_type=Product.SystemType.EPJ)
    orgnr, pk = world.vendor.orgnr, world.client.pk
    return [
        reverse("orders:dashboard", args=[orgnr]),
        reverse("tenants:products", args=[orgnr]),
        reverse("tenants:product_new", args=[orgnr]),
        reverse("tenants:product", args=[orgnr, world.product.pk]),
        reverse("orders:clients", args=[orgnr]),
        reverse("orders:client_new", args=[orgnr]),
        reverse("orders:client", args=[orgnr, pk]),
        reverse("orders:client_key_add", args=[orgnr, pk]),
        reverse("orders:client_remove", args=[orgnr, pk]),
    ]


def test_the_vendor_pages_pass_axe_and_fit_a_narrow_window(live_server: Any, world: World) -> None:
    paths = vendor_pages(world)
    session = Client()
    session.force_login(world.people["vendor_admin"])
    cookie = session.cookies[settings.SESSION_COOKIE_NAME].value
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        for language in ("nb", "en"):
            context = browser.new_context()
            context.add_cookies(
                [
                    {"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url},
                    {
                        "name": settings.LANGUAGE_COOKIE_NAME,
                        "value": language,
                        "url": live_server.url,
                    },
                ]
            )
            page = context.new_page()
            page.set_default_timeout(10_000)
            for path in paths:
                page.set_viewport_size({"width": 375, "height": 900})
                page.goto(live_server.url + path)
                for width in (375, 1280):
                    page.set_viewport_size({"width": width, "height": 900})
                    if page.evaluate("document.documentElement.scrollWidth > window.innerWidth"):
                        problems.append(f"{language} {width}px {path}: wider than the window")
                if page.evaluate("typeof axe") == "undefined":
                    page.add_script_tag(path=str(AXE))
                found = page.evaluate(AXE_RUN, WCAG_AA)
                problems += [f"{language} {path}: {json.dumps(v)}" for v in found]
            context.close()
        browser.close()

    assert "\n".join(problems) == ""
