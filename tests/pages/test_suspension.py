"""The pages where NHN's operators suspend a vendor and lift it: the list of vendors, one vendor
with the preview of what a suspension closes, suspend (with a reason) and lift."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from orders.models import Grant, GrantStatus, Suspension
from orders.services import vendor_suspend
from tenants.models import Organisation
from tests.conftest import World
from tests.factories import ClientFactory, OrganisationFactory, ProductFactory, vendor_order

pytestmark = pytest.mark.django_db


def url(name: str, nhn: Organisation, *args: str) -> str:
    return reverse(f"orders:{name}", args=[nhn.orgnr, *args])


def as_(client: Client, people: dict[str, User], who: str) -> Client:
    client.force_login(people[who])
    return client


@pytest.fixture
def grants(world: World) -> list[Grant]:
    return world.vendor_grants("patient.read,observation.write")


@pytest.mark.parametrize("who", ["nhn_operator", "nhn_auditor"])
def test_the_list_shows_every_vendor_with_its_grants_and_whether_it_is_suspended(
    client: Client, world: World, nhn: Organisation, grants: list[Grant], who: str
) -> None:
    vendor_suspend(vendor=world.other_vendor, actor=world.people["nhn_operator"], reason="x")

    response = as_(client, world.people, who).get(url("vendors", nhn))

    assert response.status_code == 200
    page = response.content.decode()
    assert "<title>Leverandører · Tilgang</title>" in page
    assert world.vendor.name in page
    assert world.other_vendor.name in page
    assert "Suspendert siden" in page
    assert "Ikke suspendert" in page
    [row] = [v for v in response.context["listing"].rows if v.pk == world.vendor.pk]
    assert (row.live_grants, row.kommuner) == (2, 1)


def test_the_list_filters_by_name_orgnr_and_state(
    client: Client, world: World, nhn: Organisation
) -> None:
    vendor_suspend(vendor=world.other_vendor, actor=world.people["nhn_operator"], reason="x")
    operator = as_(client, world.people, "nhn_operator")

    def shown(**query: str) -> set[Any]:
        response = operator.get(url("vendors", nhn), query)
        assert response.status_code == 200
        return {v.pk for v in response.context["listing"].rows}

    assert shown(state="suspended") == {world.other_vendor.pk}
    assert world.vendor.pk in shown(state="active")
    assert world.other_vendor.pk not in shown(state="active")
    spaced = f"{world.vendor.orgnr[:3]} {world.vendor.orgnr[3:6]} {world.vendor.orgnr[6:]}"
    assert shown(q=spaced) == {world.vendor.pk}
    assert shown(q=world.vendor.name) == {world.vendor.pk}
    empty = operator.get(url("vendors", nhn), {"q": "no such vendor"})
    assert "Ingen leverandør passer" in empty.content.decode()
    bad = operator.get(url("vendors", nhn), {"state": "sideways", "sort": "password"})
    assert bad.status_code == 200
    assert bad.context["form"].errors["state"]
    assert "ds-error-summary" in bad.content.decode()


def test_the_list_reads_a_constant_number_of_queries(
    client: Client,
    world: World,
    nhn: Organisation,
    django_assert_max_num_queries: Any,
) -> None:
    operator = as_(client, world.people, "nhn_operator")
    operator.get(url("vendors", nhn))  # the session and the menu settle
    for _ in range(30):
        vendor = OrganisationFactory(kind=Organisation.Kind.VENDOR)
        ClientFactory(product=ProductFactory(vendor=vendor))
    world.vendor_grants("patient.read")

    with django_assert_max_num_queries(12):
        response = operator.get(url("vendors", nhn))

    assert response.status_code == 200
    assert len(response.context["listing"].rows) == 25


def test_the_vendor_page_previews_the_clients_grants_and_kommuner_a_suspension_closes(
    client: Client, world: World, nhn: Organisation, grants: list[Grant]
) -> None:
    response = as_(client, world.people, "nhn_operator").get(url("vendor", nhn, world.vendor.orgnr))

    assert response.status_code == 200
    page = response.content.decode()
    assert f"{world.vendor.name} · Leverandører · Tilgang" in page
    assert world.client.name in page
    assert world.kommune.name in page
    assert "stenger den 2 tilganger" in page
    assert response.context["preview"].grants == 2
    assert ">Suspender</button>" in page
    assert 'aria-current="page"' in page  # the breadcrumbs end on this page


def test_the_auditor_reads_the_vendor_page_without_the_buttons_and_may_not_write(
    client: Client, world: World, nhn: Organisation, grants: list[Grant]
) -> None:
    auditor = as_(client, world.people, "nhn_auditor")

    page = auditor.get(url("vendor", nhn, world.vendor.orgnr)).content.decode()
    suspended = auditor.post(url("vendor_suspend", nhn, world.vendor.orgnr), {"reason": "x"})
    vendor_suspend(vendor=world.vendor, actor=world.people["nhn_operator"], reason="x")
    lifted = auditor.post(url("vendor_lift", nhn, world.vendor.orgnr))

    assert ">Suspender</button>" not in page
    assert world.client.name in page
    assert suspended.status_code == 403
    assert lifted.status_code == 403
    assert Suspension.objects.get().lifted_at is None


@pytest.mark.parametrize(
    "who", ["kommune_admin", "kommune_reader", "vendor_admin", "vendor_developer"]
)
def test_kommune_and_vendor_people_do_not_find_the_pages(
    client: Client, world: World, nhn: Organisation, who: str
) -> None:
    other = as_(client, world.people, who)
    for name, args in [
        ("vendors", ()),
        ("vendor", (world.vendor.orgnr,)),
    ]:
        assert other.get(url(name, nhn, *args)).status_code == 404
    for name in ("vendor_suspend", "vendor_lift"):
        assert other.post(url(name, nhn, world.vendor.orgnr), {"reason": "x"}).status_code == 404
    assert not Suspension.objects.exists()


def test_an_unknown_vendor_or_a_kommune_is_not_found(
    client: Client, world: World, nhn: Organisation
) -> None:
    operator = as_(client, world.people, "nhn_operator")
    assert operator.get(url("vendor", nhn, "000000000")).status_code == 404
    assert operator.get(url("vendor", nhn, world.kommune.orgnr)).status_code == 404
    post = operator.post(url("vendor_suspend", nhn, world.kommune.orgnr), {"reason": "x"})
    assert post.status_code == 404


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
def test_suspending_without_a_good_reason_shows_the_error_and_changes_nothing(
    client: Client, world: World, nhn: Organisation, grants: list[Grant], reason: str
) -> None:
    response = as_(client, world.people, "nhn_operator").post(
        url("vendor_suspend", nhn, world.vendor.orgnr), {"reason": reason}
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "ds-error-summary" in page
    assert 'id="id_reason_error"' in page
    assert response.context["form"].errors["reason"]
    assert not Suspension.objects.exists()
    assert set(Grant.objects.values_list("status", flat=True)) == {GrantStatus.PENDING}
    if reason.strip():
        assert reason in page  # what was typed is kept


def test_suspending_closes_the_grants_says_what_happens_next_and_shows_the_lift_button(
    client: Client, world: World, nhn: Organisation, grants: list[Grant]
) -> None:
    operator = as_(client, world.people, "nhn_operator")

    response = operator.post(
        url("vendor_suspend", nhn, world.vendor.orgnr), {"reason": "Avtalebrudd"}, follow=True
    )

    assert response.redirect_chain == [(url("vendor", nhn, world.vendor.orgnr), 302)]
    page = response.content.decode()
    assert f"{world.vendor.name} er suspendert" in page
    assert "2 tilganger i 1 kommune stenges nå" in page
    assert ">Opphev suspensjonen</button>" in page
    assert "Avtalebrudd" in page
    assert set(Grant.objects.values_list("status", flat=True)) == {GrantStatus.REVOKING}
    again = operator.post(
        url("vendor_suspend", nhn, world.vendor.orgnr), {"reason": "Igjen"}, follow=True
    )
    assert "var allerede suspendert" in again.content.decode()
    assert Suspension.objects.get().reason == "Avtalebrudd"


def test_lifting_restores_the_grants_and_says_so(
    client: Client, world: World, nhn: Organisation, grants: list[Grant]
) -> None:
    operator = as_(client, world.people, "nhn_operator")
    vendor_suspend(vendor=world.vendor, actor=world.people["nhn_operator"], reason="Avtalebrudd")

    response = operator.post(url("vendor_lift", nhn, world.vendor.orgnr), follow=True)

    page = response.content.decode()
    assert "Suspensjonen av" in page
    assert "2 tilganger den stengte, klargjøres på nytt" in page
    assert ">Suspender</button>" in page
    assert Grant.objects.live().filter(client=world.client).count() == 2
    nothing = operator.post(url("vendor_lift", nhn, world.vendor.orgnr), follow=True)
    assert "var ikke suspendert" in nothing.content.decode()


def test_the_page_says_which_grants_lifting_could_not_restore_and_why(
    client: Client, world: World, nhn: Organisation
) -> None:
    removed = ClientFactory(product=world.product)
    vendor_order(
        client=removed,
        kommune=world.kommune,
        actor=world.people["vendor_admin"],
        items="patient.read",
    )
    vendor_suspend(vendor=world.vendor, actor=world.people["nhn_operator"], reason="Avtalebrudd")
    from orders.services import client_remove

    client_remove(client=removed, actor=world.people["vendor_admin"])
    operator = as_(client, world.people, "nhn_operator")

    page = operator.post(url("vendor_lift", nhn, world.vendor.orgnr), follow=True)

    text = page.content.decode()
    assert "kunne ikke gjenopprettes" in text
    assert "Klienten ble fjernet" in text
    assert removed.name in text


def test_the_buttons_are_named_in_either_language(
    client: Client, world: World, nhn: Organisation
) -> None:
    operator = as_(client, world.people, "nhn_operator")
    client.cookies["django_language"] = "en"
    english = operator.get(url("vendor", nhn, world.vendor.orgnr)).content.decode()
    assert ">Suspend</button>" in english
    assert '<label class="ds-label" for="id_reason">Reason</label>' in english
    vendor_suspend(vendor=world.vendor, actor=world.people["nhn_operator"], reason="x")
    assert (
        ">Lift the suspension</button>"
        in operator.get(url("vendor", nhn, world.vendor.orgnr)).content.decode()
    )
    client.cookies["django_language"] = "nb"
    norwegian = operator.get(url("vendor", nhn, world.vendor.orgnr)).content.decode()
    assert ">Opphev suspensjonen</button>" in norwegian


def test_writes_are_posts_with_a_csrf_token(world: World, nhn: Organisation) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(world.people["nhn_operator"])

    assert strict.get(url("vendor_suspend", nhn, world.vendor.orgnr)).status_code == 405
    assert (
        strict.post(url("vendor_suspend", nhn, world.vendor.orgnr), {"reason": "x"}).status_code
        == 403
    )
    assert strict.post(url("vendor_lift", nhn, world.vendor.orgnr)).status_code == 403
    assert not Suspension.objects.exists()
