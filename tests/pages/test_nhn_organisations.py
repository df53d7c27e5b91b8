"""NHN's organisations: the list, registering by orgnr (a kommune from the register) with its
first administrator, and one organisation's page."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tenants.models import Kommune, Membership, Organisation, Role
from tests.factories import ClientFactory, MembershipFactory, ProductFactory, valid_orgnr

pytestmark = pytest.mark.django_db

NEW_ORGNR = valid_orgnr(7777)


def as_(client: Client, person: User) -> Client:
    client.force_login(person)
    return client


def free_kommune() -> Kommune:
    kommune = Kommune.objects.filter(organisation__isnull=True).order_by("-number").first()
    assert kommune is not None
    return kommune


def register(client: Client, nhn: Organisation, **data: str) -> Any:
    return client.post(reverse("tenants:organisation_new", args=[nhn.orgnr]), data)


# --- Who may see and change ----------------------------------------------------------------------


@pytest.mark.parametrize("who", ["nhn_operator", "nhn_auditor"])
def test_nhn_staff_read_the_organisations_and_each_one(
    client: Client, people: dict[str, User], nhn: Organisation, vendor: Organisation, who: str
) -> None:
    as_(client, people[who])
    listed = client.get(reverse("tenants:organisations", args=[nhn.orgnr]))
    assert listed.status_code == 200
    assert vendor.name in listed.content.decode()
    one = client.get(reverse("tenants:organisation", args=[nhn.orgnr, vendor.orgnr]))
    assert one.status_code == 200
    assert one.context["organisation"] == vendor


def test_an_auditor_registers_nothing_and_appoints_no_one(
    client: Client, people: dict[str, User], nhn: Organisation, vendor: Organisation
) -> None:
    as_(client, people["nhn_auditor"])
    assert client.get(reverse("tenants:organisation_new", args=[nhn.orgnr])).status_code == 403
    response = register(client, nhn, orgnr=NEW_ORGNR, name="Ny AS", kind="vendor")
    assert response.status_code == 403
    detail = reverse("tenants:organisation", args=[nhn.orgnr, vendor.orgnr])
    assert client.post(detail, {"email": "a@example.test"}).status_code == 403
    assert not Organisation.objects.filter(orgnr=NEW_ORGNR).exists()
    listed = client.get(reverse("tenants:organisations", args=[nhn.orgnr]))
    assert reverse("tenants:organisation_new", args=[nhn.orgnr]) not in listed.content.decode()


@pytest.mark.parametrize("who", ["kommune_admin", "vendor_admin", "vendor_developer"])
def test_kommune_and_vendor_people_find_no_organisation_pages(
    client: Client, people: dict[str, User], nhn: Organisation, vendor: Organisation, who: str
) -> None:
    as_(client, people[who])
    for url in (
        reverse("tenants:organisations", args=[nhn.orgnr]),
        reverse("tenants:organisation_new", args=[nhn.orgnr]),
        reverse("tenants:organisation", args=[nhn.orgnr, vendor.orgnr]),
    ):
        assert client.get(url).status_code == 404
    assert register(client, nhn, orgnr=NEW_ORGNR, name="X", kind="vendor").status_code == 404
    # Nor as their own organisation's page: it is NHN's.
    own = Membership.objects.filter(user=people[who]).get().organisation
    assert client.get(reverse("tenants:organisations", args=[own.orgnr])).status_code == 404


def test_an_unknown_organisation_is_not_found(
    client: Client, people: dict[str, User], nhn: Organisation
) -> None:
    as_(client, people["nhn_operator"])
    url = reverse("tenants:organisation", args=[nhn.orgnr, "000000000"])
    assert client.get(url).status_code == 404


# --- The list ------------------------------------------------------------------------------------


def test_the_list_filters_by_kind_searches_by_name_or_orgnr_and_sorts(
    client: Client,
    people: dict[str, User],
    nhn: Organisation,
    kommune: Organisation,
    vendor: Organisation,
    django_assert_max_num_queries: Any,
) -> None:
    as_(client, people["nhn_auditor"])
    url = reverse("tenants:organisations", args=[nhn.orgnr])
    with django_assert_max_num_queries(10):
        kommuner = client.get(url, {"kind": "kommune"})
    rows = kommuner.context["listing"].rows
    assert kommune in rows
    assert vendor not in rows
    grouped = f"{vendor.orgnr[:3]} {vendor.orgnr[3:6]} {vendor.orgnr[6:]}"
    by_orgnr = client.get(url, {"q": grouped})
    assert by_orgnr.context["listing"].rows == [vendor]
    assert grouped in by_orgnr.content.decode()  # shown grouped, as typed
    by_name = client.get(url, {"q": kommune.name[:5].lower()})
    assert kommune in by_name.context["listing"].rows
    newest = client.get(url, {"sort": "-created"}).context["listing"].rows
    assert newest == sorted(newest, key=lambda o: o.created_at, reverse=True)
    none = client.get(url, {"q": "no such organisation"})
    assert none.context["listing"].rows == []
    assert "Ingen organisasjon passer" in none.content.decode()


def test_the_list_pages_in_constant_queries(
    client: Client, people: dict[str, User], nhn: Organisation, django_assert_max_num_queries: Any
) -> None:
    from tests.factories import OrganisationFactory

    OrganisationFactory.create_batch(50)  # with the fixtures: more than two pages of 25
    as_(client, people["nhn_auditor"])
    with django_assert_max_num_queries(10):
        response = client.get(reverse("tenants:organisations", args=[nhn.orgnr]), {"page": "2"})
    assert len(response.context["listing"].rows) == 25


# --- Registering ---------------------------------------------------------------------------------


def test_an_operator_registers_a_kommune_from_the_register_with_its_first_admin(
    client: Client, people: dict[str, User], nhn: Organisation
) -> None:
    entry = free_kommune()
    as_(client, people["nhn_operator"])
    form = client.get(reverse("tenants:organisation_new", args=[nhn.orgnr]))
    assert f'<option value="{entry.number}">{entry.name}</option>' in form.content.decode()

    spaced = f"{NEW_ORGNR[:3]} {NEW_ORGNR[3:6]} {NEW_ORGNR[6:]}"
    response = register(
        client,
        nhn,
        orgnr=spaced,
        name=f" {entry.name} kommune ",
        kind="kommune",
        kommune=entry.number,
        admin_email="Postmottak@Example.test",
    )

    organisation = Organisation.objects.get(orgnr=NEW_ORGNR)
    assert response.status_code == 302
    assert response["Location"] == reverse("tenants:organisation", args=[nhn.orgnr, NEW_ORGNR])
    assert (organisation.kind, organisation.kommune, organisation.name) == (
        "kommune",
        entry,
        f"{entry.name} kommune",
    )
    admin = Membership.objects.get(organisation=organisation)
    assert (admin.email, admin.role, admin.user) == (
        "postmottak@example.test",
        Role.KOMMUNE_ADMIN,
        None,
    )
    assert AuditEvent.objects.filter(action="membership.bootstrapped").exists()
    page = client.get(response["Location"])
    text = page.content.decode()
    assert "er registrert" in text
    assert "postmottak@example.test" in text
    assert page.context["people"] == {"active": 0, "invited": 1}


def test_a_vendor_is_registered_with_a_vendor_administrator(
    client: Client, people: dict[str, User], nhn: Organisation
) -> None:
    as_(client, people["nhn_operator"])
    register(
        client, nhn, orgnr=NEW_ORGNR, name="Trygghet AS", kind="vendor", admin_email="a@t.test"
    )
    membership = Membership.objects.get(organisation__orgnr=NEW_ORGNR)
    assert membership.role == Role.VENDOR_ADMIN


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"orgnr": "958935421", "kind": "vendor"}, "orgnr"),  # the check digit is wrong
        ({"orgnr": "95893542", "kind": "vendor"}, "orgnr"),  # eight digits
        ({"kind": "kommune", "kommune": "9999"}, "kommune"),  # not in the register
        ({"kind": "kommune", "kommune": "03a1"}, "kommune"),
        ({"kind": "kommune"}, "kommune"),  # a kommune needs its number
        ({"kind": "vendor", "kommune": "0301"}, "kommune"),  # only a kommune has one
        ({"kind": "council"}, "kind"),
        ({"kind": "vendor", "admin_email": "not an address"}, "admin_email"),
        ({"kind": "vendor", "name": ""}, "name"),
    ],
)
def test_bad_input_gives_field_errors_and_registers_nothing(
    client: Client,
    people: dict[str, User],
    nhn: Organisation,
    data: dict[str, str],
    field: str,
) -> None:
    as_(client, people["nhn_operator"])
    before = Organisation.objects.count()
    posted = {"orgnr": NEW_ORGNR, "name": "Ny organisasjon", **data}
    response = register(client, nhn, **posted)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    body = response.content.decode()
    assert 'class="ds-error-summary"' in body
    assert f'id="id_{field}_error"' in body
    assert Organisation.objects.count() == before
    if posted.get("name"):
        assert f'value="{posted["name"]}"' in body  # what was typed is kept


def test_a_duplicate_orgnr_or_kommune_is_refused_beside_its_field(
    client: Client, people: dict[str, User], nhn: Organisation, kommune: Organisation
) -> None:
    as_(client, people["nhn_operator"])
    twice = register(client, nhn, orgnr=kommune.orgnr, name="Igjen", kind="vendor")
    assert "orgnr" in twice.context["form"].errors
    entry = kommune.kommune
    assert entry is not None
    again = register(
        client, nhn, orgnr=NEW_ORGNR, name="Igjen", kind="kommune", kommune=entry.number
    )
    assert "er allerede registrert" in " ".join(again.context["form"].errors["kommune"])
    assert not Organisation.objects.filter(orgnr=NEW_ORGNR).exists()


def test_a_refused_administrator_leaves_no_organisation_behind(
    client: Client, people: dict[str, User], nhn: Organisation, monkeypatch: Any
) -> None:
    from django.core.exceptions import ValidationError

    from tenants.views import nhn as views

    def refuse(**kwargs: Any) -> None:
        raise ValidationError({"email": "Refused."})

    monkeypatch.setattr(views, "membership_invite", refuse)
    as_(client, people["nhn_operator"])
    response = register(
        client, nhn, orgnr=NEW_ORGNR, name="Ny AS", kind="vendor", admin_email="a@t.test"
    )
    assert response.context["form"].errors["admin_email"] == ["Refused."]
    assert not Organisation.objects.filter(orgnr=NEW_ORGNR).exists()


# --- One organisation ----------------------------------------------------------------------------


def test_the_organisation_page_counts_people_products_and_clients(
    client: Client, people: dict[str, User], nhn: Organisation, vendor: Organisation
) -> None:
    product = ProductFactory(vendor=vendor, verified_at=None)
    ClientFactory(product=product)
    MembershipFactory(organisation=vendor, user=None, role=Role.VENDOR_DEVELOPER)
    response = as_(client, people["nhn_auditor"]).get(
        reverse("tenants:organisation", args=[nhn.orgnr, vendor.orgnr])
    )
    assert response.context["people"] == {"active": 2, "invited": 1}
    assert response.context["clients"] == 1
    assert list(response.context["products"]) == [product]
    assert response.context["has_admin"] is True
    assert product.name in response.content.decode()


def test_an_operator_appoints_the_first_admin_only_while_there_is_none(
    client: Client, people: dict[str, User], nhn: Organisation, vendor: Organisation
) -> None:
    as_(client, people["nhn_operator"])
    register(client, nhn, orgnr=NEW_ORGNR, name="Ny AS", kind="vendor")
    url = reverse("tenants:organisation", args=[nhn.orgnr, NEW_ORGNR])
    page = client.get(url)
    assert page.context["has_admin"] is False
    assert 'name="email"' in page.content.decode()

    bad = client.post(url, {"email": "nope"})
    assert bad.status_code == 200
    assert "email" in bad.context["form"].errors
    done = client.post(url, {"email": "sjef@ny.test"})
    assert done.status_code == 302
    assert Membership.objects.get(organisation__orgnr=NEW_ORGNR).role == Role.VENDOR_ADMIN

    # The vendor of the fixtures has a logged-in admin: NHN appoints no one there.
    existing = reverse("tenants:organisation", args=[nhn.orgnr, vendor.orgnr])
    assert 'name="email"' not in client.get(existing).content.decode()
    refused = client.post(existing, {"email": "another@vendor.test"})
    assert refused.status_code == 200
    assert "har allerede en administrator" in " ".join(refused.context["form"].errors["email"])
    assert not Membership.objects.filter(email="another@vendor.test").exists()
