"""The vendor's products: list, register, declare a change, and NHN's verification state."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tenants.models import Organisation, Product
from tests.factories import ClientFactory, ProductFactory

pytestmark = pytest.mark.django_db


def products_url(vendor: Organisation) -> str:
    return reverse("tenants:products", args=[vendor.orgnr])


def new_url(vendor: Organisation) -> str:
    return reverse("tenants:product_new", args=[vendor.orgnr])


def product_url(product: Product) -> str:
    return reverse("tenants:product", args=[product.vendor.orgnr, product.pk])


def as_(client: Client, who: User) -> Client:
    client.force_login(who)
    return client


def test_the_vendor_admin_sees_its_products_with_nhns_verification(
    client: Client, people: dict[str, Any], vendor: Organisation, other_vendor: Organisation
) -> None:
    verified = ProductFactory(vendor=vendor, name="Trygghet Alarm")
    ProductFactory(vendor=vendor, name="Trygghet Sensor", verified_at=None)
    ProductFactory(vendor=other_vendor, name="Someone else's")
    ClientFactory(product=verified)

    response = as_(client, people["vendor_admin"]).get(products_url(vendor))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Trygghet Alarm" in html
    assert "Trygghet Sensor" in html
    assert "Someone else&#x27;s" not in html
    assert '<span class="ds-tag" data-color="success">Verifisert av NHN</span>' in html
    assert '<span class="ds-tag" data-color="warning">Venter på NHNs verifisering</span>' in html
    assert new_url(vendor) in html


def test_the_products_list_filters_sorts_and_keeps_its_queries(
    client: Client,
    people: dict[str, Any],
    vendor: Organisation,
    django_assert_max_num_queries: Any,
) -> None:
    for n in range(30):
        ClientFactory(product=ProductFactory(vendor=vendor, name=f"Product {n:02}"))
    ProductFactory(vendor=vendor, name="Journal", system_type=Product.SystemType.EPJ)
    as_(client, people["vendor_admin"])

    with django_assert_max_num_queries(10):
        page = client.get(products_url(vendor), {"sort": "-name"}).content.decode()
    epj = client.get(products_url(vendor), {"system_type": "EPJ"}).content.decode()
    awaiting = client.get(products_url(vendor), {"status": "awaiting"}).content.decode()
    nonsense = client.get(products_url(vendor), {"system_type": "XYZ", "sort": "password"})

    assert page.index("Product 29") < page.index("Product 28")
    assert "Journal" not in page  # the second page
    assert "Journal" in epj
    assert "Product 01" not in epj
    assert "Ingen produkter passer med filteret." in awaiting
    assert nonsense.status_code == 200


def test_a_vendor_developer_reads_products_but_registers_and_changes_none(
    client: Client, people: dict[str, Any], vendor: Organisation
) -> None:
    product = ProductFactory(vendor=vendor)
    as_(client, people["vendor_developer"])

    listed = client.get(products_url(vendor))
    shown = client.get(product_url(product))

    assert listed.status_code == 200
    assert shown.status_code == 200
    assert new_url(vendor) not in listed.content.decode()
    assert "Meld en endring" not in shown.content.decode()
    assert client.get(new_url(vendor)).status_code == 403
    assert client.post(new_url(vendor), {"name": "X", "system_type": "VFT"}).status_code == 403
    assert client.post(product_url(product), {"name": "X", "system_type": "EPJ"}).status_code == 403
    product.refresh_from_db()
    assert product.system_type == Product.SystemType.VFT
    assert not Product.objects.filter(name="X").exists()


def test_products_of_another_vendor_are_not_found(
    client: Client, people: dict[str, Any], vendor: Organisation, other_vendor: Organisation
) -> None:
    theirs = ProductFactory(vendor=other_vendor)
    as_(client, people["vendor_admin"])
    assert client.get(reverse("tenants:product", args=[vendor.orgnr, theirs.pk])).status_code == 404
    for who in ("other_vendor_admin", "kommune_admin", "nhn_operator"):
        as_(client, people[who])
        assert client.get(products_url(vendor)).status_code == 404
        assert client.get(new_url(vendor)).status_code == 404


def test_registering_a_product_says_what_happens_next(
    client: Client, people: dict[str, Any], vendor: Organisation
) -> None:
    response = as_(client, people["vendor_admin"]).post(
        new_url(vendor), {"name": " Trygghet Alarm ", "system_type": "VFT"}, follow=True
    )

    product = Product.objects.get(vendor=vendor)
    assert product.name == "Trygghet Alarm"
    assert product.system_type == Product.SystemType.VFT
    assert product.is_epic is False
    assert response.redirect_chain[-1][0] == product_url(product)
    html = response.content.decode()
    assert "Produktet Trygghet Alarm er registrert" in html
    assert "NHN verifiserer systemtypen" in html
    assert AuditEvent.objects.filter(action="product.registered").count() == 1


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "system_type": "VFT"}, "name", "Dette feltet er påkrevd."),
        ({"name": "Alarm", "system_type": "XYZ"}, "system_type", "Velg et gyldig valg."),
        ({"name": "Alarm", "system_type": "VFT", "is_epic": "on"}, "is_epic", "Bare en EPJ"),
        ({"name": "Taken", "system_type": "VFT"}, "name", "allerede et produkt med dette navnet"),
    ],
)
def test_a_bad_product_gets_an_error_on_its_field_and_nothing_is_registered(
    client: Client,
    people: dict[str, Any],
    vendor: Organisation,
    data: dict[str, str],
    field: str,
    message: str,
) -> None:
    ProductFactory(vendor=vendor, name="Taken")

    response = as_(client, people["vendor_admin"]).post(new_url(vendor), data)

    assert response.status_code == 200
    form = response.context["form"]
    assert message in " ".join(form.errors[field])
    html = response.content.decode()
    assert 'class="ds-error-summary"' in html
    assert f'id="id_{field}_error"' in html
    assert Product.objects.filter(vendor=vendor).count() == 1


def test_declaring_a_new_type_counts_in_test_and_waits_for_nhn_in_production(
    client: Client, people: dict[str, Any], vendor: Organisation
) -> None:
    product = ProductFactory(vendor=vendor, name="Alarm", system_type=Product.SystemType.VFT)

    response = as_(client, people["vendor_admin"]).post(
        product_url(product), {"name": "Alarm", "system_type": "DHO"}, follow=True
    )

    product.refresh_from_db()
    assert product.system_type == Product.SystemType.DHO
    assert product.verified_system_type == Product.SystemType.VFT
    assert product.reverification_requested_at is not None
    html = response.content.decode()
    assert "Endringen er registrert og gjelder i testmiljøet nå" in html
    assert '<span class="ds-tag" data-color="warning">Endringen venter på NHN</span>' in html


def test_a_bad_declaration_changes_nothing(
    client: Client, people: dict[str, Any], vendor: Organisation
) -> None:
    product = ProductFactory(vendor=vendor, name="Alarm", system_type=Product.SystemType.VFT)
    ProductFactory(vendor=vendor, name="Other")
    as_(client, people["vendor_admin"])

    epic = client.post(
        product_url(product), {"name": "Alarm", "system_type": "VFT", "is_epic": "on"}
    )
    taken = client.post(product_url(product), {"name": "Other", "system_type": "VFT"})

    assert epic.status_code == 200
    assert "is_epic" in epic.context["form"].errors
    assert taken.status_code == 200
    assert "name" in taken.context["form"].errors
    assert 'value="Other"' in taken.content.decode()  # what was typed is kept
    product.refresh_from_db()
    assert (product.name, product.is_epic, product.reverification_requested_at) == (
        "Alarm",
        False,
        None,
    )
    assert not AuditEvent.objects.filter(action="product.declared").exists()
