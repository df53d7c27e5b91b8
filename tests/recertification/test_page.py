"""The kommune's recertification page: each vendor with when it was last confirmed and when it
lapses, one button per vendor; readers see it, only admins confirm, outsiders get 404."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from orders.models import Grant, GrantStatus
from recertification.models import Recertification
from recertification.selectors import months_later
from tests.conftest import World
from tests.factories import GrantFactory
from tests.recertification.conftest import lapse_day

pytestmark = pytest.mark.django_db


def url(world: World) -> str:
    return reverse("recertification:page", args=[world.kommune.orgnr])


@pytest.fixture
def grants(world: World) -> list[Grant]:
    return world.vendor_grants("patient.read,observation.write")


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("kommune_admin", 200),
        ("kommune_reader", 200),
        ("other_kommune_admin", 404),
        ("vendor_admin", 404),
        ("nhn_operator", 404),  # NHN reads every kommune's through the API
    ],
)
def test_the_page_lists_each_vendor_with_its_day_for_the_kommunes_members_only(
    client: Client, world: World, grants: list[Grant], who: str, expected: int
) -> None:
    GrantFactory(client=world.other_client, kommune=world.other_kommune)
    client.force_login(world.people[who])

    response = client.get(url(world))

    assert response.status_code == expected
    if expected == 200:
        html = response.content.decode()
        assert world.vendor.name in html
        assert world.other_vendor.name not in html
        assert html.count('<th scope="row">') == 2
        assert "Pasient" in html
        assert date_format(lapse_day(grants[0]), "DATE_FORMAT") in html
        assert "Aldri" in html  # never confirmed
        admin = who == "kommune_admin"
        assert (f"Bekreft tilgangene til {world.vendor.name}" in html) is admin
        assert ('name="not_confirmed"' in html) is admin


def test_an_admin_confirms_a_vendor_with_one_button(
    client: Client, world: World, grants: list[Grant]
) -> None:
    Grant.objects.filter(pk=grants[0].pk).update(
        created_at=timezone.now() - datetime.timedelta(days=340)
    )
    client.force_login(world.people["kommune_admin"])
    before = client.get(url(world)).content.decode()
    assert "Opphører om" in before  # due within the reminders' days

    response = client.post(url(world), {"vendor": world.vendor.orgnr})

    assert response.status_code == 302
    next_day = months_later(timezone.localdate(), 12)
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith(f"Bekreftet: {world.vendor.name} beholder 2 tilganger til")
    assert date_format(next_day, "DATE_FORMAT") in message
    record = Recertification.objects.get(kommune=world.kommune, vendor=world.vendor)
    assert record.confirmed_by == world.people["kommune_admin"]
    after = client.get(url(world)).content.decode()
    assert "Ikke til bekreftelse ennå" in after
    assert "Aldri" not in after


def test_accesses_chosen_to_end_are_revoked_instead(
    client: Client, world: World, grants: list[Grant]
) -> None:
    client.force_login(world.people["kommune_admin"])

    response = client.post(
        url(world), {"vendor": world.vendor.orgnr, "not_confirmed": [str(grants[1].pk)]}
    )

    assert response.status_code == 302
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert "1 tilgang er avsluttet" in message
    grants[1].refresh_from_db()
    assert grants[1].status == GrantStatus.REVOKING
    grants[0].refresh_from_db()
    assert grants[0].status == GrantStatus.PENDING


def test_a_reader_cannot_confirm(client: Client, world: World, grants: list[Grant]) -> None:
    client.force_login(world.people["kommune_reader"])

    response = client.post(url(world), {"vendor": world.vendor.orgnr})

    assert response.status_code == 403
    assert not Recertification.objects.exists()


def test_a_stale_choice_is_shown_beside_the_vendor_and_changes_nothing(
    client: Client, world: World, grants: list[Grant]
) -> None:
    foreign = GrantFactory(client=world.other_client, kommune=world.other_kommune)
    client.force_login(world.people["kommune_admin"])

    response = client.post(
        url(world), {"vendor": world.vendor.orgnr, "not_confirmed": [str(foreign.pk)]}
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "data-error-summary" in html
    assert "allerede avsluttet" in html
    assert not Recertification.objects.filter(confirmed_at__isnull=False).exists()


def test_a_vendor_without_access_here_is_refused_above_the_form(
    client: Client, world: World, grants: list[Grant]
) -> None:
    client.force_login(world.people["kommune_admin"])

    response = client.post(url(world), {"vendor": world.other_vendor.orgnr})

    assert response.status_code == 200
    assert f"{world.other_vendor.name} har ingen tilgang i" in response.content.decode()
    assert not Recertification.objects.filter(confirmed_at__isnull=False).exists()


def test_the_empty_page_says_why_it_is_empty(client: Client, world: World) -> None:
    client.force_login(world.people["kommune_admin"])

    html = client.get(url(world)).content.decode()

    assert "Ingen leverandør har tilgang til dataene deres" in html


def test_the_menu_of_a_kommune_leads_to_the_page(client: Client, world: World) -> None:
    client.force_login(world.people["kommune_reader"])

    html = client.get(reverse("orders:dashboard", args=[world.kommune.orgnr])).content.decode()

    assert f'href="{url(world)}"' in html
    assert "Bekreft tilganger" in html
