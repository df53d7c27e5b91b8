"""Access: who can read or write our data right now; revoke after a preview."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from orders.models import Access, Grant, GrantStatus, Service
from tenants.models import Environment
from tests.conftest import World
from tests.factories import ClientFactory, GrantFactory, ProductFactory

pytestmark = pytest.mark.django_db


def url(world: World, name: str = "access", *args: Any) -> str:
    return reverse(f"orders:{name}", args=[world.kommune.orgnr, *args])


@pytest.fixture
def grant(world: World) -> Grant:
    return GrantFactory(client=world.client, kommune=world.kommune, service_codes=["TA"])


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("kommune_admin", 200),
        ("kommune_reader", 200),
        ("other_kommune_admin", 404),
        ("vendor_admin", 404),
    ],
)
def test_the_kommunes_grants_are_listed_for_its_members_only(
    client: Client, world: World, grant: Grant, who: str, expected: int
) -> None:
    GrantFactory(client=world.other_client, kommune=world.other_kommune)
    client.force_login(world.people[who])

    response = client.get(url(world))

    assert response.status_code == expected
    if expected == 200:
        html = response.content.decode()
        assert html.count('<th scope="row">') == 1
        row = html[html.index('<th scope="row">') :]
        for text in (world.vendor.name, world.client.name, "Pasient", "Lese", "Produksjon"):
            assert text in row
        assert '<span class="ds-tag" data-color="success">Aktiv</span>' in row
        revoke = url(world, "grant_revoke", grant.pk)
        assert (revoke in html) is (who == "kommune_admin")


def test_the_list_filters_by_vendor_service_status_and_environment(
    client: Client, world: World, grant: Grant
) -> None:
    test_client = ClientFactory(
        product=ProductFactory(vendor=world.other_vendor), environment=Environment.TEST
    )
    care_plan = Service.objects.get(code="care-plan")
    GrantFactory(client=test_client, kommune=world.kommune, service=care_plan)
    GrantFactory(
        client=world.client,
        kommune=world.kommune,
        service=care_plan,
        access=Access.WRITE,
        status=GrantStatus.REVOKED,
    )
    client.force_login(world.people["kommune_reader"])

    def rows(query: str) -> int:
        return client.get(url(world) + query).content.decode().count('<th scope="row">')

    assert rows("") == 2  # the revoked one is not current
    assert rows("?status=all") == 3
    assert rows("?status=revoked") == 1
    assert rows(f"?vendor={world.other_vendor.orgnr}") == 1
    assert rows("?service=patient") == 1
    assert rows("?environment=test") == 1
    assert rows("?environment=test&service=patient") == 0
    empty = client.get(url(world) + "?environment=test&service=patient").content.decode()
    assert "Ingen tilganger passer med disse filtrene." in empty


def test_the_list_sorts_pages_and_guards_its_queries(
    client: Client, world: World, django_assert_max_num_queries: Any
) -> None:
    for service in Service.objects.all():
        for access in Access.values:
            for environment in Environment.values:
                GrantFactory(
                    client=ClientFactory(product=world.product, environment=environment),
                    kommune=world.kommune,
                    service=service,
                    access=access,
                )
    client.force_login(world.people["kommune_admin"])

    with django_assert_max_num_queries(12):
        html = client.get(url(world) + "?sort=service&page=2").content.decode()

    assert "Viser 26–36 av 36" in html
    assert 'aria-sort="ascending"' in html


def test_a_kommune_without_access_is_told_where_access_comes_from(
    client: Client, world: World
) -> None:
    client.force_login(world.people["kommune_admin"])

    html = client.get(url(world)).content.decode()

    assert "Ingen leverandør har tilgang til dataene deres." in html


def test_revoking_shows_what_closes_for_which_client_and_then_closes_it(
    client: Client, world: World, grant: Grant
) -> None:
    GrantFactory(
        client=world.client, kommune=world.kommune, service=Service.objects.get(code="care-plan")
    )
    client.force_login(world.people["kommune_admin"])

    preview = client.get(url(world, "grant_revoke", grant.pk))

    html = preview.content.decode()
    assert preview.status_code == 200
    assert f"{world.vendor.name} (" in html
    assert world.client.name in html
    assert "nhn:ksp/patient.read" in html
    assert "beholder sin 1 andre tilgang her" in html
    grant.refresh_from_db()
    assert grant.status == GrantStatus.ACTIVE

    response = client.post(url(world, "grant_revoke", grant.pk), {"reason": "Avtalen er sagt opp."})

    assert response.status_code == 302
    assert response["Location"] == url(world)
    grant.refresh_from_db()
    assert grant.status == GrantStatus.REVOKING
    assert grant.revoke_reason == "Avtalen er sagt opp."
    assert grant.revoked_by == world.people["kommune_admin"]
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message == (
        f"Tilgangen er trukket tilbake: {world.client.name} fra {world.vendor.name} kan ikke "
        f"lenger lese Pasient for {world.kommune.name}. Gatewayen stopper den i løpet av sekunder."
    )


def test_a_reason_too_long_is_a_field_error_and_revokes_nothing(
    client: Client, world: World, grant: Grant
) -> None:
    client.force_login(world.people["kommune_admin"])

    response = client.post(url(world, "grant_revoke", grant.pk), {"reason": "x" * 301})

    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    grant.refresh_from_db()
    assert grant.status == GrantStatus.ACTIVE


def test_a_grant_revoked_already_says_so_and_is_not_revoked_twice(
    client: Client, world: World, grant: Grant
) -> None:
    client.force_login(world.people["kommune_admin"])
    client.post(url(world, "grant_revoke", grant.pk))
    grant.refresh_from_db()
    revoked_at = grant.revoked_at

    page = client.get(url(world, "grant_revoke", grant.pk)).content.decode()
    again = client.post(url(world, "grant_revoke", grant.pk))

    assert "allerede stengt eller stenges nå" in page
    assert again.status_code == 200
    assert "allerede trukket tilbake" in again.content.decode()
    grant.refresh_from_db()
    assert grant.revoked_at == revoked_at


@pytest.mark.parametrize(
    ("who", "expected"),
    [("kommune_reader", 403), ("other_kommune_admin", 404), ("vendor_admin", 404)],
)
def test_only_the_kommunes_admin_revokes(
    client: Client, world: World, grant: Grant, who: str, expected: int
) -> None:
    client.force_login(world.people[who])

    assert client.get(url(world, "grant_revoke", grant.pk)).status_code == expected
    assert client.post(url(world, "grant_revoke", grant.pk)).status_code == expected

    grant.refresh_from_db()
    assert grant.status == GrantStatus.ACTIVE


def test_a_grant_of_another_kommune_is_not_found(client: Client, world: World) -> None:
    theirs = GrantFactory(client=world.client, kommune=world.other_kommune)
    client.force_login(world.people["kommune_admin"])

    assert client.post(url(world, "grant_revoke", theirs.pk)).status_code == 404

    theirs.refresh_from_db()
    assert theirs.status == GrantStatus.ACTIVE
