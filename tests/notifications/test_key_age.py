"""Key age: a key is accepted for the key lifetime after it was added (or until its own expiry,
if sooner). The vendor's admins are warned 30 and 7 days ahead, once each, on the pages and by
e-mail; at the limit the key is no longer accepted and they are told."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notice, Notification
from orders import services
from orders.models import GrantStatus, ProvisioningJob
from tenants.models import ClientKey, OAuthClient, Profile
from tests.conftest import World
from tests.factories import ClientFactory
from tests.notifications.smtp import SMTPServer
from tests.provisioning.stack import Stack, wait_for
from tests.provisioning.test_provisioning import DEADLINE, Vendor, fhir

DAY = datetime.timedelta(days=1)


def _added(client: OAuthClient) -> datetime.datetime:
    return ClientKey.objects.get(client=client).created_at


def _said(kind: str, world: World) -> list[dict[str, Any]]:
    """What the world's vendor was told (the other vendor's client has an old key too)."""
    notices = Notice.objects.filter(kind=kind, organisation=world.vendor).order_by("created_at")
    return [notice.params for notice in notices]


@pytest.mark.django_db
def test_a_key_is_accepted_for_the_lifetime_or_until_its_own_expiry_if_sooner(
    world: World, settings: Any
) -> None:
    settings.CLIENT_KEY_LIFETIME_DAYS = 365
    key = ClientKey.objects.get(client=world.client)
    added = key.created_at

    assert key.valid_until == added + 365 * DAY
    assert key.is_valid(added + 364 * DAY)
    assert not key.is_valid(added + 365 * DAY)
    assert ClientKey.objects.valid(added + 364 * DAY).filter(pk=key.pk).exists()
    assert not ClientKey.objects.valid(added + 366 * DAY).filter(pk=key.pk).exists()
    key.expires_at = added + 100 * DAY
    assert key.valid_until == added + 100 * DAY
    assert not key.ends_by_age
    settings.CLIENT_KEY_LIFETIME_DAYS = 30
    assert key.valid_until == added + 30 * DAY
    assert key.ends_by_age


@pytest.mark.django_db
def test_the_warnings_come_30_and_7_days_ahead_once_each_then_the_key_stops(
    world: World, settings: Any
) -> None:
    settings.CLIENT_KEY_LIFETIME_DAYS = 365
    settings.CLIENT_KEY_WARNING_DAYS = [30, 7]
    added = _added(world.client)

    services.client_keys_age_check(now=added + 300 * DAY)
    assert not Notice.objects.exists()

    for day in (335.5, 336, 350):
        services.client_keys_age_check(now=added + day * DAY)
    assert [(p["kid"], p["days"]) for p in _said("key_expiring", world)] == [("key-1", 30)]

    for day in (358.5, 359, 364.9):
        services.client_keys_age_check(now=added + day * DAY)
    assert [p["days"] for p in _said("key_expiring", world)] == [30, 7]
    assert not ProvisioningJob.objects.filter(client=world.client).exists()

    services.client_keys_age_check(now=added + 365.01 * DAY)
    services.client_keys_age_check(now=added + 365.5 * DAY)

    [expired] = _said("key_expired", world)
    assert expired["kid"] == "key-1"
    assert expired["last"] is True  # the client's only key: its access closes
    job = ProvisioningJob.objects.get(client=world.client)
    assert job.reason == "client.key_expired"
    # To the vendor's admins, with a link to the client's page (where the remedy is).
    mine = Notification.objects.filter(notice__organisation=world.vendor)
    assert set(mine.values_list("recipient_id", flat=True)) == {world.people["vendor_admin"].pk}
    link = reverse("orders:client", args=[world.vendor.orgnr, world.client.pk])
    assert set(mine.values_list("link", flat=True)) == {link}


@pytest.mark.django_db
def test_a_key_with_another_valid_key_beside_it_is_not_the_last_and_removed_clients_are_quiet(
    world: World, settings: Any
) -> None:
    settings.CLIENT_KEY_LIFETIME_DAYS = 365
    added = _added(world.client)
    newer = ClientKey.objects.get(client=world.client)
    newer.pk = None
    newer.kid = "key-2"
    newer.save()
    ClientKey.objects.filter(pk=newer.pk).update(created_at=added + 200 * DAY)
    removed = ClientFactory(product=world.product)
    ClientKey.objects.filter(client=removed).update(created_at=added)
    OAuthClient.objects.filter(pk=removed.pk).update(removed_at=added + DAY)

    services.client_keys_age_check(now=added + 365.01 * DAY)

    [expired] = _said("key_expired", world)
    assert expired["kid"] == "key-1"
    assert expired["last"] is False
    assert not Notice.objects.filter(params__client=removed.name).exists()


@pytest.mark.django_db
def test_the_client_page_shows_the_warning_and_the_way_to_rotate(
    client: Client, world: World, settings: Any
) -> None:
    settings.CLIENT_KEY_LIFETIME_DAYS = 365
    ClientKey.objects.filter(client=world.client).update(created_at=timezone.now() - 360 * DAY)
    client.force_login(world.people["vendor_admin"])

    page = client.get(reverse("orders:client", args=[world.vendor.orgnr, world.client.pk]))

    html = page.content.decode()
    assert "På tide å bytte" in html
    assert "(5 dager igjen)" in html
    assert "legg til en ny nøkkel" in html.lower()
    assert reverse("orders:client_key_add", args=[world.vendor.orgnr, world.client.pk]) in html
    ClientKey.objects.filter(client=world.client).update(created_at=timezone.now() - 366 * DAY)
    html = client.get(
        reverse("orders:client", args=[world.vendor.orgnr, world.client.pk])
    ).content.decode()
    assert "Godtas ikke lenger" in html
    assert "Autorisasjonsserveren godtar ikke lenger det som er signert med den." in html


@pytest.mark.integration
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_warnings_arrive_by_e_mail_once_each_in_the_admins_language(
    mailer: SMTPServer, world: World, settings: Any
) -> None:
    settings.CLIENT_KEY_LIFETIME_DAYS = 365
    english: User = world.people["vendor_admin"]
    Profile.objects.create(user=english, language="en")
    # The other vendor's client has a key as old: its admin reads bokmål.
    bokmal: User = world.people["other_vendor_admin"]
    added = _added(world.client)

    def arrived(address: str, count: int) -> list[Any]:
        return mailer.wait_for(
            lambda received: (
                len([m for m in received if address in m.to]) >= count
                and [m for m in received if address in m.to]
            ),
            what=f"{count} e-mails to {address}",
        )

    for day in (335.5, 336):
        services.client_keys_age_check(now=added + day * DAY)
    [first] = arrived(english.email, 1)
    assert first.subject == f"The key key-1 of {world.client.name} stops working in 30 days"
    assert "Rotate the key before then" in first.body
    assert f"/o/{world.vendor.orgnr}/clients/{world.client.pk}/" in first.body
    [first_nb] = arrived(bokmal.email, 1)
    other = world.other_client.name
    assert first_nb.subject == f"Nøkkelen key-1 til {other} slutter å virke om 30 dager"

    for day in (358.5, 359):
        services.client_keys_age_check(now=added + day * DAY)
    second = arrived(english.email, 2)[1]
    assert second.subject == f"The key key-1 of {world.client.name} stops working in 7 days"
    assert arrived(bokmal.email, 2)[1].subject == (
        f"Nøkkelen key-1 til {other} slutter å virke om 7 dager"
    )

    services.client_keys_age_check(now=added + 365.01 * DAY)
    third = arrived(english.email, 3)[2]
    assert third.subject == f"The key key-1 of {world.client.name} is no longer accepted"
    assert "last valid key" in third.body
    services.client_keys_age_check(now=added + 365.5 * DAY)
    wait_for(
        lambda: Notification.objects.filter(email_status="sent").count() == 6,
        timeout=10,
        what="all six sent",
    )
    assert len(mailer.received(english.email)) == 3  # once each
    assert len(mailer.received(bokmal.email)) == 3
    assert len(mailer.received()) == 6


@pytest.mark.integration
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_key_is_refused_by_the_real_stack_once_past_the_lifetime_and_the_vendor_is_told(
    stack: Stack, mailer: SMTPServer, settings: Any
) -> None:
    settings.CLIENT_KEY_LIFETIME_DAYS = 365
    stack.start_worker()
    vendor = Vendor()
    [grant] = vendor.order("patient.read")
    token = vendor.token_once_active(stack, grant)
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 200
    client_id = vendor.client_id()
    ClientKey.objects.filter(client=vendor.client).update(
        created_at=timezone.now() - 365 * DAY - datetime.timedelta(minutes=1)
    )

    with transaction.atomic():
        services.client_keys_age_check()

    wait_for(
        lambda: OAuthClient.objects.get(pk=vendor.client.pk).provisioning_status == "keys_expired",
        timeout=DEADLINE,
        what="the client is closed",
    )
    refused = stack.token(client_id, vendor.key)
    assert refused.status_code in (400, 401), refused.text
    assert refused.json()["error"] == "invalid_client"
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 403
    grant.refresh_from_db()
    assert grant.status == GrantStatus.PENDING
    assert grant.status_reason_code == "keys_expired"
    told = mailer.message_to(vendor.admin.email)
    assert told.subject == f"Nøkkelen key-1 til {vendor.client.name} godtas ikke lenger"
    assert "siste gyldige nøkkel" in told.body
