"""The kommune's start page: what we have, what waits for me, what to do next."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders import services
from orders.models import GrantStatus, ServiceAvailability
from tenants.models import Environment, Organisation, Product
from tests.conftest import World
from tests.factories import ClientFactory, GrantFactory, ProductFactory

pytestmark = pytest.mark.django_db


def start(client: Client, who: Any, kommune: Organisation) -> str:
    client.force_login(who)
    response = client.get(reverse("orders:dashboard", args=[kommune.orgnr]))
    assert response.status_code == 200
    return response.content.decode()


def row_of(html: str, header: str) -> str:
    """The table row whose row header is ``header``."""
    start = html.index(f'<th scope="row">{header}</th>')
    return html[start : html.index("</tr>", start)]


def test_the_start_page_shows_which_vendors_use_each_service_and_the_signed_instruction(
    client: Client, world: World
) -> None:
    GrantFactory(client=world.client, kommune=world.kommune, status=GrantStatus.ACTIVE)

    html = start(client, world.people["kommune_admin"], world.kommune)

    assert world.vendor.name in row_of(html, "Pasient")
    assert world.vendor.name not in row_of(html, "Besøksplan")
    assert "Signert" in html
    assert f"Versjon {world.instruction.version}, signert av Kari Nordmann" in html
    assert world.vendor.name in html[html.index('id="delegations-heading"') :]


def test_the_start_page_counts_what_waits_for_the_admin_and_links_to_the_approvals(
    client: Client, world: World
) -> None:
    services.delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])
    world.order("patient.read,episode-of-care.read")

    html = start(client, world.people["kommune_reader"], world.kommune)

    approvals = reverse("orders:approvals", args=[world.kommune.orgnr])
    assert f'<a class="ds-link" href="{approvals}">2 linjer venter på din godkjenning</a>' in html
    assert "2 linjer i bestillinger venter på din godkjenning." in html


def test_a_new_kommune_is_told_what_to_do_first(
    client: Client, people: dict[str, Any], kommune: Organisation
) -> None:
    html = start(client, people["kommune_admin"], kommune)

    assert "Ikke signert" in html
    assert "Signer databehandlerinstruksen" in html
    assert "Registrer hvilken EPJ dere bruker" in html
    assert reverse("orders:delegation_new", args=[kommune.orgnr]) in html
    assert "Ingen leverandør har aktiv tilgang ennå" in html
    client.force_login(people["kommune_reader"])
    html = client.get(reverse("orders:dashboard", args=[kommune.orgnr])).content.decode()
    assert reverse("orders:delegation_new", args=[kommune.orgnr]) not in html  # 403 for them


def test_the_start_page_says_what_opens_when_for_the_items_that_wait(
    client: Client, world: World
) -> None:
    ServiceAvailability.objects.filter(
        service__code="care-plan", environment=Environment.PRODUCTION
    ).update(available_from=datetime.date(2030, 3, 1))
    world.order("care-plan.read")

    html = start(client, world.people["kommune_admin"], world.kommune)

    assert "Besøksplan i produksjon åpner 1. mars 2030; 1 linje venter på den." in html
    assert "Åpner 1. mars 2030" in html


def test_the_start_page_shows_the_epj_and_its_switch_plan(
    client: Client, people: dict[str, Any], kommune: Organisation, vendor: Organisation
) -> None:
    now = ProductFactory(vendor=vendor, name="Gerica", system_type=Product.SystemType.EPJ)
    later = ProductFactory(vendor=vendor, name="Epic", system_type=Product.SystemType.EPJ)
    kommune.epj_product, kommune.epj_switch_product = now, later
    kommune.epj_switch_date = datetime.date(2027, 3, 1)
    kommune.save()

    html = start(client, people["kommune_admin"], kommune)

    assert f"EPJ nå: Gerica ({vendor.name})" in html
    assert f"Til Epic ({vendor.name}) 1. mars 2027" in html


def test_the_start_page_reads_as_many_queries_for_a_busy_kommune_as_for_a_quiet_one(
    client: Client, world: World, django_assert_max_num_queries: Any
) -> None:
    client.force_login(world.people["kommune_admin"])
    url = reverse("orders:dashboard", args=[world.kommune.orgnr])
    with CaptureQueriesContext(connection) as quiet:
        client.get(url)

    for _ in range(5):
        other = ClientFactory(product=ProductFactory(vendor=world.other_vendor))
        GrantFactory(client=other, kommune=world.kommune, status=GrantStatus.ACTIVE)
        GrantFactory(client=ClientFactory(product=world.product), kommune=world.kommune)
    services.delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])
    world.order("patient.write,care-plan.read,condition.read")
    with django_assert_max_num_queries(len(quiet)):
        html = client.get(url).content.decode()

    assert world.other_vendor.name in html


@pytest.mark.parametrize("who", ["other_kommune_admin", "vendor_admin", "nhn_auditor"])
def test_the_start_page_of_a_kommune_is_not_found_for_anyone_else(
    client: Client, people: dict[str, Any], kommune: Organisation, who: str
) -> None:
    client.force_login(people[who])

    assert client.get(reverse("orders:dashboard", args=[kommune.orgnr])).status_code == 404
