"""An organisation's admins rotate and remove its own automation clients (the portal's API)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from orders import services
from tenants.models import ClientKey, Membership, OAuthClient, Organisation, Role
from tests.keys import rsa_public_jwk

pytestmark = pytest.mark.django_db


def as_(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def automation_client(admin: Any, organisation: Organisation, role: str) -> OAuthClient:
    response = as_(admin).post(
        "/api/v1/clients/",
        {
            "name": "Pipeline",
            "purpose": "portal_api",
            "organisation": organisation.orgnr,
            "role": role,
            "jwks": {"keys": [rsa_public_jwk("pipeline-1")]},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return OAuthClient.objects.get(pk=response.json()["id"])


ROTATE_KOMMUNE = [
    ("kommune_admin", 200),
    ("kommune_reader", 403),
    ("other_kommune_admin", 404),
    ("vendor_admin", 404),
    ("nhn_auditor", 403),
]


@pytest.mark.parametrize(("who", "expected"), ROTATE_KOMMUNE)
def test_a_kommune_admin_rotates_the_kommunes_automation_client(
    people: dict[str, Any], kommune: Organisation, who: str, expected: int
) -> None:
    client = automation_client(people["kommune_admin"], kommune, "kommune_reader")

    response = as_(people[who]).put(
        f"/api/v1/clients/{client.pk}/jwks/",
        {"keys": [rsa_public_jwk("pipeline-2")]},
        format="json",
    )

    assert response.status_code == expected, response.json()
    kids = set(ClientKey.objects.filter(client=client).values_list("kid", flat=True))
    assert kids == ({"pipeline-2"} if expected == 200 else {"pipeline-1"})


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("kommune_admin", 204),
        ("kommune_reader", 403),
        ("other_kommune_admin", 404),
        ("vendor_admin", 404),
        ("nhn_auditor", 403),
    ],
)
def test_a_kommune_admin_removes_the_kommunes_automation_client(
    people: dict[str, Any], kommune: Organisation, who: str, expected: int
) -> None:
    client = automation_client(people["kommune_admin"], kommune, "kommune_reader")

    response = as_(people[who]).delete(f"/api/v1/clients/{client.pk}/")

    assert response.status_code == expected
    client.refresh_from_db()
    assert (client.removed_at is not None) is (expected == 204)
    assert Membership.objects.filter(user=client.service_user).exists() is (expected != 204)


def test_a_vendor_developer_cannot_take_over_the_vendors_admin_automation_client(
    people: dict[str, Any], vendor: Organisation
) -> None:
    """New keys would let the developer act with the client's role, above their own."""
    client = automation_client(people["vendor_admin"], vendor, "vendor_admin")

    rotated = as_(people["vendor_developer"]).put(
        f"/api/v1/clients/{client.pk}/jwks/",
        {"keys": [rsa_public_jwk("mine")]},
        format="json",
    )
    by_admin = as_(people["vendor_admin"]).put(
        f"/api/v1/clients/{client.pk}/jwks/",
        {"keys": [rsa_public_jwk("pipeline-2")]},
        format="json",
    )

    assert (rotated.status_code, by_admin.status_code) == (403, 200)


def test_registering_an_automation_client_audits_its_membership(
    people: dict[str, Any], kommune: Organisation
) -> None:
    client = automation_client(people["kommune_admin"], kommune, "kommune_reader")
    membership = Membership.objects.get(user=client.service_user)

    event = AuditEvent.objects.get(object_id=str(membership.pk))
    assert event.action == "membership.created"
    assert event.after["role"] == Role.KOMMUNE_READER
    assert event.after["client"] == str(client.pk)
    assert event.actor_id == people["kommune_admin"].pk


def test_removing_an_automation_client_audits_the_membership_it_loses(
    people: dict[str, Any], kommune: Organisation
) -> None:
    client = automation_client(people["kommune_admin"], kommune, "kommune_reader")
    membership_id = str(Membership.objects.get(user=client.service_user).pk)

    services.client_remove(client=client, actor=people["kommune_admin"])

    removed = AuditEvent.objects.filter(object_id=membership_id, action="membership.removed")
    assert removed.count() == 1
    assert removed.get().before["role"] == Role.KOMMUNE_READER


def test_an_automation_client_with_the_admin_role_cannot_make_or_change_automation_clients(
    people: dict[str, Any], kommune: Organisation
) -> None:
    """A leaked key of an admin's automation client must not outlive the client: it may not
    register another automation client, give itself or another one new keys, or remove one.
    A person with the admin role does those things; the client keeps its role for the rest."""
    admin_client = automation_client(people["kommune_admin"], kommune, "kommune_admin")
    other = automation_client(people["kommune_admin"], kommune, "kommune_reader")
    assert admin_client.service_user is not None
    robot = as_(admin_client.service_user)
    keys_before = set(ClientKey.objects.values_list("client_id", "kid"))
    clients_before = OAuthClient.objects.filter(removed_at__isnull=True).count()

    made = robot.post(
        "/api/v1/clients/",
        {
            "name": "Second pipeline",
            "purpose": "portal_api",
            "organisation": kommune.orgnr,
            "role": "kommune_admin",
            "jwks": {"keys": [rsa_public_jwk("pipeline-9")]},
        },
        format="json",
    )
    own_keys = robot.put(
        f"/api/v1/clients/{admin_client.pk}/jwks/",
        {"keys": [rsa_public_jwk("pipeline-8")]},
        format="json",
    )
    other_keys = robot.put(
        f"/api/v1/clients/{other.pk}/jwks/", {"keys": [rsa_public_jwk("pipeline-7")]}, format="json"
    )
    removed = robot.delete(f"/api/v1/clients/{other.pk}/")

    assert [r.status_code for r in (made, own_keys, other_keys, removed)] == [403] * 4
    assert "automatiseringsklient kan ikke" in made.json()["detail"]  # bokmål, the default
    assert set(ClientKey.objects.values_list("client_id", "kid")) == keys_before
    assert OAuthClient.objects.filter(removed_at__isnull=True).count() == clients_before
    # What its role allows otherwise, it still does: it reads the kommune's clients.
    assert robot.get("/api/v1/clients/").status_code == 200
    # And a person with the role still manages them.
    assert as_(people["kommune_admin"]).delete(f"/api/v1/clients/{other.pk}/").status_code == 204
