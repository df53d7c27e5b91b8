from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tenants.models import Organisation, Role
from tests.factories import KommuneOrganisationFactory, MembershipFactory, OrganisationFactory
from tests.integration import (  # noqa: F401 - fixtures
    oidc_provider,
    oidc_settings,
    redis_server,
    start_worker,
)


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
def people(kommune: Organisation, vendor: Organisation, nhn: Organisation) -> dict[str, Any]:
    """One person per kind of access; the 'other' ones administer organisations of their own."""
    return {
        "kommune_admin": MembershipFactory(organisation=kommune, role=Role.KOMMUNE_ADMIN).user,
        "kommune_reader": MembershipFactory(organisation=kommune, role=Role.KOMMUNE_READER).user,
        "other_kommune_admin": MembershipFactory(
            organisation=KommuneOrganisationFactory(), role=Role.KOMMUNE_ADMIN
        ).user,
        "vendor_admin": MembershipFactory(organisation=vendor, role=Role.VENDOR_ADMIN).user,
        "vendor_developer": MembershipFactory(organisation=vendor, role=Role.VENDOR_DEVELOPER).user,
        "other_vendor_admin": MembershipFactory(role=Role.VENDOR_ADMIN).user,
        "nhn_operator": MembershipFactory(organisation=nhn, role=Role.NHN_OPERATOR).user,
        "nhn_auditor": MembershipFactory(organisation=nhn, role=Role.NHN_AUDITOR).user,
    }


def pytest_report_header(config: pytest.Config) -> list[str]:
    from django.conf import settings

    database = settings.DATABASES["default"]
    return [
        f"database: {database['ENGINE']} {database['NAME']}; broker: {settings.CELERY_BROKER_URL}"
    ]
