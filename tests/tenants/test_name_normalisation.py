"""Names are stored in Unicode's composed form (NFC): "Åsen" typed as "A" and a combining ring
above (U+030A) and as "Å" (U+00C5) is one name, stored one way, and a vendor's products may not
have both."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from rest_framework.test import APIClient

from tenants.models import OAuthClient, Organisation, Product
from tenants.services import product_register
from tenants.validators import name_normalise
from tests.conftest import World
from tests.keys import jwks, rsa_public_jwk

pytestmark = pytest.mark.django_db

COMPOSED = "\u00c5sen Helse"  # "Åsen Helse", Å as one character
DECOMPOSED = "A\u030asen Helse"  # the same, as A and a combining ring above


def api(world: World, who: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(world.people[who])
    return client


def test_the_two_spellings_differ_until_normalised() -> None:
    assert COMPOSED != DECOMPOSED
    assert name_normalise(DECOMPOSED) == COMPOSED
    assert name_normalise(COMPOSED) == COMPOSED


@pytest.mark.parametrize(
    ("who", "path", "body", "model"),
    [
        (
            "nhn_operator",
            "/api/v1/organizations/",
            lambda w, name: {"orgnr": "974760673", "name": name, "kind": "vendor"},
            Organisation,
        ),
        (
            "vendor_admin",
            "/api/v1/products/",
            lambda w, name: {"vendor": w.vendor.orgnr, "name": name, "system_type": "VFT"},
            Product,
        ),
        (
            "vendor_admin",
            "/api/v1/clients/",
            lambda w, name: {
                "name": name,
                "product": str(w.product.pk),
                "environment": "test",
                "jwks": jwks(rsa_public_jwk("k1")),
            },
            OAuthClient,
        ),
    ],
    ids=["organisation", "product", "client"],
)
def test_a_decomposed_name_is_stored_and_answered_composed(
    world: World, who: str, path: str, body: Any, model: Any
) -> None:
    response = api(world, who).post(path, body(world, DECOMPOSED), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["name"] == COMPOSED
    stored = model.objects.get(name=COMPOSED)
    assert unicodedata.is_normalized("NFC", stored.name)
    assert model.objects.filter(name=DECOMPOSED).get() == stored  # lookups are normalised too


def test_a_vendor_may_not_have_a_product_under_each_spelling_of_one_name(world: World) -> None:
    product_register(vendor=world.vendor, name=COMPOSED, system_type="VFT")

    response = api(world, "vendor_admin").post(
        "/api/v1/products/",
        {"vendor": world.vendor.orgnr, "name": DECOMPOSED, "system_type": "VFT"},
        format="json",
    )

    assert response.status_code == 400
    assert "name" in response.json(), response.json()
    assert Product.objects.filter(vendor=world.vendor, name=COMPOSED).count() == 1


def test_the_product_page_says_so_beside_the_name(world: World) -> None:
    product_register(vendor=world.vendor, name=DECOMPOSED, system_type="VFT")
    browser = Client()
    browser.force_login(world.people["vendor_admin"])
    before = Product.objects.count()

    response = browser.post(
        f"/o/{world.vendor.orgnr}/products/new/", {"name": COMPOSED, "system_type": "VFT"}
    )

    assert response.status_code == 200
    assert "name" in response.context["form"].errors
    assert Product.objects.count() == before


BEFORE = [("tenants", "0011_names_refuse_invisible_and_lookalike_characters")]
COMPOSED_BY_MIGRATION = [("tenants", "0012_names_stored_composed_nfc")]


def stored_name(table: str, pk: Any) -> str:
    """The name as the database holds it (no field in between to compose it)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT name FROM {table} WHERE id = %s", [pk])  # noqa: S608 - ours
        name: str = cursor.fetchone()[0]
        return name


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_composes_the_names_stored_before_and_leaves_a_clash_as_it_was(
    world: World,
) -> None:
    twin = product_register(vendor=world.vendor, name=COMPOSED, system_type="VFT")
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            for table, pk in (
                ("tenants_organisation", world.vendor.pk),
                ("tenants_product", world.product.pk),
                ("tenants_oauthclient", world.client.pk),
            ):
                cursor.execute(f"UPDATE {table} SET name = %s WHERE id = %s", [DECOMPOSED, pk])  # noqa: S608
        # The vendor's other product: the same name once composed, which the constraint refuses.
        assert stored_name("tenants_product", twin.pk) == COMPOSED

        executor = MigrationExecutor(connection)
        executor.migrate(COMPOSED_BY_MIGRATION)

        assert stored_name("tenants_organisation", world.vendor.pk) == COMPOSED
        assert stored_name("tenants_oauthclient", world.client.pk) == COMPOSED
        assert stored_name("tenants_product", world.product.pk) == DECOMPOSED
        assert stored_name("tenants_product", twin.pk) == COMPOSED
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_a_search_by_either_spelling_finds_the_name(world: World) -> None:
    """What people search by part of a name (``icontains``, ``istartswith``, ...) is composed
    as the names are: "Åsen" typed with a combining ring finds "Åsen" stored composed."""
    world.vendor.name = COMPOSED
    world.vendor.save()

    for lookup in ("icontains", "contains", "istartswith", "startswith", "iexact"):
        part = DECOMPOSED if lookup.endswith("exact") else DECOMPOSED[:5]
        found = Organisation.objects.filter(**{f"name__{lookup}": part})
        assert list(found) == [world.vendor], lookup

    browser = Client()
    browser.force_login(world.people["nhn_operator"])
    nhn = world.people["nhn_operator"].memberships.get().organisation
    page = browser.get(f"/o/{nhn.orgnr}/organisations/", {"q": DECOMPOSED[:5]})
    assert page.status_code == 200
    assert COMPOSED in page.content.decode()
