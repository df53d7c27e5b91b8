"""Who may use the actions of issue 11, section 2: verifying a product, re-declaring it,
consenting to a kommune's order, approving with service codes, delegating items.

Products are visible to everyone logged in (a kommune picks its EPJ among them), so for them
nobody logged in is an outsider: those without the role get 403. Requests and delegations are
visible to the two sides and NHN only: the others get 404. Every refused call changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from orders import services
from orders.models import AccessRequest, Delegation, ItemStatus, Service
from tests.conftest import World

pytestmark = pytest.mark.django_db

ROLES = [
    "kommune_admin",
    "kommune_reader",
    "vendor_admin",
    "vendor_developer",
    "nhn_operator",
    "nhn_auditor",
    "other_kommune_admin",
    "other_vendor_admin",
    "anonymous",
]


def as_(world: World, who: str) -> APIClient:
    client = APIClient()
    if who != "anonymous":
        client.force_authenticate(world.people[who])
    return client


def expected(table: dict[str, int]) -> list[tuple[str, int]]:
    assert set(table) == set(ROLES)
    return list(table.items())


@pytest.mark.parametrize(
    ("who", "status"),
    expected(
        {
            "kommune_admin": 403,
            "kommune_reader": 403,
            "vendor_admin": 403,  # the vendor's word is what NHN checks
            "vendor_developer": 403,
            "nhn_operator": 200,
            "nhn_auditor": 403,
            "other_kommune_admin": 403,
            "other_vendor_admin": 403,
            "anonymous": 401,
        }
    ),
)
def test_only_an_nhn_operator_verifies_a_product(world: World, who: str, status: int) -> None:
    world.product.verified_at = None
    world.product.save(update_fields=["verified_at"])

    response = as_(world, who).post(
        f"/api/v1/products/{world.product.pk}/verify/",
        {"system_type": "VFT", "is_epic": False},
        format="json",
    )

    assert response.status_code == status, response.content
    world.product.refresh_from_db()
    assert world.product.is_verified is (status == 200)
    assert AuditEvent.objects.filter(action="product.verified").exists() is (status == 200)


@pytest.mark.parametrize(
    ("who", "status"),
    expected(
        {
            "kommune_admin": 403,
            "kommune_reader": 403,
            "vendor_admin": 200,
            "vendor_developer": 403,
            "nhn_operator": 403,  # NHN verifies; the declaration is the vendor's
            "nhn_auditor": 403,
            "other_kommune_admin": 403,
            "other_vendor_admin": 403,
            "anonymous": 401,
        }
    ),
)
def test_only_the_vendor_s_admin_re_declares_its_product(
    world: World, who: str, status: int
) -> None:
    response = as_(world, who).patch(
        f"/api/v1/products/{world.product.pk}/", {"system_type": "DHO"}, format="json"
    )

    assert response.status_code == status, response.content
    world.product.refresh_from_db()
    assert (world.product.system_type == "DHO") is (status == 200)
    assert world.product.awaiting_verification is (status == 200)


@pytest.fixture
def kommune_order(world: World) -> AccessRequest:
    request = world.order("patient.read", initiated_by=AccessRequest.Initiator.KOMMUNE)
    assert request.items.get().status == ItemStatus.AWAITING_VENDOR
    return request


@pytest.mark.parametrize(
    ("who", "status"),
    expected(
        {
            "kommune_admin": 403,  # the kommune cannot consent for its vendor
            "kommune_reader": 403,
            "vendor_admin": 200,
            "vendor_developer": 403,
            "nhn_operator": 403,
            "nhn_auditor": 403,
            "other_kommune_admin": 404,
            "other_vendor_admin": 404,
            "anonymous": 401,
        }
    ),
)
def test_only_the_client_s_vendor_admin_consents_to_a_kommune_s_order(
    world: World, kommune_order: AccessRequest, who: str, status: int
) -> None:
    response = as_(world, who).post(
        f"/api/v1/access-requests/{kommune_order.pk}/consent/", {}, format="json"
    )

    assert response.status_code == status, response.content
    item = kommune_order.items.get()
    assert (item.status == ItemStatus.APPROVED) is (status == 200)
    if status != 200:
        assert item.status == ItemStatus.AWAITING_VENDOR


def test_a_vendor_admin_cannot_consent_to_its_own_order(world: World) -> None:
    world.delegation.items.all().delete()
    request = world.order("patient.read")

    response = as_(world, "vendor_admin").post(
        f"/api/v1/access-requests/{request.pk}/consent/", {}, format="json"
    )

    assert response.status_code == 403
    assert request.items.get().status == ItemStatus.AWAITING_KOMMUNE


@pytest.mark.parametrize(
    ("who", "status"),
    expected(
        {
            "kommune_admin": 200,
            "kommune_reader": 403,
            "vendor_admin": 403,
            "vendor_developer": 403,
            "nhn_operator": 403,
            "nhn_auditor": 403,
            "other_kommune_admin": 404,
            "other_vendor_admin": 404,
            "anonymous": 401,
        }
    ),
)
def test_only_the_kommune_s_admin_approves_with_service_codes(
    world: World, who: str, status: int
) -> None:
    world.delegation.items.all().delete()
    [request] = services.access_request_create(
        client=world.client,
        kommuner=[world.kommune],
        items=[
            services.ItemInput(
                service=Service.objects.get(code="patient"),
                access="read",
                service_codes=("RT", "TA"),
            )
        ],
        initiated_by=AccessRequest.Initiator.VENDOR,
        actor=world.people["vendor_admin"],
    )
    item = request.items.get()

    response = as_(world, who).post(
        f"/api/v1/access-requests/{request.pk}/approve/",
        {"items": [str(item.pk)], "service_codes": {str(item.pk): ["TA"]}},
        format="json",
    )

    assert response.status_code == status, response.content
    item.refresh_from_db()
    assert (item.status == ItemStatus.APPROVED) is (status == 200)
    if status == 200:
        assert item.grant is not None
        assert item.grant.service_codes == ["TA"]


@pytest.mark.parametrize(
    ("who", "status"),
    expected(
        {
            "kommune_admin": 201,
            "kommune_reader": 403,
            "vendor_admin": 404,  # the kommune is not theirs to see
            "vendor_developer": 404,
            "nhn_operator": 403,
            "nhn_auditor": 403,
            "other_kommune_admin": 404,
            "other_vendor_admin": 404,
            "anonymous": 401,
        }
    ),
)
def test_only_the_kommune_s_admin_delegates_items(world: World, who: str, status: int) -> None:
    before = Delegation.objects.count()
    body: dict[str, Any] = {
        "kommune": world.kommune.orgnr,
        "vendor": world.vendor.orgnr,
        "items": [{"service": "patient", "access": "read", "service_codes": ["RT"]}],
    }

    response = as_(world, who).post("/api/v1/delegations/", body, format="json")

    assert response.status_code == status, response.content
    assert Delegation.objects.count() == before + (status == 201)
