"""The data-access page: a kommune sees which vendor client called which of its services how
often, refused calls included, and nothing of another kommune; a vendor its clients' calls;
NHN every kommune's. Filters by client, service, period and answer."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from provisioning import data_access
from provisioning.models import DataAccessEntry
from tenants.models import OAuthClient, Organisation
from tests.conftest import World
from tests.factories import UserFactory
from tests.provisioning.test_data_access_api import call

pytestmark = pytest.mark.django_db


def url(organisation: Organisation) -> str:
    return reverse("provisioning:data_access", args=[organisation.orgnr])


def page(browser: Client, user: Any, organisation: Organisation, **params: Any) -> str:
    browser.force_login(user)
    response = browser.get(url(organisation), params)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def calls(world: World) -> dict[str, DataAccessEntry]:
    OAuthClient.objects.filter(pk=world.client.pk).update(client_id="tilgang-ours")
    OAuthClient.objects.filter(pk=world.other_client.pk).update(client_id="tilgang-theirs")
    world.client.refresh_from_db()
    world.other_client.refresh_from_db()
    hour = datetime.timedelta(hours=1)
    return {
        "ours": call(world, ago=hour),
        "ours_again": call(world, ago=2 * hour, path="Patient/2"),
        "ours_refused": call(world, service="observation", status=403, path="Observation/7"),
        "theirs_here": call(world, client=world.other_client, path="Patient/3"),
        "elsewhere": call(world, kommune=world.other_kommune.orgnr, path="Patient/999"),
    }


def test_a_kommune_admin_sees_who_called_which_service_how_often_with_the_refused_calls(
    client: Client, world: World, calls: dict[str, DataAccessEntry]
) -> None:
    html = page(client, world.people["kommune_admin"], world.kommune)

    assert world.client.name in html
    assert world.vendor.name in html
    assert world.other_client.name in html
    assert "Pasient" in html or "Patient" in html
    assert "/fhir/Observation/7" in html
    assert "Avvist (403)" in html  # bokmål first
    assert "/fhir/Patient/999" not in html  # the other kommune's call
    assert world.other_kommune.name not in html


def test_the_counts_say_how_often_each_client_called_each_service(
    client: Client, world: World, calls: dict[str, DataAccessEntry]
) -> None:
    client.force_login(world.people["kommune_reader"])
    response = client.get(url(world.kommune))

    usage = {
        (row.client_id, row.service): (row.calls, row.refused)
        for row, _caller, _service, _kommune in response.context["usage"]
    }
    assert usage == {
        ("tilgang-ours", "patient"): (2, 0),
        ("tilgang-ours", "observation"): (1, 1),
        ("tilgang-theirs", "patient"): (1, 0),
    }


def test_another_kommunes_page_is_not_found(
    client: Client, world: World, calls: dict[str, DataAccessEntry]
) -> None:
    client.force_login(world.people["kommune_admin"])

    assert client.get(url(world.other_kommune)).status_code == 404
    client.force_login(UserFactory())
    assert client.get(url(world.kommune)).status_code == 404


def test_a_vendor_sees_its_clients_calls_to_every_kommune_and_no_one_elses(
    client: Client, world: World, calls: dict[str, DataAccessEntry]
) -> None:
    html = page(client, world.people["vendor_developer"], world.vendor)

    assert "/fhir/Patient/999" in html  # its client's call to the other kommune
    assert world.other_kommune.name in html
    assert "/fhir/Patient/3" not in html  # the other vendor's client


def test_nhn_sees_every_kommunes_calls_and_filters_by_kommune(
    client: Client, world: World, nhn: Organisation, calls: dict[str, DataAccessEntry]
) -> None:
    auditor = world.people["nhn_auditor"]
    everything = page(client, auditor, nhn, days="30")
    one = page(client, auditor, nhn, days="30", kommune=world.other_kommune.orgnr)

    assert "/fhir/Patient/999" in everything
    assert "/fhir/Observation/7" in everything
    assert "/fhir/Patient/999" in one
    assert "/fhir/Observation/7" not in one


@pytest.mark.parametrize(
    ("params", "shown", "hidden"),
    [
        ({"client": "tilgang-theirs"}, "Patient/3", "Observation/7"),
        ({"service": "observation"}, "Observation/7", "Patient/3"),
        ({"answer": "refused"}, "Observation/7", "Patient/3"),
        ({"answer": "passed"}, "Patient/3", "Observation/7"),
    ],
)
def test_the_filters_narrow_the_counts_and_the_calls(
    client: Client,
    world: World,
    calls: dict[str, DataAccessEntry],
    params: dict[str, str],
    shown: str,
    hidden: str,
) -> None:
    html = page(client, world.people["kommune_admin"], world.kommune, **params)

    assert f"/fhir/{shown}" in html
    assert f"/fhir/{hidden}" not in html


def test_the_period_counts_whole_days_back_from_today(
    client: Client, world: World, calls: dict[str, DataAccessEntry]
) -> None:
    midnight = data_access.day_start(timezone.localdate())
    call(world, at=midnight, path="Patient/today")
    call(world, at=midnight - datetime.timedelta(minutes=1), path="Patient/yesterday")
    call(world, at=midnight - datetime.timedelta(days=20), path="Patient/old")
    admin = world.people["kommune_admin"]

    today = page(client, admin, world.kommune, days="1")
    week = page(client, admin, world.kommune, days="7")
    month = page(client, admin, world.kommune, days="30")

    assert "Patient/today" in today
    assert "Patient/yesterday" not in today
    assert "Patient/yesterday" in week
    assert "Patient/old" not in week
    assert "Patient/old" in month


def test_nhn_counts_todays_calls_unless_it_asks_for_more(
    client: Client, world: World, nhn: Organisation, calls: dict[str, DataAccessEntry]
) -> None:
    midnight = data_access.day_start(timezone.localdate())
    call(world, at=midnight - datetime.timedelta(minutes=1), path="Patient/yesterday")
    call(world, at=midnight, path="Patient/today")

    html = page(client, world.people["nhn_operator"], nhn)

    assert "Patient/today" in html
    assert "Patient/yesterday" not in html
    assert 'value="1" selected' in html


def test_the_page_reads_the_same_number_of_queries_however_many_calls(
    client: Client,
    world: World,
    calls: dict[str, DataAccessEntry],
    django_assert_max_num_queries: Any,
) -> None:
    for n in range(60):
        call(world, path=f"Patient/{n}", ago=datetime.timedelta(minutes=n))
    client.force_login(world.people["kommune_admin"])
    client.get(url(world.kommune))

    with django_assert_max_num_queries(14):
        response = client.get(url(world.kommune))

    assert len(response.context["calls"]) == 50


def test_a_bad_filter_says_what_is_wrong_beside_it_and_shows_the_rest(
    client: Client, world: World, calls: dict[str, DataAccessEntry]
) -> None:
    html = page(client, world.people["kommune_admin"], world.kommune, days="12", service="nope")

    assert "ds-error-summary" in html
    assert "/fhir/Observation/7" in html  # the period falls back to 30 days, all services


def test_the_calls_are_paged_newest_first(
    client: Client, world: World, calls: dict[str, DataAccessEntry], monkeypatch: Any
) -> None:
    from provisioning import data_access_views

    monkeypatch.setattr(data_access_views, "PAGE_SIZE", 2)
    client.force_login(world.people["kommune_admin"])

    first = client.get(url(world.kommune))
    older = first.context["older"]
    second = client.get(url(world.kommune), {"before": older})

    shown = [row.pk for row, *_ in first.context["calls"]]
    then = [row.pk for row, *_ in second.context["calls"]]
    expected = list(
        DataAccessEntry.objects.filter(kommune=world.kommune.orgnr)
        .order_by("-occurred_at", "-pk")
        .values_list("pk", flat=True)
    )
    assert shown + then == expected[:4]
    assert client.get(url(world.kommune), {"before": "junk"}).status_code == 200


def test_the_menu_leads_every_kind_of_organisation_to_it(
    client: Client, world: World, nhn: Organisation
) -> None:
    for who, organisation in (
        ("kommune_reader", world.kommune),
        ("vendor_developer", world.vendor),
        ("nhn_auditor", nhn),
    ):
        client.force_login(world.people[who])
        home = client.get(reverse("orders:dashboard", args=[organisation.orgnr]))
        assert url(organisation) in home.content.decode()
