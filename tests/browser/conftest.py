"""Browser tests: Debian's Chromium driven by Playwright against the live portal, logging in
through the real local provider.

Fixtures:

- ``browser`` (package scope: once for all of tests/browser/): Chromium from
  ``/usr/bin/chromium`` (never a downloaded browser).
- ``live_portal``: the Django live server (pytest-django's session-scoped ``live_server``, static
  files served) with the portal's login pointed at the session's provider, whose redirect and
  post-logout URIs include the live server (tests/integration.py). Its database is the
  transactional test database with serialized rollback, so worker processes (``stack``) see what
  the test writes and the catalogue survives the test.
- ``demo_data``: ``manage.py seed_demo``, its demo people written where the provider's login page
  reads them.
- ``page``: a page in a browser context of its own (no cookies shared with other tests), with
  the live portal as ``base_url`` (``page.goto("/services/")``), bokmål by default.
- ``open_page``: more pages, each in a context of its own: one per person in a journey
  (keyword arguments go to the context: ``open_page(java_script_enabled=False)``). Whatever a
  page's Content-Security-Policy blocks, and any uncaught script error, fails the test when it
  ends (``record_csp_violations``).

Helpers in tests/browser/helpers.py: ``login``, ``provider_login`` (answers the provider's page
alone, e.g. the fresh login before a signature), ``set_language``, ``check_page``,
``check_in_both_languages``.

A journey with the provisioning stack (tests/provisioning/stack.py): the stack's provider is the
session's provider the live portal logs people in at, so one test drives both::

    pytestmark = pytest.mark.integration

    def test_the_journey(open_page, demo_data, stack):
        stack.start_worker()
        stack.start_close_worker()
        oslo = open_page()
        login(oslo, "admin@oslo.example")
        check_page(oslo)
        trygghet = open_page()
        login(trygghet, "admin@trygghet.example")
        ...  # register a client, order: the workers register it at the provider
        token = stack.access_token(client_id, private_key)  # client credentials there
        assert stack.call(f"/{orgnr}/fhir/Patient/1", token).status_code == 200  # HAProxy

The live server reads the same Django settings the stack sets (GATEWAY_URL, ...), so the pages
show the stack's gateway.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.browser.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DEFAULT_TIMEOUT_MS,
    LANGUAGE_HEADERS,
    csp_violations,
    record_csp_violations,
    track,
)
from tests.integration import Provider, live_server_url

ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


@dataclass(frozen=True)
class LivePortal:
    """The live server's address and the provider people log in at."""

    url: str
    provider: Provider


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver, for the tests of this package (they run one after the other).

    Its synchronous API keeps an asyncio loop running in this thread until it stops. Django
    reacts to a running loop twice: its ORM refuses to run unless told the caller is synchronous
    (it is: the loop only drives the browser between calls), and its database connections, kept
    per thread, are kept per context instead (asgiref's Local): new connection objects, which lack
    what the test database's setup put on the old ones (the serialized contents that restore the
    data migrations' rows after a transactional test). Those are handed over, the new
    connections closed at the end (the test database could not be dropped), and package scope
    keeps all of it to the browser tests.
    """
    from django.db import connections

    serialized = {
        alias: connections[alias]._test_serialized_contents
        for alias in connections
        if hasattr(connections[alias], "_test_serialized_contents")
    }
    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as driver:
            for alias, contents in serialized.items():
                connections[alias]._test_serialized_contents = contents
            try:
                yield driver
            finally:
                connections.close_all()
    finally:
        if previous is None:
            del os.environ[ASYNC_UNSAFE]
        else:
            os.environ[ASYNC_UNSAFE] = previous


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless; one for all the browser tests."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is not installed: run `make test`, which installs it")
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    # expect() waits this long for what a page should come to show (Playwright's default, 5 s,
    # is short on a busy machine); provisioning waits pass their own timeout.
    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    yield chromium
    chromium.close()


@pytest.fixture
def live_portal(
    live_server: Any,
    oidc_settings: Provider,
    settings: Any,
    django_db_serialized_rollback: None,
) -> LivePortal:
    """The live server, logging people in at the session's provider and back to itself."""
    url = live_server.url
    if url != live_server_url():
        pytest.fail(
            f"the live server listens on {url}, but the provider was told "
            f"{live_server_url()}: give --liveserver (or DJANGO_LIVE_TEST_SERVER_ADDRESS) "
            "as host:port"
        )
    # Where the provider sends people back after logging out (tenants.auth.provider_logout_url).
    settings.PORTAL_URL = url
    return LivePortal(url=url, provider=oidc_settings)


@pytest.fixture
def demo_data(live_portal: LivePortal) -> None:
    """The demo organisations and people; the provider's login page lists them."""
    call_command(
        "seed_demo", people_file=str(live_portal.provider.demo_people_file), stdout=io.StringIO()
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test, so ``open_page`` knows whether it failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def open_page(
    browser: Browser, live_portal: LivePortal, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., Page]]:
    """Open a page in a new browser context (its own cookies: its own person); keyword
    arguments go to the context (``open_page(java_script_enabled=False)``). When the test
    fails, each page's last screen is kept under the test's tmp_path."""
    pages: list[Page] = []

    def open_(**options: Any) -> Page:
        # No `locale`: Chromium would send it as Accept-Language whatever set_language says.
        context = browser.new_context(
            **{
                "base_url": live_portal.url,
                "viewport": {"width": 1280, "height": 800},
                "extra_http_headers": LANGUAGE_HEADERS["nb"],
                **options,
            }
        )
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        page = context.new_page()
        track(page, live_portal.url)
        record_csp_violations(page)
        pages.append(page)
        return page

    yield open_

    failed = getattr(request.node, "report_call", None)
    # Every browser test holds every page it opened to the Content-Security-Policy.
    blocked = [line for page in pages for line in csp_violations(page)]
    for number, page in enumerate(pages):
        if failed is not None and failed.failed:
            shot = tmp_path / f"failure-page-{number}.png"
            try:
                page.screenshot(path=shot, full_page=True)
                print(f"page {number} at {page.url}: {shot}")
            except Exception as exc:  # a debugging aid must not hide the failure
                print(f"page {number}: no screenshot ({exc})")
        page.context.close()
    assert not blocked, "the Content-Security-Policy blocked, or a script failed:\n" + "\n".join(
        blocked
    )


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Page:
    """A page of the live portal in a fresh browser context, in bokmål."""
    return open_page()
