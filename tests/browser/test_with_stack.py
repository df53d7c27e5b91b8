"""The browser tests and the provisioning stack together, as the full journey uses them: people
log in at the same provider that registers the vendor's client and issues its client-credentials
token for the real gateway, while real Celery workers provision what the test orders."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LivePortal
from tests.browser.helpers import login
from tests.provisioning.stack import Stack, wait_for
from tests.provisioning.test_provisioning import DEADLINE, Vendor, active, fhir

pytestmark = pytest.mark.integration


def test_a_person_in_the_browser_and_a_vendors_system_use_one_provider_and_one_stack(
    open_page: Callable[[], Page], live_portal: LivePortal, stack: Stack
) -> None:
    assert stack.provider is live_portal.provider
    stack.start_worker()
    vendor = Vendor()
    admin = vendor.admin.username

    page = open_page()
    login(page, admin)
    expect(page.get_by_role("main")).to_contain_text(vendor.vendor.name)

    [grant] = vendor.order("patient.read")
    wait_for(lambda: active(grant), timeout=DEADLINE, what="grant active")
    token = stack.access_token(vendor.client_id(), vendor.key)
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 200
    page.reload()
    expect(page.get_by_role("main")).to_contain_text(vendor.vendor.name)
