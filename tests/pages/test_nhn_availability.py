"""NHN's catalogue availability: the day each service opens per environment; operators change
it through service_availability_set, auditors read it."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.models import ItemStatus, Service, ServiceAvailability
from orders.services import service_availability_set
from tenants.models import Environment, Organisation
from tests.conftest import World

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def as_(client: Client, person: User) -> Client:
    client.force_login(person)
    return client


def edit_url(nhn: Organisation, code: str = "care-plan", environment: str = "production") -> str:
    return reverse("orders:availability_edit", args=[nhn.orgnr, code, environment])


def production_day(code: str) -> datetime.date | None:
    row = ServiceAvailability.objects.filter(
        service__code=code, environment=Environment.PRODUCTION
    ).first()
    return row.available_from if row else None


@pytest.mark.parametrize("who", ["nhn_operator", "nhn_auditor"])
def test_nhn_staff_read_when_each_service_opens(
    client: Client,
    people: dict[str, User],
    nhn: Organisation,
    who: str,
    django_assert_max_num_queries: Any,
) -> None:
    as_(client, people[who])
    with django_assert_max_num_queries(10):
        response = client.get(reverse("orders:availability", args=[nhn.orgnr]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Pasient" in body
    assert "1. januar 2026" in body
    assert (edit_url(nhn) in body) is (who == "nhn_operator")


def test_an_auditor_changes_no_day(
    client: Client, people: dict[str, User], nhn: Organisation
) -> None:
    before = production_day("care-plan")
    as_(client, people["nhn_auditor"])
    assert client.get(edit_url(nhn)).status_code == 403
    assert client.post(edit_url(nhn), {"available_from": "2027-01-01"}).status_code == 403
    assert client.post(edit_url(nhn), {"action": "clear"}).status_code == 403
    assert production_day("care-plan") == before


@pytest.mark.parametrize("who", ["kommune_admin", "vendor_admin"])
def test_kommune_and_vendor_people_find_no_catalogue_page(
    client: Client, people: dict[str, User], nhn: Organisation, who: str
) -> None:
    as_(client, people[who])
    assert client.get(reverse("orders:availability", args=[nhn.orgnr])).status_code == 404
    assert client.post(edit_url(nhn), {"available_from": "2027-01-01"}).status_code == 404


def test_an_unknown_service_or_environment_is_not_found(
    client: Client, people: dict[str, User], nhn: Organisation
) -> None:
    as_(client, people["nhn_operator"])
    assert client.get(edit_url(nhn, code="teleportation")).status_code == 404
    assert client.get(edit_url(nhn, environment="staging")).status_code == 404


def test_a_later_day_says_how_many_waiting_orders_go_on_then(
    client: Client, people: dict[str, User], nhn: Organisation, world: World
) -> None:
    care_plan = Service.objects.get(code="care-plan")
    service_availability_set(
        service=care_plan,
        environment=Environment.PRODUCTION,
        available_from=TODAY + datetime.timedelta(days=5),
        actor=people["nhn_operator"],
    )
    for kommune in (world.kommune, world.kommune, world.kommune):
        world.order("care-plan.read", kommune=kommune)  # the second and third wait beside it

    as_(client, people["nhn_operator"])
    response = client.post(edit_url(nhn), {"available_from": "2027-03-01"})

    assert response.status_code == 302
    assert response["Location"] == reverse("orders:availability", args=[nhn.orgnr])
    assert production_day("care-plan") == datetime.date(2027, 3, 1)
    text = client.get(response["Location"]).content.decode()
    assert "3 bestillinger som venter, går videre 1. mars 2027." in text


def test_today_sets_the_waiting_orders_going_now(
    client: Client, people: dict[str, User], nhn: Organisation, world: World
) -> None:
    service_availability_set(
        service=Service.objects.get(code="care-plan"),
        environment=Environment.PRODUCTION,
        available_from=TODAY + datetime.timedelta(days=5),
        actor=people["nhn_operator"],
    )
    item = world.order("care-plan.read").items.get()
    as_(client, people["nhn_operator"])
    response = client.post(
        edit_url(nhn), {"available_from": TODAY.isoformat()}, HTTP_ACCEPT_LANGUAGE="en"
    )
    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED
    text = client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "1 waiting access is being set up now." in text


def test_removing_the_day_closes_the_service_and_says_so(
    client: Client, people: dict[str, User], nhn: Organisation
) -> None:
    as_(client, people["nhn_operator"])
    page = client.get(edit_url(nhn))
    assert 'value="clear"' in page.content.decode()
    response = client.post(edit_url(nhn), {"available_from": "", "action": "clear"})
    assert response.status_code == 302
    assert production_day("care-plan") is None
    text = client.get(response["Location"]).content.decode()
    assert "Ingen dato" in text


@pytest.mark.parametrize("value", ["2026-02-30", "tomorrow", ""])
def test_a_bad_day_gives_a_field_error_and_changes_nothing(
    client: Client, people: dict[str, User], nhn: Organisation, value: str
) -> None:
    before = production_day("care-plan")
    response = as_(client, people["nhn_operator"]).post(edit_url(nhn), {"available_from": value})
    assert response.status_code == 200
    assert "available_from" in response.context["form"].errors
    body = response.content.decode()
    assert 'class="ds-error-summary"' in body
    assert 'id="id_available_from_error"' in body
    if value:
        assert f'value="{value}"' in body
    assert production_day("care-plan") == before
