"""Delegations: which vendor may order what for us; delegate, and revoke after a preview."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.models import Delegation, GrantStatus, ItemStatus, Service
from orders.services import delegation_revoke
from tenants.models import Organisation
from tenants.templatetags.tilgang import orgnr as grouped
from tests.conftest import World
from tests.factories import ClientFactory, DelegationFactory, GrantFactory, OrganisationFactory

pytestmark = pytest.mark.django_db


def url(name: str, kommune: Organisation, *args: Any) -> str:
    return reverse(f"orders:{name}", args=[kommune.orgnr, *args])


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
def test_the_delegations_are_listed_for_the_kommunes_members_only(
    client: Client, world: World, who: str, expected: int
) -> None:
    client.force_login(world.people[who])

    response = client.get(url("delegations", world.kommune))

    assert response.status_code == expected
    if expected == 200:
        html = response.content.decode()
        assert world.vendor.name in html
        assert "Gjelder" in html
        assert ("Ny delegering" in html) is (who == "kommune_admin")
        assert (url("delegation_revoke", world.kommune, world.delegation.pk) in html) is (
            who == "kommune_admin"
        )


def test_the_list_filters_by_vendor_and_status_sorts_and_pages(
    client: Client, world: World, django_assert_max_num_queries: Any
) -> None:
    for _ in range(30):
        DelegationFactory(kommune=world.kommune, vendor=world.other_vendor)
    delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])
    client.force_login(world.people["kommune_reader"])

    with django_assert_max_num_queries(12):
        first = client.get(url("delegations", world.kommune)).content.decode()
    revoked = client.get(url("delegations", world.kommune) + "?status=revoked").content.decode()
    by_name = client.get(
        url("delegations", world.kommune) + f"?vendor={world.vendor.name.upper()}"
    ).content.decode()
    by_orgnr = client.get(
        url("delegations", world.kommune) + f"?vendor={grouped(world.vendor.orgnr)}&sort=-vendor"
    ).content.decode()

    assert "Viser 1–25 av 31" in first
    assert 'rel="next"' in first
    assert world.vendor.name in revoked
    assert world.other_vendor.name not in revoked
    assert world.vendor.name in by_name
    assert world.other_vendor.name not in by_name
    assert world.vendor.name in by_orgnr
    assert world.other_vendor.name not in by_orgnr


def test_an_empty_list_says_what_to_do_next(
    client: Client, people: dict[str, Any], kommune: Organisation
) -> None:
    client.force_login(people["kommune_admin"])

    html = client.get(url("delegations", kommune)).content.decode()

    assert "Dere har ikke delegert noe ennå" in html


def test_an_admin_delegates_to_a_vendor_found_by_its_grouped_orgnr(
    client: Client, world: World
) -> None:
    world.delegation.delete()
    waiting = world.order("patient.read", service_codes=("TA", "RT"))
    assert waiting.items.get().status == ItemStatus.AWAITING_KOMMUNE
    client.force_login(world.people["kommune_admin"])

    response = client.post(
        url("delegation_new", world.kommune),
        {
            "vendor": grouped(world.vendor.orgnr),
            "items": ["patient:read", "observation:write"],
            "service_codes": ["TA"],
            "valid_until": "2030-12-31",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == url("delegations", world.kommune)
    delegation = Delegation.objects.get(kommune=world.kommune, vendor=world.vendor)
    assert delegation.valid_from == timezone.localdate()
    assert delegation.valid_until == datetime.date(2030, 12, 31)
    assert sorted((i.service.code, i.access, i.service_codes) for i in delegation.items.all()) == [
        ("observation", "write", ["TA"]),
        ("patient", "read", ["TA"]),
    ]
    item = waiting.items.get()
    assert item.status == ItemStatus.APPROVED
    assert item.grant is not None
    assert item.grant.service_codes == ["TA"]
    [message] = messages_of(response)
    assert f"Delegeringen til {world.vendor.name} er lagret." in message
    assert "1 linje som ventet på deg, gikk videre av seg selv." in message


def test_a_vendor_is_found_by_a_part_of_its_name_or_as_the_suggestions_offer_it(
    client: Client, people: dict[str, Any], kommune: Organisation
) -> None:
    OrganisationFactory(name="Trygghet AS")
    alarm = OrganisationFactory(name="Alarmsentralen Nord AS")
    client.force_login(people["kommune_admin"])

    client.post(url("delegation_new", kommune), {"vendor": "sentralen", "items": ["patient:read"]})
    client.post(
        url("delegation_new", kommune),
        {"vendor": f"Alarmsentralen Nord AS ({grouped(alarm.orgnr)})", "items": ["care-plan:read"]},
    )

    assert sorted(
        Delegation.objects.filter(vendor=alarm).values_list("items__service__code", flat=True)
    ) == ["care-plan", "patient"]


def test_the_vendor_field_suggests_vendors_as_the_admin_types(
    client: Client, people: dict[str, Any], kommune: Organisation
) -> None:
    trygghet = OrganisationFactory(name="Trygghet AS")
    OrganisationFactory(name="Trygghet Kommune", kind=Organisation.Kind.KOMMUNE)
    client.force_login(people["kommune_admin"])

    html = client.get(
        url("vendor_suggestions", kommune) + "?vendor=trygg", HTTP_HX_REQUEST="true"
    ).content.decode()

    assert html.strip() == f'<option value="Trygghet AS ({grouped(trygghet.orgnr)})"></option>'
    form = client.get(url("delegation_new", kommune)).content.decode()
    assert 'list="vendor-options"' in form
    assert f'hx-get="{url("vendor_suggestions", kommune)}"' in form


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"vendor": "Finnes Ikke AS"}, "vendor", "Ingen leverandør heter Finnes Ikke AS."),
        ({"vendor": "999 999 999"}, "vendor", "Ingen leverandør har organisasjonsnummeret"),
        ({"vendor": "Organisation"}, "vendor", "Flere leverandører passer"),
        ({"items": []}, "items", "Velg minst én tjeneste, å lese eller å skrive."),
        ({"items": ["patient:delete"]}, "items", "Velg et gyldig valg."),
        ({"service_codes": ["XX"]}, "service_codes", "Velg et gyldig valg."),
        (
            {"valid_until": "2001-01-01"},
            "valid_until",
            "Delegeringen ville slutte før den trer i kraft.",
        ),
        ({"valid_from": "1. mars"}, "valid_from", "Oppgi en gyldig dato."),
    ],
)
def test_bad_input_gives_field_errors_keeps_what_was_typed_and_changes_nothing(
    client: Client, world: World, data: dict[str, Any], field: str, error: str
) -> None:
    OrganisationFactory(name="Organisation X")  # a second vendor named "Organisation …"
    client.force_login(world.people["kommune_admin"])
    before = Delegation.objects.count()
    sent = {"vendor": world.vendor.orgnr, "items": ["patient:read"], **data}

    response = client.post(url("delegation_new", world.kommune), sent)

    assert response.status_code == 200
    assert field in response.context["form"].errors
    html = response.content.decode()
    assert error in html
    assert 'class="ds-error-summary"' in html
    assert f'href="#id_{field}"' in html
    assert Delegation.objects.count() == before
    if isinstance(sent["vendor"], str) and sent["vendor"]:
        assert f'value="{sent["vendor"]}"' in html


def test_a_reader_may_not_delegate(client: Client, world: World) -> None:
    client.force_login(world.people["kommune_reader"])
    before = Delegation.objects.count()

    assert client.get(url("delegation_new", world.kommune)).status_code == 403
    response = client.post(
        url("delegation_new", world.kommune),
        {"vendor": world.vendor.orgnr, "items": ["patient:read"]},
    )

    assert response.status_code == 403
    assert Delegation.objects.count() == before


def test_revoking_shows_the_grants_it_closes_first_and_then_closes_them(
    client: Client, world: World
) -> None:
    resting = GrantFactory(client=world.client, kommune=world.kommune, delegation=world.delegation)
    approved = GrantFactory(
        client=ClientFactory(product=world.product, name="Alarmklient"),
        kommune=world.kommune,
        service=Service.objects.get(code="care-plan"),
    )
    client.force_login(world.people["kommune_admin"])
    revoke = url("delegation_revoke", world.kommune, world.delegation.pk)

    preview = client.get(revoke)
    html = preview.content.decode()
    assert preview.status_code == 200
    assert world.client.name in html
    assert "Alarmklient" not in html  # approved by a person, it stays
    assert "Trekk tilbake" in html
    world.delegation.refresh_from_db()
    assert world.delegation.revoked_at is None  # a preview changes nothing

    response = client.post(revoke)

    assert response.status_code == 302
    world.delegation.refresh_from_db()
    resting.refresh_from_db()
    approved.refresh_from_db()
    assert world.delegation.revoked_at is not None
    assert resting.status == GrantStatus.REVOKING
    assert approved.status == GrantStatus.ACTIVE
    [message] = messages_of(response)
    assert "1 tilgang som bygde på den, stenges nå: gatewayen stopper den" in message


def test_a_delegation_revoked_already_says_so_and_a_second_revocation_changes_nothing(
    client: Client, world: World
) -> None:
    delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])
    world.delegation.refresh_from_db()
    revoked_at = world.delegation.revoked_at
    client.force_login(world.people["kommune_admin"])
    revoke = url("delegation_revoke", world.kommune, world.delegation.pk)

    assert "ble trukket tilbake" in client.get(revoke).content.decode()
    response = client.post(revoke)

    assert response.status_code == 200
    assert "allerede trukket tilbake" in response.content.decode()
    world.delegation.refresh_from_db()
    assert world.delegation.revoked_at == revoked_at


@pytest.mark.parametrize(
    ("who", "expected"),
    [("kommune_reader", 403), ("other_kommune_admin", 404), ("vendor_admin", 404)],
)
def test_only_the_kommunes_admin_revokes_a_delegation(
    client: Client, world: World, who: str, expected: int
) -> None:
    client.force_login(world.people[who])
    revoke = url("delegation_revoke", world.kommune, world.delegation.pk)

    assert client.get(revoke).status_code == expected
    assert client.post(revoke).status_code == expected

    world.delegation.refresh_from_db()
    assert world.delegation.revoked_at is None


def test_a_delegation_of_another_kommune_is_not_found(client: Client, world: World) -> None:
    theirs = DelegationFactory(kommune=world.other_kommune, vendor=world.vendor)
    client.force_login(world.people["kommune_admin"])

    response = client.post(url("delegation_revoke", world.kommune, theirs.pk))

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
