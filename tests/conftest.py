from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import translation
from rest_framework.test import APIClient

from orders.models import AccessRequest, Delegation, Grant, Instruction
from tenants.models import OAuthClient, Organisation, Product, Role
from tests.components import free_port
from tests.factories import (
    ClientFactory,
    DelegationFactory,
    InstructionFactory,
    KommuneOrganisationFactory,
    MembershipFactory,
    OrganisationFactory,
    ProductFactory,
    order_place,
    vendor_order,
)
from tests.integration import (  # noqa: F401 - fixtures
    oidc_provider,
    oidc_settings,
    redis_server,
    start_worker,
)
from tests.provisioning.stack import stack  # noqa: F401 - fixture

# Secrets in logs and audit events: searched after each test and at the session's end.
pytest_plugins = ["tests.leaks"]


def pytest_configure(config: pytest.Config) -> None:
    """Fix the live server's address before anything starts: the session's OpenID provider,
    started by whichever test needs it first, must already accept the live portal's callback
    (the browser tests log in through it)."""
    address = config.getoption("liveserver", None) or os.environ.get(
        "DJANGO_LIVE_TEST_SERVER_ADDRESS", f"127.0.0.1:{free_port()}"
    )
    os.environ["DJANGO_LIVE_TEST_SERVER_ADDRESS"] = address


def pytest_sessionstart(session: pytest.Session) -> None:
    """The metric files of earlier runs' processes go (settings.PROMETHEUS_MULTIPROC_DIR), as
    `make run` empties the directory: /metrics reads every file there at each scrape. Tests
    compare a scrape before with one after, so this changes no test's outcome."""
    for stale in settings.PROMETHEUS_MULTIPROC_DIR.glob("*.db"):
        stale.unlink(missing_ok=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Nothing in this suite skips (README): a skip, from a marker or from ``pytest.skip``, is
    reported as a failure, so a missing component or database can never pass unseen. Expected
    failures (strict xfail) are not skips and stay as they are."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        why = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"{why}; but nothing in this suite may skip (see the README)"
    return report


@pytest.fixture
def postgresql() -> None:
    """For tests of what only a PostgreSQL server does: on another database they fail."""
    if connection.vendor != "postgresql":
        pytest.fail(f"needs PostgreSQL, not {connection.vendor}: `make test` runs the suite on it")


@pytest.fixture(autouse=True)
def _default_language() -> None:
    """Each test starts in the default language (bokmål): a request leaves the language its
    LocaleMiddleware chose active in the thread, which made tests depend on the order they ran in
    (``test_oidc_login.py`` then ``test_orgnr.py`` failed)."""
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _throttle_counts_start_at_zero() -> None:
    """The API throttles count in Django's cache (each process's memory in the suite): a new
    test database numbers people from 1 again, so counts left by an earlier test are dropped."""
    cache.clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def kommune(db: Any) -> Organisation:
    return KommuneOrganisationFactory()


@pytest.fixture
def vendor(db: Any) -> Organisation:
    return OrganisationFactory(kind=Organisation.Kind.VENDOR)


@pytest.fixture
def nhn(db: Any) -> Organisation:
    return OrganisationFactory(kind=Organisation.Kind.OPERATOR, name="Norsk helsenett SF")


@pytest.fixture
def other_kommune(db: Any) -> Organisation:
    return KommuneOrganisationFactory()


@pytest.fixture
def other_vendor(db: Any) -> Organisation:
    return OrganisationFactory(kind=Organisation.Kind.VENDOR)


@pytest.fixture
def people(
    kommune: Organisation,
    vendor: Organisation,
    nhn: Organisation,
    other_kommune: Organisation,
    other_vendor: Organisation,
) -> dict[str, Any]:
    return people_make(
        kommune=kommune,
        vendor=vendor,
        nhn=nhn,
        other_kommune=other_kommune,
        other_vendor=other_vendor,
    )


def people_make(
    *,
    kommune: Organisation,
    vendor: Organisation,
    nhn: Organisation,
    other_kommune: Organisation,
    other_vendor: Organisation,
) -> dict[str, Any]:
    """One person per kind of access; the 'other' ones administer organisations of their own."""
    return {
        "kommune_admin": MembershipFactory(organisation=kommune, role=Role.KOMMUNE_ADMIN).user,
        "kommune_reader": MembershipFactory(organisation=kommune, role=Role.KOMMUNE_READER).user,
        "other_kommune_admin": MembershipFactory(
            organisation=other_kommune, role=Role.KOMMUNE_ADMIN
        ).user,
        "vendor_admin": MembershipFactory(organisation=vendor, role=Role.VENDOR_ADMIN).user,
        "vendor_developer": MembershipFactory(organisation=vendor, role=Role.VENDOR_DEVELOPER).user,
        "other_vendor_admin": MembershipFactory(
            organisation=other_vendor, role=Role.VENDOR_ADMIN
        ).user,
        "nhn_operator": MembershipFactory(organisation=nhn, role=Role.NHN_OPERATOR).user,
        "nhn_auditor": MembershipFactory(organisation=nhn, role=Role.NHN_AUDITOR).user,
    }


def pytest_report_header(config: pytest.Config) -> list[str]:
    from django.conf import settings

    database = settings.DATABASES["default"]
    return [
        f"database: {database['ENGINE']} {database['NAME']}; broker: {settings.CELERY_BROKER_URL}"
    ]


@dataclass
class World:
    """A kommune and a VFT vendor ready to order: a signed instruction and a delegation covering
    every service, a production client with a public key; the other kommune and vendor have
    nothing to do with them."""

    kommune: Organisation
    vendor: Organisation
    other_kommune: Organisation
    other_vendor: Organisation
    product: Product
    client: OAuthClient
    other_client: OAuthClient
    instruction: Instruction
    delegation: Delegation
    people: dict[str, Any]

    def order(
        self,
        items: str = "patient.read",
        *,
        initiated_by: str = AccessRequest.Initiator.VENDOR,
        kommune: Organisation | None = None,
        service_codes: tuple[str, ...] = (),
    ) -> AccessRequest:
        """An order of the world's client, placed by the vendor's or the kommune's admin."""
        admin = (
            "vendor_admin" if initiated_by == AccessRequest.Initiator.VENDOR else "kommune_admin"
        )
        return order_place(
            client=self.client,
            kommune=kommune or self.kommune,
            actor=self.people[admin],
            items=items,
            initiated_by=initiated_by,
            service_codes=service_codes,
        )

    def vendor_grants(self, items: str) -> list[Grant]:
        """The grants of the vendor's order of ``items`` for the world's client and kommune."""
        return vendor_order(
            client=self.client, kommune=self.kommune, actor=self.people["vendor_admin"], items=items
        )


@pytest.fixture
def world(
    people: dict[str, Any],
    kommune: Organisation,
    vendor: Organisation,
    other_kommune: Organisation,
    other_vendor: Organisation,
) -> World:
    return world_make(
        people=people,
        kommune=kommune,
        vendor=vendor,
        other_kommune=other_kommune,
        other_vendor=other_vendor,
    )


def world_make(
    *,
    people: dict[str, Any],
    kommune: Organisation,
    vendor: Organisation,
    other_kommune: Organisation,
    other_vendor: Organisation,
) -> World:
    product = ProductFactory(vendor=vendor, system_type=Product.SystemType.VFT)
    return World(
        kommune=kommune,
        vendor=vendor,
        other_kommune=other_kommune,
        other_vendor=other_vendor,
        product=product,
        client=ClientFactory(product=product),
        other_client=ClientFactory(product=ProductFactory(vendor=other_vendor)),
        instruction=InstructionFactory(kommune=kommune),
        delegation=DelegationFactory(kommune=kommune, vendor=vendor),
        people=people,
    )
