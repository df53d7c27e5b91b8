"""Approvals: what vendors want and why the rules did not decide it; approve or reject one at a
time or several at once."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from orders.models import AccessRequest, AccessRequestItem, Instruction, ItemStatus
from orders.services import delegation_revoke
from tests.conftest import World

pytestmark = pytest.mark.django_db


@pytest.fixture
def waiting(world: World) -> AccessRequest:
    """A vendor's order of two items that no delegation covers: both wait for the kommune."""
    delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])
    return world.order("patient.read,care-plan.read", service_codes=("TA", "GPS"))


def url(world: World, name: str = "approvals", *args: Any) -> str:
    return reverse(f"orders:{name}", args=[world.kommune.orgnr, *args])


def statuses(order: AccessRequest) -> dict[str, str]:
    return dict(order.items.values_list("service__code", "status"))


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("kommune_admin", 200),
        ("kommune_reader", 200),
        ("other_kommune_admin", 404),
        ("vendor_admin", 404),
    ],
)
def test_the_waiting_items_are_listed_with_the_policys_reason_for_the_kommunes_members(
    client: Client, world: World, waiting: AccessRequest, who: str, expected: int
) -> None:
    client.force_login(world.people[who])

    response = client.get(url(world))

    assert response.status_code == expected
    if expected == 200:
        html = response.content.decode()
        assert html.count('<th scope="row">') == 2
        assert f"Ingen delegering fra {world.kommune.name} til {world.vendor.name} dekker" in html
        assert ('name="items"' in html) is (who == "kommune_admin")
        assert ("Godkjenn valgte" in html) is (who == "kommune_admin")


def test_the_reason_reads_in_english_for_an_english_reader(
    client: Client, world: World, waiting: AccessRequest
) -> None:
    client.force_login(world.people["kommune_admin"])

    html = client.get(url(world), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert f"No delegation from {world.kommune.name} to {world.vendor.name} covers" in html
    assert "Approve the chosen" in html


def test_the_list_guards_its_queries_and_pages(
    client: Client, world: World, waiting: AccessRequest, django_assert_max_num_queries: Any
) -> None:
    for _ in range(15):
        world.order("episode-of-care.read,observation.write")
    client.force_login(world.people["kommune_admin"])

    with django_assert_max_num_queries(14):
        html = client.get(url(world) + "?sort=-vendor").content.decode()

    assert "Viser 1–25 av 32" in html


def test_an_admin_approves_several_items_at_once_and_is_told_what_happens_next(
    client: Client, world: World, waiting: AccessRequest
) -> None:
    other = world.order("episode-of-care.read")
    ids = [str(i.pk) for i in AccessRequestItem.objects.filter(request__in=[waiting, other])]
    client.force_login(world.people["kommune_admin"])

    response = client.post(url(world), {"items": ids, "decision": "approve", "reason": ""})

    assert response.status_code == 302
    assert set(statuses(waiting).values()) == {ItemStatus.APPROVED}
    assert statuses(other) == {"episode-of-care": ItemStatus.APPROVED}
    assert messages_of(response) == ["3 linjer godkjent: tilgangene klargjøres nå."]
    grant = waiting.items.get(service__code="patient").grant
    assert grant is not None
    assert grant.approved_by == world.people["kommune_admin"]
    assert grant.service_codes == ["TA", "GPS"]


def test_rejecting_needs_a_reason_and_without_one_changes_nothing(
    client: Client, world: World, waiting: AccessRequest
) -> None:
    ids = [str(i.pk) for i in waiting.items.all()]
    client.force_login(world.people["kommune_admin"])

    response = client.post(url(world), {"items": ids, "decision": "reject", "reason": "  "})

    assert response.status_code == 200
    html = response.content.decode()
    assert "Skriv en begrunnelse: leverandøren ser den sammen med avslaget." in html
    assert 'href="#id_reason"' in html
    assert html.count(" checked") == 2  # the choice is kept
    assert set(statuses(waiting).values()) == {ItemStatus.AWAITING_KOMMUNE}


def test_an_admin_rejects_one_item_with_a_reason_the_vendor_then_reads(
    client: Client, world: World, waiting: AccessRequest
) -> None:
    item = waiting.items.get(service__code="care-plan")
    client.force_login(world.people["kommune_admin"])

    response = client.post(
        url(world), {"items": [str(item.pk)], "decision": "reject", "reason": "Ikke avtalt."}
    )

    assert response.status_code == 302
    assert statuses(waiting) == {
        "patient": ItemStatus.AWAITING_KOMMUNE,
        "care-plan": ItemStatus.REJECTED,
    }
    assert messages_of(response) == [
        f"1 linje avslått. {world.vendor.name} ser begrunnelsen din i bestillingen."
    ]
    vendor = Client()
    vendor.force_login(world.people["vendor_admin"])
    body = vendor.get(f"/api/v1/access-requests/{waiting.pk}/").json()
    [rejected] = [i for i in body["items"] if i["service"] == "care-plan"]
    assert rejected["reason"].endswith(": Ikke avtalt.")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"decision": "approve"}, "Velg linjene du vil avgjøre."),
        ({"items": ["not-an-id"], "decision": "approve"}, "er ikke en gyldig UUID"),
        ({"items": ["6d1f8f50-0000-4000-8000-000000000000"], "decision": "approve"}, "venter ikke"),
        ({"decision": "sneak"}, "Velg et gyldig valg."),
    ],
)
def test_bad_input_gives_errors_and_changes_nothing(
    client: Client, world: World, waiting: AccessRequest, data: dict[str, Any], error: str
) -> None:
    client.force_login(world.people["kommune_admin"])

    response = client.post(url(world), data)

    assert response.status_code == 200
    assert error in response.content.decode()
    assert set(statuses(waiting).values()) == {ItemStatus.AWAITING_KOMMUNE}


def test_an_item_of_another_kommune_cannot_be_chosen(
    client: Client, world: World, waiting: AccessRequest
) -> None:
    theirs = world.order("patient.read", kommune=world.other_kommune).items.get()
    client.force_login(world.people["kommune_admin"])

    response = client.post(url(world), {"items": [str(theirs.pk)], "decision": "approve"})

    assert response.status_code == 200
    theirs.refresh_from_db()
    assert theirs.status == ItemStatus.AWAITING_KOMMUNE
    assert client.get(url(world, "approval", theirs.pk)).status_code == 404


def test_a_refusal_by_the_service_changes_none_of_the_chosen_items(
    client: Client, world: World, waiting: AccessRequest
) -> None:
    """Without a signed instruction a production item cannot be approved: the service says so
    on the form, and the item chosen with it is not approved either."""
    Instruction.objects.filter(kommune=world.kommune).update(signed_at=None, signed_by=None)
    unsigned = world.order("episode-of-care.read").items.get()
    assert unsigned.reason_code == "instruction_missing"
    ids = [str(unsigned.pk), *(str(i.pk) for i in waiting.items.all())]
    client.force_login(world.people["kommune_admin"])

    response = client.post(url(world), {"items": ids, "decision": "approve"})

    assert response.status_code == 200
    assert "har ingen signert databehandlerinstruks" in response.content.decode()
    assert set(statuses(waiting).values()) == {ItemStatus.AWAITING_KOMMUNE}


def test_a_reader_may_not_decide(client: Client, world: World, waiting: AccessRequest) -> None:
    item = waiting.items.first()
    assert item is not None
    client.force_login(world.people["kommune_reader"])

    bulk = client.post(url(world), {"items": [str(item.pk)], "decision": "approve"})
    one = client.post(url(world, "approval", item.pk), {"decision": "approve"})

    assert (bulk.status_code, one.status_code) == (403, 403)
    assert set(statuses(waiting).values()) == {ItemStatus.AWAITING_KOMMUNE}
    page = client.get(url(world, "approval", item.pk)).content.decode()
    assert "Bare en kommuneadministrator kan godkjenne eller avslå." in page


def test_one_item_on_its_own_page_is_approved_with_fewer_service_codes(
    client: Client, world: World, waiting: AccessRequest
) -> None:
    item = waiting.items.get(service__code="patient")
    client.force_login(world.people["kommune_admin"])
    page = client.get(url(world, "approval", item.pk)).content.decode()
    assert f"{world.vendor.name} ber om å lese Pasient" in page
    assert "Godkjenn" in page
    assert "Avslå" in page

    response = client.post(
        url(world, "approval", item.pk), {"decision": "approve", "service_codes": ["GPS"]}
    )

    assert response.status_code == 302
    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED
    assert item.grant is not None
    assert item.grant.service_codes == ["GPS"]
    assert statuses(waiting)["care-plan"] == ItemStatus.AWAITING_KOMMUNE


def test_one_item_cannot_get_a_service_code_it_did_not_ask_for(
    client: Client, world: World, waiting: AccessRequest
) -> None:
    item = waiting.items.get(service__code="patient")
    client.force_login(world.people["kommune_admin"])

    response = client.post(
        url(world, "approval", item.pk), {"decision": "approve", "service_codes": ["MD"]}
    )

    assert response.status_code == 200
    assert "service_codes" in response.context["form"].errors
    item.refresh_from_db()
    assert item.status == ItemStatus.AWAITING_KOMMUNE


def test_an_item_decided_already_says_so_and_offers_no_buttons(
    client: Client, world: World, waiting: AccessRequest
) -> None:
    item = waiting.items.get(service__code="patient")
    client.force_login(world.people["kommune_admin"])
    client.post(url(world, "approval", item.pk), {"decision": "reject", "reason": "Nei."})

    html = client.get(url(world, "approval", item.pk)).content.decode()
    again = client.post(url(world, "approval", item.pk), {"decision": "approve"})

    assert "Denne linjen venter ikke lenger på deg." in html
    assert 'value="approve"' not in html
    assert again.status_code == 200
    item.refresh_from_db()
    assert item.status == ItemStatus.REJECTED


def test_nothing_waiting_says_what_to_do_next(client: Client, world: World) -> None:
    client.force_login(world.people["kommune_admin"])

    html = client.get(url(world)).content.decode()

    assert "Ingenting venter på deg." in html
    assert url(world, "delegations") in html
