"""The vendor's start page: which kommuner are live, what is stuck, what needs the vendor."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orders.models import AccessRequest, GrantStatus, ItemStatus, Service
from tenants.models import ClientKey, Organisation
from tests.conftest import World
from tests.factories import ClientFactory, GrantFactory, KommuneOrganisationFactory

pytestmark = pytest.mark.django_db


def start_page(client: Client, who: User, vendor: Organisation) -> str:
    client.force_login(who)
    response = client.get(reverse("orders:dashboard", args=[vendor.orgnr]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_start_page_counts_the_vendors_access_by_status_in_colour_and_words(
    client: Client, world: World
) -> None:
    other = KommuneOrganisationFactory()
    GrantFactory(client=world.client, kommune=world.kommune, status=GrantStatus.ACTIVE)
    GrantFactory(client=world.client, kommune=other, status=GrantStatus.PROVISIONING)
    GrantFactory(client=world.client, kommune=other, status=GrantStatus.FAILED, access="write")
    GrantFactory(client=world.other_client, kommune=world.kommune, status=GrantStatus.ACTIVE)

    html = start_page(client, world.people["vendor_admin"], world.vendor)

    assert '<span class="ds-tag" data-color="success">Aktiv: 1</span>' in html
    assert '<span class="ds-tag" data-color="info">Klargjøres: 1</span>' in html
    assert '<span class="ds-tag" data-color="danger">Feilet: 1</span>' in html
    # per kommune: Oslo is live, the other has something failed
    assert world.kommune.name in html
    assert other.name in html
    assert "I drift" in html
    assert "Noe feilet" in html
    assert world.other_kommune.name not in html
    # the other vendor's active grant in the same kommune is not counted as this vendor's
    assert re.search(rf'<th scope="row">{world.kommune.name}</th>\s*<td>1</td>', html)


def test_failures_that_need_the_vendor_say_why(client: Client, world: World) -> None:
    GrantFactory(
        client=world.client,
        kommune=world.kommune,
        status=GrantStatus.FAILED,
        status_reason_code="gave_up",
        status_reason_params={"attempts": 5, "error": "invalid_client_metadata"},
    )
    world.client.provisioning_status = "failed"
    world.client.provisioning_error = "The authorization server refused the key set."
    world.client.save(update_fields=["provisioning_status", "provisioning_error"])

    html = start_page(client, world.people["vendor_developer"], world.vendor)

    assert "Feil" in html
    assert "invalid_client_metadata" in html
    assert "The authorization server refused the key set." in html
    assert reverse("orders:client", args=[world.vendor.orgnr, world.client.pk]) in html


def test_old_and_expiring_keys_are_named_with_a_link_to_rotate_them(
    client: Client, world: World, settings: Any
) -> None:
    settings.CLIENT_KEY_LIFETIME_DAYS = 365
    ClientKey.objects.filter(client=world.client).update(
        created_at=timezone.now() - datetime.timedelta(days=400)
    )
    ageing = ClientFactory(product=world.product, name="Ageing client")
    ClientKey.objects.filter(client=ageing).update(
        kid="ageing-key", created_at=timezone.now() - datetime.timedelta(days=350, hours=1)
    )
    soon = ClientFactory(product=world.product, name="Expiring client")
    ClientKey.objects.filter(client=soon).update(
        kid="soon-key", expires_at=timezone.now() + datetime.timedelta(days=10, hours=-1)
    )
    fresh = ClientFactory(product=world.product, name="Fresh client")
    ClientKey.objects.filter(client=fresh).update(kid="fresh-key")

    html = start_page(client, world.people["vendor_admin"], world.vendor)

    assert "Nøkler som må byttes" in html
    assert "En nøkkel godtas i 365 dager etter at den ble lagt til" in html
    assert "<code>key-1</code>" in html
    assert "Godtas ikke lenger" in html
    assert "nådde nøkkelens levetid" in html
    assert "<code>ageing-key</code>" in html
    assert "(15 dager igjen)" in html
    assert "<code>soon-key</code>" in html
    assert "(10 dager igjen)" in html
    assert "På tide å bytte" in html
    assert "fresh-key" not in html
    for rotated in (world.client, ageing, soon):
        assert reverse("orders:client_key_add", args=[world.vendor.orgnr, rotated.pk]) in html


def test_items_that_wait_for_the_vendors_consent_are_listed(client: Client, world: World) -> None:
    request = world.order("patient.read", initiated_by=AccessRequest.Initiator.KOMMUNE)
    assert request.items.get().status == ItemStatus.AWAITING_VENDOR

    html = start_page(client, world.people["vendor_admin"], world.vendor)

    assert "1 bestilt tilgang venter på samtykket ditt" in html
    assert Service.objects.get(code="patient").name in html
    assert "Ingenting trenger deg nå" not in html


def test_a_vendor_with_nothing_to_do_is_told_so_and_where_to_start(
    client: Client, people: dict[str, Any], vendor: Organisation
) -> None:
    html = start_page(client, people["vendor_admin"], vendor)

    assert "Ingenting trenger deg nå" in html
    assert "Begynn med å registrere produktet" in html
    assert reverse("tenants:products", args=[vendor.orgnr]) in html


def test_the_start_page_of_another_vendor_is_not_found(
    client: Client, people: dict[str, Any], vendor: Organisation
) -> None:
    for who in ("other_vendor_admin", "kommune_admin", "nhn_auditor"):
        client.force_login(people[who])
        assert client.get(reverse("orders:dashboard", args=[vendor.orgnr])).status_code == 404


def queries_of(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_start_page_reads_as_many_queries_for_many_kommuner_as_for_one(
    client: Client, world: World, django_assert_max_num_queries: Any
) -> None:
    client.force_login(world.people["vendor_admin"])
    url = reverse("orders:dashboard", args=[world.vendor.orgnr])
    GrantFactory(client=world.client, kommune=world.kommune, status=GrantStatus.FAILED)
    world.order("care-plan.read", initiated_by=AccessRequest.Initiator.KOMMUNE)
    few = queries_of(client, url)

    for n in range(12):
        extra = ClientFactory(product=world.product, name=f"Extra {n}")
        ClientKey.objects.filter(client=extra).update(
            created_at=timezone.now() - datetime.timedelta(days=500)
        )
        kommune = KommuneOrganisationFactory()
        GrantFactory(client=extra, kommune=kommune, status=GrantStatus.FAILED)
        GrantFactory(client=world.client, kommune=kommune, status=GrantStatus.ACTIVE)
        world.order("patient.read", kommune=kommune, initiated_by=AccessRequest.Initiator.KOMMUNE)

    assert queries_of(client, url) == few
    with django_assert_max_num_queries(17):  # 16, and the header's count of unread notifications
        client.get(url)
