"""Bad input gets a readable 400/404/409 and loses nothing already stored."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from orders.models import AccessRequest, AccessRequestItem, Grant, Instruction
from tenants.models import ClientKey, OAuthClient
from tests.conftest import World
from tests.keys import b64url_uint, rsa_private_jwk, rsa_public_jwk

pytestmark = pytest.mark.django_db


def as_(world: World, who: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(world.people[who])
    return client


def new_client_body(world: World, keyset: Any) -> dict[str, Any]:
    return {
        "name": "Trygghet prod",
        "product": str(world.product.pk),
        "environment": "production",
        "jwks": keyset,
    }


def test_a_private_key_is_refused_and_never_echoed(world: World) -> None:
    private = rsa_private_jwk("leaky")
    before = OAuthClient.objects.count()

    response = as_(world, "vendor_admin").post(
        "/api/v1/clients/", new_client_body(world, {"keys": [private]}), format="json"
    )

    assert response.status_code == 400
    text = response.content.decode()
    assert "private" in text.lower() or "privat" in text.lower()
    for member in ("d", "p", "q", "dp", "dq", "qi"):
        assert private[member] not in text
    assert OAuthClient.objects.count() == before


@pytest.mark.parametrize(
    ("keyset", "fragment"),
    [
        ({"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0", "alg": "HS256"}]}, "symmetriske"),
        ({"keys": [rsa_public_jwk("a"), rsa_public_jwk("a", seed=1)]}, "brukes allerede"),
        ({"keys": [rsa_public_jwk(f"k{i}") for i in range(6)]}, "5"),
        ({"keys": [rsa_public_jwk("ps", alg="PS256")]}, "PS256"),
        ({"keys": [rsa_public_jwk("pad", padding="x" * 40_000)]}, "byte"),
        ({"nokeys": []}, "keys"),
    ],
    ids=["symmetric", "duplicate-kid", "too-many", "ps256", "too-large", "not-a-jwks"],
)
def test_jwks_problems_are_field_errors_and_nothing_is_stored(
    world: World, keyset: Any, fragment: str
) -> None:
    before = (OAuthClient.objects.count(), ClientKey.objects.count())

    response = as_(world, "vendor_admin").post(
        "/api/v1/clients/", new_client_body(world, keyset), format="json"
    )

    assert response.status_code == 400
    assert fragment in " ".join(response.json()["jwks"])
    assert (OAuthClient.objects.count(), ClientKey.objects.count()) == before


def test_a_small_rsa_key_is_refused_by_rotation_and_the_old_keys_stay(world: World) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505
    jwk = {
        "kty": "RSA",
        "kid": "small",
        "alg": "RS256",
        "n": b64url_uint(small.public_numbers().n),
        "e": "AQAB",
    }

    response = as_(world, "vendor_admin").put(
        f"/api/v1/clients/{world.client.pk}/jwks/", {"keys": [jwk]}, format="json"
    )

    assert response.status_code == 400
    assert "1024" in response.content.decode()
    assert list(world.client.keys.values_list("kid", flat=True)) == ["key-1"]


def order_body(world: World, **overrides: Any) -> dict[str, Any]:
    return {
        "client": str(world.client.pk),
        "kommune": world.kommune.orgnr,
        "items": [{"service": "patient", "access": "read"}],
    } | overrides


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"items": [{"service": "no-such-service", "access": "read"}]}, "items"),
        ({"items": [{"service": "patient", "access": "delete"}]}, "items"),
        ({"items": []}, "items"),
        ({"items": [{"service": "patient", "access": "read", "service_codes": ["XX"]}]}, "items"),
        ({"kommuner": ["958935420"]}, "kommune"),  # both kommune and kommuner
        ({"client": "not-a-uuid"}, "client"),
        (
            {
                "items": [
                    {"service": "patient", "access": "read"},
                    {"service": "patient", "access": "read"},
                ]
            },
            "items",
        ),
    ],
    ids=[
        "unknown-service",
        "unknown-access",
        "no-items",
        "bad-service-code",
        "kommune-and-kommuner",
        "bad-client-id",
        "item-twice",
    ],
)
def test_malformed_orders_are_400_with_field_errors(
    world: World, overrides: dict[str, Any], field: str
) -> None:
    before = AccessRequest.objects.count()
    response = as_(world, "vendor_admin").post(
        "/api/v1/access-requests/", order_body(world, **overrides), format="json"
    )
    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert AccessRequest.objects.count() == before


def test_a_client_or_kommune_the_caller_may_not_see_is_404(world: World) -> None:
    vendor = as_(world, "vendor_admin")
    other_clients = vendor.post(
        "/api/v1/access-requests/",
        order_body(world, client=str(world.other_client.pk)),
        format="json",
    )
    other_kommune = as_(world, "other_kommune_admin").post(
        "/api/v1/access-requests/", order_body(world), format="json"
    )
    unknown_kommune = vendor.post(
        "/api/v1/access-requests/", order_body(world, kommune="999999999"), format="json"
    )
    assert other_clients.status_code == 404
    assert other_kommune.status_code == 404
    assert unknown_kommune.status_code == 404
    assert "999999999" in unknown_kommune.json()["detail"]
    assert AccessRequest.objects.count() == 0


def test_an_unparseable_body_is_400(world: World) -> None:
    response = as_(world, "vendor_admin").generic(
        "POST", "/api/v1/access-requests/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sharing_scope": "named_organisations"}, "shared_with"),
        ({"shared_with": ["958935420"]}, "shared_with"),
        ({"services": ["nope"]}, "services"),
        ({"contact_email": "not an address"}, "contact_email"),
        ({"personal_data_categories": []}, "personal_data_categories"),
    ],
)
def test_an_instruction_with_bad_fields_is_refused(
    world: World, changes: dict[str, Any], field: str
) -> None:
    body = {
        "kommune": world.kommune.orgnr,
        "services": ["patient"],
        "subject_matter": "Helsedata",
        "duration": "Løpende",
        "nature_and_purpose": "Innsamling",
        "personal_data_categories": ["helse"],
        "data_subject_categories": ["pasienter"],
        "sharing_scope": "kommune_only",
        "retention": "5 år",
        "contact_name": "Kari",
        "contact_email": "kari@k.example",
    } | changes
    before = Instruction.objects.count()
    response = as_(world, "kommune_admin").post("/api/v1/instructions/", body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert Instruction.objects.count() == before


def test_a_delegation_that_ends_before_it_starts_is_refused(world: World) -> None:
    response = as_(world, "kommune_admin").post(
        "/api/v1/delegations/",
        {
            "kommune": world.kommune.orgnr,
            "vendor": world.vendor.orgnr,
            "items": [{"service": "patient", "access": "read"}],
            "valid_from": "2030-01-02",
            "valid_until": "2030-01-01",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "valid_until" in response.json()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_approvals_of_the_same_item_at_the_same_moment_make_one_grant(world: World) -> None:
    world.delegation.items.all().delete()
    request = world.order("patient.read")
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def approve() -> None:
        api = as_(world, "kommune_admin")
        barrier.wait()
        try:
            statuses.append(
                api.post(f"/api/v1/access-requests/{request.pk}/approve/", {}).status_code
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=approve) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 200]  # the second finds it approved: nothing to do
    assert Grant.objects.filter(client=world.client).count() == 1
    assert AccessRequestItem.objects.get(request=request).status == "approved"


def test_an_oversized_body_is_a_json_400_and_stores_nothing(world: World) -> None:
    body = '{"name": "x", "jwks": {"keys": []}, "padding": "' + "a" * 300_000 + '"}'
    before = OAuthClient.objects.count()
    response = as_(world, "vendor_admin").generic(
        "POST", "/api/v1/clients/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Innholdet i forespørselen er for stort."}  # nb first
    assert OAuthClient.objects.count() == before
