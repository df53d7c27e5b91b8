"""NHN's product verification: what the vendor declared beside what NHN verified, and the
operator's verification through product_verify."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.models import ItemStatus
from tenants.models import Organisation, Product
from tests.conftest import World
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def as_(client: Client, person: User) -> Client:
    client.force_login(person)
    return client


def verify_url(nhn: Organisation, product: Product) -> str:
    return reverse("tenants:product_verify", args=[nhn.orgnr, product.pk])


@pytest.fixture
def unverified(vendor: Organisation) -> Product:
    return ProductFactory(
        vendor=vendor, name="Omsorg Pluss", system_type=Product.SystemType.EPJ, verified_at=None
    )


@pytest.mark.parametrize("who", ["nhn_operator", "nhn_auditor"])
def test_nhn_staff_read_the_products_awaiting_verification(
    client: Client,
    people: dict[str, User],
    nhn: Organisation,
    unverified: Product,
    who: str,
    django_assert_max_num_queries: Any,
) -> None:
    verified = ProductFactory(vendor=unverified.vendor, name="Alarm 3000")
    as_(client, people[who])
    with django_assert_max_num_queries(10):
        response = client.get(reverse("tenants:product_verification", args=[nhn.orgnr]))
    assert response.status_code == 200
    assert response.context["listing"].rows == [unverified]
    body = response.content.decode()
    assert "Omsorg Pluss" in body
    assert "Alarm 3000" not in body
    done = client.get(
        reverse("tenants:product_verification", args=[nhn.orgnr]), {"state": "verified"}
    )
    assert verified in done.context["listing"].rows
    assert unverified not in done.context["listing"].rows
    page = client.get(verify_url(nhn, unverified))
    assert page.status_code == 200
    assert ('name="system_type"' in page.content.decode()) is (who == "nhn_operator")


def test_a_product_declared_anew_awaits_verification_again(
    client: Client, people: dict[str, User], nhn: Organisation, vendor: Organisation
) -> None:
    again = ProductFactory(vendor=vendor, reverification_requested_at=timezone.now())
    response = as_(client, people["nhn_auditor"]).get(
        reverse("tenants:product_verification", args=[nhn.orgnr])
    )
    assert again in response.context["listing"].rows
    assert "Erklært på nytt" in response.content.decode()


@pytest.mark.parametrize("who", ["kommune_admin", "vendor_admin", "other_vendor_admin"])
def test_kommune_and_vendor_people_find_no_verification_pages(
    client: Client, people: dict[str, User], nhn: Organisation, unverified: Product, who: str
) -> None:
    as_(client, people[who])
    assert client.get(reverse("tenants:product_verification", args=[nhn.orgnr])).status_code == 404
    assert client.get(verify_url(nhn, unverified)).status_code == 404
    response = client.post(verify_url(nhn, unverified), {"system_type": "EPJ"})
    assert response.status_code == 404
    unverified.refresh_from_db()
    assert not unverified.is_verified


def test_an_auditor_may_not_verify(
    client: Client, people: dict[str, User], nhn: Organisation, unverified: Product
) -> None:
    response = as_(client, people["nhn_auditor"]).post(
        verify_url(nhn, unverified), {"system_type": "EPJ"}
    )
    assert response.status_code == 403
    unverified.refresh_from_db()
    assert not unverified.is_verified


def test_the_declared_and_verified_values_stand_side_by_side(
    client: Client, people: dict[str, User], nhn: Organisation, vendor: Organisation
) -> None:
    product = ProductFactory(vendor=vendor, system_type=Product.SystemType.VFT)
    Product.objects.filter(pk=product.pk).update(
        system_type=Product.SystemType.EPJ, is_epic=True, reverification_requested_at=timezone.now()
    )
    response = as_(client, people["nhn_operator"]).get(verify_url(nhn, product))
    body = response.content.decode()
    assert "Oppgitt av leverandøren" in body
    assert "Verifisert av NHN" in body
    assert response.context["form"].initial == {"system_type": "EPJ", "is_epic": True}


def test_an_operator_verifies_and_the_waiting_production_orders_go_on(
    client: Client, people: dict[str, User], nhn: Organisation, world: World
) -> None:
    Product.objects.filter(pk=world.product.pk).update(
        verified_at=None, verified_system_type="", verified_is_epic=False
    )
    item = world.order("patient.read").items.get()
    assert item.status == ItemStatus.AWAITING_VERIFICATION

    as_(client, people["nhn_operator"])
    response = client.post(verify_url(nhn, world.product), {"system_type": "VFT"})

    assert response.status_code == 302
    assert response["Location"] == reverse("tenants:product_verification", args=[nhn.orgnr])
    world.product.refresh_from_db()
    assert (world.product.verified_system_type, world.product.verified_by) == (
        "VFT",
        people["nhn_operator"],
    )
    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED
    message = client.get(response["Location"]).content.decode()
    assert "er verifisert som" in message


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"system_type": "VFT", "is_epic": "on"}, "is_epic"),  # only an EPJ can be Epic
        ({"system_type": "XYZ"}, "system_type"),
        ({}, "system_type"),
    ],
)
def test_bad_input_gives_field_errors_and_verifies_nothing(
    client: Client,
    people: dict[str, User],
    nhn: Organisation,
    unverified: Product,
    data: dict[str, str],
    field: str,
) -> None:
    response = as_(client, people["nhn_operator"]).post(verify_url(nhn, unverified), data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert f'id="id_{field}_error"' in response.content.decode()
    unverified.refresh_from_db()
    assert not unverified.is_verified


def test_an_unknown_product_is_not_found(
    client: Client, people: dict[str, User], nhn: Organisation
) -> None:
    url = reverse(
        "tenants:product_verify", args=[nhn.orgnr, "00000000-0000-0000-0000-000000000000"]
    )
    assert as_(client, people["nhn_operator"]).get(url).status_code == 404
