"""A vendor's orders: the list, one order with each item's decision, withdrawing waiting items
and consenting to a kommune's order for the vendor's client."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from orders import services
from orders.models import AccessRequest, AccessRequestItem, ItemStatus, Service
from tests.conftest import World
from tests.factories import ClientFactory, KommuneOrganisationFactory

pytestmark = pytest.mark.django_db


def list_url(world: World) -> str:
    return reverse("orders:orders", args=[world.vendor.orgnr])


def order_url(world: World, request: AccessRequest) -> str:
    return reverse("orders:order", args=[world.vendor.orgnr, request.pk])


def withdraw_url(world: World, request: AccessRequest) -> str:
    return reverse("orders:order_withdraw", args=[world.vendor.orgnr, request.pk])


def consent_url(world: World, request: AccessRequest) -> str:
    return reverse("orders:order_consent", args=[world.vendor.orgnr, request.pk])


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def other_vendors_order(world: World) -> AccessRequest:
    [request] = services.access_request_create(
        client=world.other_client,
        kommuner=[world.kommune],
        items=[services.ItemInput(Service.objects.get(code="patient"), "read")],
        initiated_by=AccessRequest.Initiator.VENDOR,
        actor=world.people["other_vendor_admin"],
    )
    return request


def waiting_order(world: World) -> AccessRequest:
    """world.client's order for other_kommune, which has delegated nothing: it waits."""
    return world.order("patient.read,care-plan.read", kommune=world.other_kommune)


def kommune_order(world: World) -> AccessRequest:
    """world.kommune's own order for world.client: it waits for the vendor's consent."""
    return world.order("patient.read", initiated_by=AccessRequest.Initiator.KOMMUNE)


# --- The list -----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["vendor_admin", "vendor_developer"])
def test_the_vendor_s_people_see_its_orders_and_not_another_vendor_s(
    client: Client, world: World, who: str
) -> None:
    world.order("patient.read")
    other = other_vendors_order(world)
    client.force_login(world.people[who])

    response = client.get(list_url(world))

    assert response.status_code == 200
    page = text(response)
    assert world.kommune.name in page
    assert world.client.name in page
    assert "Klargjøres: 1" in page
    assert str(other.pk) not in response.content.decode()
    assert world.other_client.name not in page


@pytest.mark.parametrize("who", ["other_vendor_admin", "kommune_admin", "nhn_auditor"])
def test_people_of_other_organisations_do_not_find_the_vendor_s_orders(
    client: Client, world: World, who: str
) -> None:
    request = world.order("patient.read")
    client.force_login(world.people[who])

    assert client.get(list_url(world)).status_code == 404
    assert client.get(order_url(world, request)).status_code == 404


def test_an_order_of_another_vendor_is_not_found_from_this_vendor_s_pages(
    client: Client, world: World
) -> None:
    other = other_vendors_order(world)
    client.force_login(world.people["vendor_admin"])

    assert client.get(order_url(world, other)).status_code == 404
    assert client.post(withdraw_url(world, other), {}).status_code == 404


def test_the_list_filters_by_client_kommune_and_status(client: Client, world: World) -> None:
    world.order("patient.read")
    waiting_order(world)
    second = ClientFactory(product=world.product, name="Andre klient")
    services.access_request_create(
        client=second,
        kommuner=[world.kommune],
        items=[services.ItemInput(Service.objects.get(code="care-plan"), "read")],
        initiated_by=AccessRequest.Initiator.VENDOR,
        actor=world.people["vendor_admin"],
    )
    client.force_login(world.people["vendor_admin"])

    def shown(**query: str) -> list[AccessRequest]:
        return [row[0] for row in client.get(list_url(world), query).context["rows"]]

    assert len(shown()) == 3
    assert {r.client for r in shown(client=str(second.pk))} == {second}
    assert {r.kommune for r in shown(kommune=world.other_kommune.name[:5])} == {world.other_kommune}
    assert {r.kommune for r in shown(kommune=world.other_kommune.kommune.number)} == {
        world.other_kommune
    }
    assert {r.kommune for r in shown(status="awaiting_kommune")} == {world.other_kommune}
    assert shown(status="rejected") == []
    empty = client.get(list_url(world), {"status": "rejected"})
    assert "Ingen bestilling passer med disse filtrene." in text(empty)


def test_a_filter_that_is_not_one_of_the_choices_is_shown_beside_its_field(
    client: Client, world: World
) -> None:
    client.force_login(world.people["vendor_admin"])

    response = client.get(list_url(world), {"status": "granted-by-magic", "client": "nope"})

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="id_status_error"' in page
    assert 'id="id_client_error"' in page


def test_the_list_sorts_by_a_known_column_and_pages(client: Client, world: World) -> None:
    kommuner = [KommuneOrganisationFactory() for _ in range(27)]
    services.access_request_create(
        client=world.client,
        kommuner=kommuner,
        items=[services.ItemInput(Service.objects.get(code="patient"), "read")],
        initiated_by=AccessRequest.Initiator.VENDOR,
        actor=world.people["vendor_admin"],
    )
    client.force_login(world.people["vendor_admin"])

    first = client.get(list_url(world), {"sort": "kommune"})
    second = client.get(list_url(world), {"sort": "kommune", "page": "2"})

    names = [r.kommune.name for r, _tags in first.context["rows"]]
    assert names == sorted(names)
    assert len(names) == 25
    assert len(second.context["rows"]) == 2
    assert 'rel="next"' in first.content.decode()
    assert client.get(list_url(world), {"sort": "password"}).status_code == 200


def test_an_empty_list_says_what_to_do_next(client: Client, world: World) -> None:
    client.force_login(world.people["vendor_admin"])

    response = client.get(list_url(world))

    assert "Ingen bestillinger ennå." in text(response)
    assert reverse("orders:order_new", args=[world.vendor.orgnr]) in response.content.decode()


def test_the_list_s_statements_do_not_grow_with_its_rows(
    client: Client, world: World, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    world.order("patient.read")
    client.force_login(world.people["vendor_admin"])
    client.get(list_url(world))  # warm the session
    with CaptureQueriesContext(connection) as one:
        client.get(list_url(world))
    services.access_request_create(
        client=world.client,
        kommuner=[KommuneOrganisationFactory() for _ in range(20)],
        items=[
            services.ItemInput(Service.objects.get(code="patient"), "read"),
            services.ItemInput(Service.objects.get(code="observation"), "read"),
        ],
        initiated_by=AccessRequest.Initiator.VENDOR,
        actor=world.people["vendor_admin"],
    )

    with django_assert_max_num_queries(len(one)):
        response = client.get(list_url(world))
    assert len(response.context["rows"]) == 21


def test_items_waiting_for_the_vendor_are_pointed_out(client: Client, world: World) -> None:
    kommune_order(world)
    client.force_login(world.people["vendor_admin"])

    response = client.get(list_url(world))

    assert "1 linje bestilt av en kommune venter på at dere godtar den." in text(response)


# --- One order ----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["vendor_admin", "vendor_developer"])
def test_an_order_shows_each_item_s_decision_and_reason(
    client: Client, world: World, who: str
) -> None:
    request = world.order("patient.read,observation.read")
    client.force_login(world.people[who])

    response = client.get(order_url(world, request))

    assert response.status_code == 200
    page = text(response)
    assert f"Bestilling for {world.kommune.name}" in page
    assert "Pasient: lese Godkjent" in page
    assert "Målinger: lese Avslått Et VFT-produkt kan ikke lese Målinger" in page
    assert "Virker det ennå?" in page


def test_the_withdraw_form_is_for_admins_and_waiting_items_only(
    client: Client, world: World
) -> None:
    request = waiting_order(world)
    client.force_login(world.people["vendor_developer"])
    assert "Trekk tilbake" not in text(client.get(order_url(world, request)))
    client.force_login(world.people["vendor_admin"])
    assert "Trekk tilbake de valgte linjene" in text(client.get(order_url(world, request)))
    granted = world.order("patient.read")
    assert "Trekk tilbake de valgte linjene" not in text(client.get(order_url(world, granted)))


def test_an_admin_withdraws_waiting_items_and_is_told_what_happened(
    client: Client, world: World
) -> None:
    request = waiting_order(world)
    patient = request.items.get(service__code="patient")
    client.force_login(world.people["vendor_admin"])

    response = client.post(withdraw_url(world, request), {"withdraw-items": [patient.pk]})

    assert response.status_code == 302
    assert response["Location"] == order_url(world, request)
    patient.refresh_from_db()
    assert patient.status == ItemStatus.WITHDRAWN
    assert request.items.get(service__code="care-plan").status == ItemStatus.AWAITING_KOMMUNE
    page = text(client.get(response["Location"]))
    assert f"1 linje er trukket tilbake. {world.other_kommune.name} ser den ikke lenger" in page


def test_withdrawing_nothing_or_what_does_not_wait_is_a_field_error_and_changes_nothing(
    client: Client, world: World
) -> None:
    request = waiting_order(world)
    granted = world.order("patient.read")
    client.force_login(world.people["vendor_admin"])
    before = AuditEvent.objects.count()

    nothing = client.post(withdraw_url(world, request), {})
    not_waiting = client.post(
        withdraw_url(world, request), {"withdraw-items": [granted.items.get().pk]}
    )
    not_an_id = client.post(withdraw_url(world, request), {"withdraw-items": ["x"]})

    for response in (nothing, not_waiting, not_an_id):
        assert response.status_code == 200
        assert 'id="id_withdraw-items_error"' in response.content.decode()
    assert set(request.items.values_list("status", flat=True)) == {ItemStatus.AWAITING_KOMMUNE}
    assert AuditEvent.objects.count() == before


def test_a_developer_may_not_withdraw(client: Client, world: World) -> None:
    request = waiting_order(world)
    client.force_login(world.people["vendor_developer"])

    response = client.post(
        withdraw_url(world, request), {"withdraw-items": [request.items.first().pk]}
    )

    assert response.status_code == 403
    assert set(request.items.values_list("status", flat=True)) == {ItemStatus.AWAITING_KOMMUNE}


def test_the_kommune_s_own_order_is_not_the_vendor_s_to_withdraw(
    client: Client, world: World
) -> None:
    request = kommune_order(world)
    client.force_login(world.people["vendor_admin"])

    response = client.post(
        withdraw_url(world, request), {"withdraw-items": [request.items.get().pk]}
    )

    assert response.status_code == 403
    assert request.items.get().status == ItemStatus.AWAITING_VENDOR


def test_an_admin_consents_to_the_kommune_s_order_for_its_client(
    client: Client, world: World
) -> None:
    request = kommune_order(world)
    item = request.items.get()
    client.force_login(world.people["vendor_admin"])
    page = text(client.get(order_url(world, request)))
    assert "Godta kommunens bestilling" in page
    assert "Venter på leverandøren" in page

    response = client.post(consent_url(world, request), {"consent-items": [item.pk]}, follow=True)

    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED
    assert item.vendor_approved_by == world.people["vendor_admin"]
    assert "Du har godtatt. 1 av 1 klargjøres nå" in text(response)


def test_consenting_needs_an_item_and_an_admin(client: Client, world: World) -> None:
    request = kommune_order(world)
    client.force_login(world.people["vendor_admin"])

    nothing = client.post(consent_url(world, request), {})

    assert nothing.status_code == 200
    assert 'id="id_consent-items_error"' in nothing.content.decode()
    client.force_login(world.people["vendor_developer"])
    item = request.items.get()
    assert client.post(consent_url(world, request), {"consent-items": [item.pk]}).status_code == 403
    assert AccessRequestItem.objects.get(pk=item.pk).status == ItemStatus.AWAITING_VENDOR
    vendors_own = world.order("patient.read", kommune=world.other_kommune)
    client.force_login(world.people["vendor_admin"])
    assert client.post(consent_url(world, vendors_own), {}).status_code == 403


def test_acting_on_an_order_is_a_post(client: Client, world: World) -> None:
    request = waiting_order(world)
    client.force_login(world.people["vendor_admin"])

    assert client.get(withdraw_url(world, request)).status_code == 405
    assert client.get(consent_url(world, request)).status_code == 405
