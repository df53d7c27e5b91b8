"""Issue 11, section 2: a vendor's word does not open write access.

NHN verifies a product's system type before it is used in production; delegations name service
and access (and the service codes the kommune allows); a change of a product's type or of a
kommune's EPJ re-evaluates the grants; a kommune's order for a vendor's client waits for the
vendor's consent."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from orders import services
from orders.models import (
    AccessRequestItem,
    Grant,
    GrantStatus,
    ItemStatus,
    ProvisioningJob,
)
from tenants import services as tenant_services
from tenants.models import Environment, Product
from tests.conftest import World
from tests.factories import (
    ClientFactory,
    DelegationFactory,
    ProductFactory,
    revoke_reason,
    vendor_order,
)
from tests.keys import jwks, rsa_public_jwk

pytestmark = pytest.mark.django_db


def as_(world: World, who: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(world.people[who])
    return client


def register_product(world: World, system_type: str, is_epic: bool = False) -> dict[str, Any]:
    response = as_(world, "vendor_admin").post(
        "/api/v1/products/",
        {
            "vendor": world.vendor.orgnr,
            "name": f"Declared {system_type}",
            "system_type": system_type,
            "is_epic": is_epic,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body: dict[str, Any] = response.json()
    return body


def register_client(world: World, product_id: str, environment: str) -> str:
    response = as_(world, "vendor_admin").post(
        "/api/v1/clients/",
        {
            "name": f"Client {environment}",
            "product": product_id,
            "environment": environment,
            "jwks": jwks(rsa_public_jwk()),
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    client_id: str = response.json()["id"]
    return client_id


def ask(world: World, client_id: str, *items: dict[str, Any], who: str = "vendor_admin") -> Any:
    response = as_(world, who).post(
        "/api/v1/access-requests/",
        {"client": client_id, "kommune": world.kommune.orgnr, "items": list(items)},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def delegate(world: World, *items: dict[str, Any]) -> Any:
    """Replace world's delegation (everything) by one with these items, through the API."""
    services.delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])
    response = as_(world, "kommune_admin").post(
        "/api/v1/delegations/",
        {"kommune": world.kommune.orgnr, "vendor": world.vendor.orgnr, "items": list(items)},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


# --- 1. NHN verifies a product's system type --------------------------------------------------


def test_a_vft_vendor_declaring_an_epj_is_not_granted_patient_write_on_its_word(
    world: World,
) -> None:
    product = register_product(world, "EPJ")
    client_id = register_client(world, product["id"], "production")

    body = ask(world, client_id, {"service": "patient", "access": "write"})

    [item] = body["items"]
    assert item["status"] != "approved", item
    assert not Grant.objects.filter(client_id=client_id, access="write").exists()


def test_an_unverified_product_waits_in_production_until_nhn_verifies_it(world: World) -> None:
    product = register_product(world, "VFT")
    assert product["verified_at"] is None
    client_id = register_client(world, product["id"], "production")

    body = ask(world, client_id, {"service": "patient", "access": "read"})

    [item] = body["items"]
    assert item["status"] == "awaiting_verification", item
    assert "NHN" in item["reason"]
    assert not Grant.objects.filter(client_id=client_id).exists()

    verified = as_(world, "nhn_operator").post(
        f"/api/v1/products/{product['id']}/verify/",
        {"system_type": "VFT", "is_epic": False},
        format="json",
    )

    assert verified.status_code == 200, verified.json()
    assert verified.json()["verified_system_type"] == "VFT"
    assert verified.json()["verified_at"] is not None
    item_row = AccessRequestItem.objects.get(pk=item["id"])
    assert item_row.status == ItemStatus.APPROVED
    assert item_row.grant is not None
    assert item_row.grant.status == GrantStatus.PENDING
    assert ProvisioningJob.objects.filter(client_id=client_id, status="pending").exists()
    assert AuditEvent.objects.filter(action="product.verified", object_id=product["id"]).exists()


def test_an_unverified_product_goes_through_in_the_test_environment(world: World) -> None:
    product = register_product(world, "VFT")
    client_id = register_client(world, product["id"], "test")

    body = ask(world, client_id, {"service": "patient", "access": "read"})

    assert body["items"][0]["status"] == "approved", body


def test_production_uses_the_type_nhn_verified_not_the_declared_one(world: World) -> None:
    product = register_product(world, "EPJ")
    client_id = register_client(world, product["id"], "production")
    as_(world, "nhn_operator").post(
        f"/api/v1/products/{product['id']}/verify/",
        {"system_type": "VFT", "is_epic": False},
        format="json",
    )

    body = ask(world, client_id, {"service": "patient", "access": "write"})

    assert body["items"][0]["status"] == "rejected", body
    assert "VFT" in body["items"][0]["reason"]


def test_a_vendor_changing_its_declared_type_asks_nhn_to_verify_again(world: World) -> None:
    verified_at = world.product.verified_at
    changed = as_(world, "vendor_admin").patch(
        f"/api/v1/products/{world.product.pk}/", {"system_type": "DHO"}, format="json"
    )

    assert changed.status_code == 200, changed.json()
    body = changed.json()
    assert (body["system_type"], body["verified_system_type"]) == ("DHO", "VFT")
    assert body["awaiting_verification"] is True
    world.product.refresh_from_db()
    assert world.product.verified_at == verified_at  # NHN's last word still counts
    assert world.product.system_type_in(Environment.PRODUCTION) == "VFT"
    assert AuditEvent.objects.filter(
        action="product.declared", object_id=str(world.product.pk)
    ).exists()

    verified = as_(world, "nhn_operator").post(
        f"/api/v1/products/{world.product.pk}/verify/",
        {"system_type": "DHO", "is_epic": False},
        format="json",
    )
    assert verified.json()["awaiting_verification"] is False


# --- 2. Delegations name service and access, and the codes the kommune allows ----------------


def test_a_read_delegation_does_not_cover_write(world: World) -> None:
    # A VFT may write journaling (the catalogue); the kommune delegated reading it only.
    delegate(world, {"service": "journaling", "access": "read"})

    body = ask(world, str(world.client.pk), {"service": "journaling", "access": "write"})

    assert body["items"][0]["status"] == "awaiting_kommune", body
    assert body["items"][0]["reason_code"] == "delegation_missing"


def test_a_delegation_shows_its_items_with_access_and_service_codes(world: World) -> None:
    created = delegate(
        world,
        {"service": "patient", "access": "read", "service_codes": ["RT", "TA"]},
        {"service": "journaling", "access": "write"},
    )

    shown = as_(world, "vendor_admin").get(f"/api/v1/delegations/{created['id']}/").json()

    assert shown["items"] == [
        {"service": "journaling", "access": "write", "service_codes": []},
        {"service": "patient", "access": "read", "service_codes": ["RT", "TA"]},
    ]


def test_the_grant_holds_the_codes_the_kommune_allowed_not_those_the_vendor_wrote(
    world: World,
) -> None:
    delegate(world, {"service": "patient", "access": "read", "service_codes": ["RT", "TA"]})

    body = ask(
        world,
        str(world.client.pk),
        {"service": "patient", "access": "read", "service_codes": ["RT", "GPS"]},
    )

    assert body["items"][0]["status"] == "approved", body
    grant = Grant.objects.get(pk=body["items"][0]["grant"])
    assert grant.service_codes == ["RT"]


def test_a_kommune_admin_sets_the_codes_when_approving(world: World) -> None:
    delegate(world, {"service": "journaling", "access": "read"})
    body = ask(
        world,
        str(world.client.pk),
        {"service": "patient", "access": "read", "service_codes": ["RT", "GPS", "MD"]},
    )
    item_id = body["items"][0]["id"]

    approved = as_(world, "kommune_admin").post(
        f"/api/v1/access-requests/{body['id']}/approve/",
        {"items": [item_id], "service_codes": {item_id: ["GPS", "MD"]}},
        format="json",
    )

    assert approved.status_code == 200, approved.json()
    grant = Grant.objects.get(pk=approved.json()["items"][0]["grant"])
    assert grant.service_codes == ["GPS", "MD"]


# --- 3. A change of type or EPJ re-evaluates the grants --------------------------------------


def epj_world(world: World) -> tuple[Product, Grant]:
    """World's vendor runs a verified EPJ product with a production patient.write grant."""
    product = ProductFactory(vendor=world.vendor, system_type=Product.SystemType.EPJ)
    client = ClientFactory(product=product)
    [grant] = vendor_order(
        client=client,
        kommune=world.kommune,
        actor=world.people["vendor_admin"],
        items="patient.write",
    )
    return product, grant


def test_nhn_verifying_a_product_as_vft_revokes_its_write_grants_with_the_reason(
    world: World,
) -> None:
    product, grant = epj_world(world)

    response = as_(world, "nhn_operator").post(
        f"/api/v1/products/{product.pk}/verify/",
        {"system_type": "VFT", "is_epic": False},
        format="json",
    )

    assert response.status_code == 200, response.json()
    grant.refresh_from_db()
    assert grant.status == GrantStatus.REVOKING
    assert "ikke lenger verifisert som EPJ" in revoke_reason(grant)  # bokmål first
    assert ProvisioningJob.objects.filter(client=grant.client, status="pending").exists()
    assert AuditEvent.objects.filter(action="grant.revoked", object_id=str(grant.pk)).exists()


def test_a_vendor_redeclaring_keeps_production_by_nhn_s_word_and_re_evaluates_test_grants(
    world: World,
) -> None:
    product, production = epj_world(world)
    [in_test] = vendor_order(
        client=ClientFactory(product=product, environment=Environment.TEST),
        kommune=world.kommune,
        actor=world.people["vendor_admin"],
        items="patient.write",
    )

    as_(world, "vendor_admin").patch(
        f"/api/v1/products/{product.pk}/", {"system_type": "VFT"}, format="json"
    )

    production.refresh_from_db()
    in_test.refresh_from_db()
    assert production.status == GrantStatus.PENDING  # NHN verified it as an EPJ
    assert in_test.status == GrantStatus.REVOKING  # the test environment goes by the declaration
    assert "ikke lenger oppgitt som EPJ" in revoke_reason(in_test)

    # NHN's verification of the new declaration re-evaluates production.
    as_(world, "nhn_operator").post(
        f"/api/v1/products/{product.pk}/verify/",
        {"system_type": "VFT", "is_epic": False},
        format="json",
    )
    production.refresh_from_db()
    assert production.status == GrantStatus.REVOKING


def test_the_epic_vendor_redeclaring_does_not_revoke_other_vendors_production_access(
    world: World,
) -> None:
    epic_vendor_admin = world.people["other_vendor_admin"]
    epic = ProductFactory(
        vendor=world.other_vendor, system_type=Product.SystemType.EPJ, is_epic=True
    )
    tenant_services.kommune_epj_set(kommune=world.kommune, product=epic)
    world.kommune.refresh_from_db()
    [grant] = world.vendor_grants("condition.read")

    for flag in (False, True):  # the Epic vendor toggles its declared flag, and back
        tenant_services.product_declare(product=epic, is_epic=flag, actor=epic_vendor_admin)

    grant.refresh_from_db()
    assert grant.status == GrantStatus.PENDING, revoke_reason(grant)


def test_a_kommune_leaving_epic_revokes_its_epic_only_grants(world: World) -> None:
    epic = ProductFactory(system_type=Product.SystemType.EPJ, is_epic=True)
    other_epj = ProductFactory(system_type=Product.SystemType.EPJ, is_epic=False)
    admin = as_(world, "kommune_admin")
    assert (
        admin.put(
            f"/api/v1/organizations/{world.kommune.orgnr}/epj/",
            {"epj_product": str(epic.pk)},
            format="json",
        ).status_code
        == 200
    )
    world.kommune.refresh_from_db()
    condition, patient = world.vendor_grants("condition.read,patient.read")

    response = admin.put(
        f"/api/v1/organizations/{world.kommune.orgnr}/epj/",
        {"epj_product": str(other_epj.pk)},
        format="json",
    )

    assert response.status_code == 200, response.json()
    condition.refresh_from_db()
    patient.refresh_from_db()
    assert condition.status == GrantStatus.REVOKING
    assert "bruker ikke lenger Epic" in revoke_reason(condition)
    assert patient.status == GrantStatus.PENDING  # any EPJ will do for patient


def test_nhn_finding_a_kommune_s_epj_is_not_epic_revokes_its_epic_only_grants(
    world: World,
) -> None:
    epic = ProductFactory(system_type=Product.SystemType.EPJ, is_epic=True)
    tenant_services.kommune_epj_set(kommune=world.kommune, product=epic)
    world.kommune.refresh_from_db()
    [grant] = world.vendor_grants("condition.read")

    response = as_(world, "nhn_operator").post(
        f"/api/v1/products/{epic.pk}/verify/", {"system_type": "EPJ", "is_epic": False}
    )

    assert response.status_code == 200, response.json()
    grant.refresh_from_db()
    assert grant.status == GrantStatus.REVOKING
    assert "bruker ikke lenger Epic" in revoke_reason(grant)


# --- 4. A kommune's order for a vendor's client waits for the vendor -------------------------


def test_a_kommune_initiated_order_waits_for_the_vendor_whose_admin_consents(
    world: World,
) -> None:
    body = ask(
        world,
        str(world.client.pk),
        {"service": "patient", "access": "read"},
        who="kommune_admin",
    )

    [item] = body["items"]
    assert body["initiated_by"] == "kommune"
    assert item["status"] == "awaiting_vendor", item
    assert world.vendor.name in item["reason"]
    assert not Grant.objects.filter(client=world.client).exists()

    consented = as_(world, "vendor_admin").post(
        f"/api/v1/access-requests/{body['id']}/consent/", {}, format="json"
    )

    assert consented.status_code == 200, consented.json()
    assert consented.json()["items"][0]["status"] == "approved"
    grant = Grant.objects.get(client=world.client)
    assert grant.status == GrantStatus.PENDING
    assert AuditEvent.objects.filter(
        action="access_request.vendor_consented", object_id=body["id"]
    ).exists()


def test_an_unverified_test_client_of_a_kommune_order_still_needs_the_vendor(
    world: World,
) -> None:
    client = ClientFactory(product=world.product, environment=Environment.TEST)
    DelegationFactory(kommune=world.kommune, vendor=world.vendor)

    body = ask(world, str(client.pk), {"service": "patient", "access": "read"}, who="kommune_admin")

    assert body["items"][0]["status"] == "awaiting_vendor", body


# --- Bad input: 400 with field errors, never a 500 --------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"system_type": "XYZ"}, "system_type"),
        ({}, "system_type"),
        ({"system_type": "VFT", "is_epic": True}, "is_epic"),
    ],
)
def test_a_bad_verification_is_a_field_error(
    world: World, body: dict[str, Any], field: str
) -> None:
    response = as_(world, "nhn_operator").post(
        f"/api/v1/products/{world.product.pk}/verify/", body, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [({"system_type": "XYZ"}, "system_type"), ({"is_epic": True}, "is_epic")],
)
def test_a_bad_declaration_is_a_field_error(world: World, body: dict[str, Any], field: str) -> None:
    response = as_(world, "vendor_admin").patch(
        f"/api/v1/products/{world.product.pk}/", body, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()
    world.product.refresh_from_db()
    assert world.product.is_verified


@pytest.mark.parametrize(
    "items",
    [
        [],
        [{"service": "nope", "access": "read"}],
        [{"service": "patient", "access": "admin"}],
        [{"service": "patient", "access": "read", "service_codes": ["XX"]}],
        [{"service": "patient", "access": "read"}, {"service": "patient", "access": "read"}],
        "patient",
    ],
)
def test_bad_delegation_items_are_a_field_error(world: World, items: Any) -> None:
    before = type(world.delegation).objects.count()
    response = as_(world, "kommune_admin").post(
        "/api/v1/delegations/",
        {"kommune": world.kommune.orgnr, "vendor": world.vendor.orgnr, "items": items},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "items" in response.json()
    assert type(world.delegation).objects.count() == before


@pytest.mark.parametrize(
    "codes",
    [
        lambda item_id: {item_id: ["GPS"]},  # not asked for
        lambda item_id: {"6a1c3c2e-0000-4000-8000-000000000000": ["RT"]},  # not an item of it
        lambda item_id: {item_id: ["XX"]},  # not a service code
        lambda item_id: ["RT"],  # not by item
    ],
)
def test_bad_service_codes_on_approval_are_a_field_error(world: World, codes: Any) -> None:
    world.delegation.items.all().delete()
    body = ask(
        world,
        str(world.client.pk),
        {"service": "patient", "access": "read", "service_codes": ["RT"]},
    )
    item_id = body["items"][0]["id"]

    response = as_(world, "kommune_admin").post(
        f"/api/v1/access-requests/{body['id']}/approve/",
        {"service_codes": codes(item_id)},
        format="json",
    )

    assert response.status_code == 400, response.content
    assert "service_codes" in response.json()
    assert AccessRequestItem.objects.get(pk=item_id).status == ItemStatus.AWAITING_KOMMUNE


def test_every_new_reason_and_status_reads_in_bokmal_and_english() -> None:
    from django.utils import translation

    from orders import policy

    params = {
        "product": "Trygghet Alarm",
        "allowed": "EPJ",
        "access": "skrive",
        "service": "patient",
        "kommune": "Oslo kommune",
        "epj": "Journal EPJ",
        "version": 2,
        "person": "Kari",
        "attempts": 5,
        "error": "timeout",
        "vendor": "Trygghet AS",
        "reason": "Avtalebrudd",
    }
    texts = [
        lambda code=code: str(policy.GRANT_REASONS[code]) % params for code in policy.GRANT_REASONS
    ]
    texts += [
        lambda: str(ItemStatus.AWAITING_VERIFICATION.label),
        lambda: str(ItemStatus.AWAITING_VENDOR.label),
        lambda: str(Product._meta.get_field("verified_system_type").verbose_name),
    ]
    for text in texts:
        with translation.override("nb"):
            norwegian = text()
        with translation.override("en"):
            english = text()
        assert norwegian
        assert norwegian != english, english


def test_who_verified_a_product_is_shown_by_name_to_nhn_staff_only(world: World) -> None:
    operator = world.people["nhn_operator"]
    verified = as_(world, "nhn_operator").post(
        f"/api/v1/products/{world.product.pk}/verify/",
        {"system_type": "VFT", "is_epic": False},
        format="json",
    )
    assert verified.json()["verified_by"] == operator.username

    for who in ("vendor_admin", "kommune_admin", "other_vendor_admin"):
        shown = as_(world, who).get(f"/api/v1/products/{world.product.pk}/").json()
        assert shown["verified_by"] == "NHN", (who, shown)
        listed = as_(world, who).get("/api/v1/products/").json()
        rows = listed["results"] if isinstance(listed, dict) else listed
        assert operator.username not in str(rows), who
    for who in ("nhn_operator", "nhn_auditor"):
        shown = as_(world, who).get(f"/api/v1/products/{world.product.pk}/").json()
        assert shown["verified_by"] == operator.username, who
