"""Key rotation with an overlap, as the client pages do it: add a key beside the old ones, remove
an old key later (never the last), and what removing a client closes."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from orders import services
from orders.models import GrantStatus, ItemStatus, ProvisioningJob
from portal.exceptions import Conflict
from tenants.models import ClientKey
from tests.conftest import World
from tests.keys import ec_public_jwk, jwks, rsa_private_jwk, rsa_public_jwk

pytestmark = pytest.mark.django_db


def kids(world: World) -> list[str]:
    return list(world.client.keys.order_by("created_at", "kid").values_list("kid", flat=True))


def test_adding_a_key_keeps_the_old_one_and_the_day_it_was_added(world: World) -> None:
    long_ago = timezone.now() - datetime.timedelta(days=300)  # within the key lifetime
    ClientKey.objects.filter(client=world.client).update(created_at=long_ago)

    services.client_keys_add(
        client=world.client, jwks=jwks(ec_public_jwk("new")), actor=world.people["vendor_admin"]
    )

    assert kids(world) == ["key-1", "new"]
    assert world.client.keys.get(kid="key-1").created_at == long_ago
    assert AuditEvent.objects.filter(action="client.keys_rotated").count() == 1
    assert ProvisioningJob.objects.filter(client=world.client, status="pending").count() == 1


def test_a_new_key_with_a_kid_the_client_has_is_refused_on_the_keys(world: World) -> None:
    with pytest.raises(ValidationError) as refused:
        services.client_keys_add(
            client=world.client,
            jwks=jwks(ec_public_jwk("key-1")),
            actor=world.people["vendor_admin"],
        )

    assert "key-1" in refused.value.message_dict["jwks"][0]
    assert kids(world) == ["key-1"]


def test_a_client_holds_at_most_five_keys(world: World) -> None:
    for n in range(4):
        services.client_keys_add(
            client=world.client,
            jwks=jwks(ec_public_jwk(f"ec-{n}")),
            actor=world.people["vendor_admin"],
        )

    with pytest.raises(ValidationError) as refused:
        services.client_keys_add(
            client=world.client,
            jwks=jwks(ec_public_jwk("sixth")),
            actor=world.people["vendor_admin"],
        )

    assert "5" in refused.value.message_dict["jwks"][0]
    assert len(kids(world)) == 5


def test_a_private_key_is_refused_when_added(world: World) -> None:
    with pytest.raises(ValidationError) as refused:
        services.client_keys_add(
            client=world.client,
            jwks=jwks(rsa_private_jwk("leaked", seed=1)),
            actor=world.people["vendor_admin"],
        )

    assert "jwks" in refused.value.message_dict
    assert kids(world) == ["key-1"]


def test_an_expired_key_is_left_out_when_a_new_one_is_added(world: World) -> None:
    ClientKey.objects.filter(client=world.client).update(
        expires_at=timezone.now() - datetime.timedelta(days=1)
    )

    services.client_keys_add(
        client=world.client, jwks=jwks(ec_public_jwk("new")), actor=world.people["vendor_admin"]
    )

    assert kids(world) == ["new"]


def test_an_old_key_is_removed_once_a_new_one_is_there_but_never_the_last(world: World) -> None:
    admin = world.people["vendor_admin"]
    with pytest.raises(ValidationError) as last:
        services.client_key_remove(client=world.client, kid="key-1", actor=admin)
    assert "key-1" in last.value.message_dict["kid"][0]

    services.client_keys_add(client=world.client, jwks=jwks(ec_public_jwk("new")), actor=admin)
    services.client_key_remove(client=world.client, kid="key-1", actor=admin)

    assert kids(world) == ["new"]
    with pytest.raises(ValidationError):
        services.client_key_remove(client=world.client, kid="key-1", actor=admin)


def test_keys_of_a_removed_client_do_not_change(world: World) -> None:
    admin = world.people["vendor_admin"]
    services.client_remove(client=world.client, actor=admin)

    with pytest.raises(Conflict):
        services.client_keys_add(client=world.client, jwks=jwks(ec_public_jwk("new")), actor=admin)
    with pytest.raises(Conflict):
        services.client_key_remove(client=world.client, kid="key-1", actor=admin)


def test_a_key_set_put_again_through_the_api_keeps_each_unchanged_keys_age(world: World) -> None:
    long_ago = timezone.now() - datetime.timedelta(days=400)
    ClientKey.objects.filter(client=world.client).update(created_at=long_ago)
    api = APIClient()
    api.force_authenticate(world.people["vendor_admin"])

    response = api.put(
        f"/api/v1/clients/{world.client.pk}/jwks/",
        jwks(rsa_public_jwk(), ec_public_jwk("new")),
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert world.client.keys.get(kid="key-1").created_at == long_ago
    assert world.client.keys.get(kid="new").created_at > long_ago


def test_the_preview_of_a_removal_names_what_the_removal_closes(world: World) -> None:
    granted = world.order("patient.read").items.get().grant
    world.delegation.items.all().delete()
    waiting = world.order("care-plan.read").items.get()
    grants, items = services.client_remove_closes(world.client)
    assert list(grants) == [granted]
    assert list(items) == [waiting]

    services.client_remove(client=world.client, actor=world.people["vendor_admin"])

    assert granted is not None
    granted.refresh_from_db()
    waiting.refresh_from_db()
    assert granted.status == GrantStatus.REVOKING
    assert waiting.status == ItemStatus.WITHDRAWN
    grants, items = services.client_remove_closes(world.client)
    assert not grants.exists()
    assert not items.exists()
