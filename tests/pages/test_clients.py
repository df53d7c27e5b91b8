"""The vendor's clients: "Which connections do we have, with which keys?" List, register with
public keys (pasted, uploaded or made in the browser), a client's keys and grants, key rotation
with an overlap, and removal after a preview."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from orders.forms.vendor import MAX_JWKS_FILE_BYTES
from orders.models import GrantStatus, ItemStatus, ProvisioningJob
from tenants.models import ClientKey, Environment, OAuthClient, Organisation, Product
from tests.conftest import World
from tests.factories import ClientFactory, GrantFactory, KommuneOrganisationFactory, ProductFactory
from tests.keys import ec_public_jwk, jwks, rsa_private_jwk, rsa_public_jwk

pytestmark = pytest.mark.django_db


def url(name: str, vendor: Organisation, *args: Any) -> str:
    return reverse(f"orders:{name}", args=[vendor.orgnr, *args])


def as_(client: Client, who: User) -> Client:
    client.force_login(who)
    return client


def registration(product: Product, **changes: Any) -> dict[str, Any]:
    """What the register form posts for a good client (the keys pasted)."""
    return {
        "product": str(product.pk),
        "environment": "test",
        "name": "Alarm test",
        "jwks": json.dumps(jwks(ec_public_jwk("alarm-1"))),
        **changes,
    }


# --- The list ------------------------------------------------------------------------------------


def test_the_list_shows_the_vendors_clients_with_their_keys_and_kommuner(
    client: Client, world: World
) -> None:
    GrantFactory(client=world.client, kommune=world.kommune)
    GrantFactory(client=world.client, kommune=world.other_kommune, access="write")
    gone = ClientFactory(product=world.product, name="Gone")
    OAuthClient.objects.filter(pk=gone.pk).update(removed_at=timezone.now())

    for who in ("vendor_admin", "vendor_developer"):
        response = as_(client, world.people[who]).get(url("clients", world.vendor))
        html = response.content.decode()
        assert response.status_code == 200
        assert world.client.name in html
        assert world.other_client.name not in html
        assert "Gone" not in html  # removed clients only when asked for
        row = html[html.index(world.client.name) :]
        assert re.search(r"<td>1</td>\s*<td>2</td>", row)  # one key, two kommuner

    removed = client.get(url("clients", world.vendor), {"removed": "yes"}).content.decode()
    assert "Gone" in removed
    assert world.client.name not in removed


def test_the_list_filters_by_product_and_environment_and_sorts(
    client: Client, world: World, django_assert_max_num_queries: Any
) -> None:
    sensor = ProductFactory(vendor=world.vendor, name="Sensor")
    ClientFactory(product=sensor, name="Sensor test", environment=Environment.TEST)
    for n in range(30):
        GrantFactory(
            client=ClientFactory(product=world.product, name=f"Alarm {n:02}"),
            kommune=KommuneOrganisationFactory(),
        )
    as_(client, world.people["vendor_admin"])
    clients = url("clients", world.vendor)

    with django_assert_max_num_queries(12):
        first = client.get(clients, {"sort": "-name"}).content.decode()
    by_product = client.get(clients, {"product": str(sensor.pk)}).content.decode()
    by_environment = client.get(clients, {"environment": "test"}).content.decode()
    nonsense = client.get(clients, {"product": "not-a-uuid", "environment": "staging"})

    assert first.index("Sensor test") < first.index("Alarm 29")
    assert "Alarm 00" not in first  # on the second page
    assert "Sensor test" in by_product
    assert "Alarm 01" not in by_product
    assert "Sensor test" in by_environment
    assert "Alarm 01" not in by_environment
    assert nonsense.status_code == 200


def test_an_empty_list_says_what_to_do(
    client: Client, people: dict[str, Any], vendor: Organisation
) -> None:
    html = as_(client, people["vendor_admin"]).get(url("clients", vendor)).content.decode()
    assert "Registrer produktet først" in html
    ProductFactory(vendor=vendor)
    html = client.get(url("clients", vendor)).content.decode()
    assert "Dere har ingen klienter ennå" in html
    assert url("client_new", vendor) in html


def test_clients_of_another_vendor_are_not_found(client: Client, world: World) -> None:
    as_(client, world.people["vendor_admin"])
    theirs = world.other_client
    for name in ("client", "client_key_add", "client_remove"):
        assert client.get(url(name, world.vendor, theirs.pk)).status_code == 404
    for who in ("other_vendor_admin", "kommune_admin", "kommune_reader", "nhn_auditor"):
        as_(client, world.people[who])
        assert client.get(url("clients", world.vendor)).status_code == 404
        assert client.get(url("client", world.vendor, world.client.pk)).status_code == 404
        assert client.get(url("client_new", world.vendor)).status_code == 404


# --- Registering a client ------------------------------------------------------------------------


def test_a_client_is_registered_with_pasted_keys_and_the_page_says_what_happens_next(
    client: Client, world: World
) -> None:
    response = as_(client, world.people["vendor_developer"]).post(
        url("client_new", world.vendor), registration(world.product), follow=True
    )

    registered = OAuthClient.objects.get(name="Alarm test")
    assert registered.environment == Environment.TEST
    assert registered.product == world.product
    assert list(registered.keys.values_list("kid", flat=True)) == ["alarm-1"]
    assert ProvisioningJob.objects.filter(client=registered, reason="client.registered").exists()
    assert AuditEvent.objects.filter(action="client.registered").count() == 1
    assert response.redirect_chain[-1][0] == url("client", world.vendor, registered.pk)
    html = response.content.decode()
    assert "Klienten Alarm test er registrert" in html
    assert "autorisasjonsserveren" in html
    assert "<code>alarm-1</code>" in html


def test_a_client_is_registered_from_an_uploaded_json_file(client: Client, world: World) -> None:
    upload = SimpleUploadedFile(
        "keys.json", json.dumps(jwks(rsa_public_jwk("file-key"))).encode(), "application/json"
    )

    response = as_(client, world.people["vendor_admin"]).post(
        url("client_new", world.vendor),
        registration(world.product, jwks="", jwks_file=upload),
    )

    assert response.status_code == 302
    registered = OAuthClient.objects.get(name="Alarm test")
    assert list(registered.keys.values_list("kid", flat=True)) == ["file-key"]


def test_a_key_set_with_a_private_member_is_refused_on_its_field_and_not_shown_again(
    client: Client, world: World
) -> None:
    private = jwks(rsa_private_jwk("leaked", seed=2))

    response = as_(client, world.people["vendor_admin"]).post(
        url("client_new", world.vendor), registration(world.product, jwks=json.dumps(private))
    )

    assert response.status_code == 200
    errors = response.context["form"].errors["jwks"]
    assert any("privat nøkkelmateriale" in e or "private key material" in e for e in errors)
    html = response.content.decode()
    assert 'id="id_jwks_error"' in html
    assert 'class="ds-error-summary"' in html
    assert private["keys"][0]["d"] not in html  # the secret does not travel back
    assert 'value="Alarm test"' in html  # the rest of what was typed is kept
    assert not OAuthClient.objects.filter(name="Alarm test").exists()


def oversized_file() -> SimpleUploadedFile:
    return SimpleUploadedFile("big.json", b" " * (MAX_JWKS_FILE_BYTES + 1) + b"{}")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"jwks": "{not json"}, "jwks", "ikke gyldig JSON"),
        ({"jwks": json.dumps({"keys": []})}, "jwks", '{"keys": [...]}'),
        ({"jwks": ""}, "jwks", "Oppgi de offentlige nøklene"),
        ({"jwks": json.dumps(jwks(rsa_public_jwk(alg="HS256")))}, "jwks", "HS256"),
        ({"environment": "staging"}, "environment", "Velg et gyldig valg"),
        ({"name": "   "}, "name", "påkrevd"),
        ({"product": "00000000-0000-0000-0000-000000000000"}, "product", "Velg et gyldig valg"),
        (
            {"jwks": "", "jwks_file": lambda: SimpleUploadedFile("keys.json", b"{oops")},
            "jwks_file",
            "ikke gyldig JSON",
        ),
        ({"jwks": "", "jwks_file": oversized_file}, "jwks_file", "høyst 65536 byte"),
        (
            {"jwks": "", "jwks_file": lambda: SimpleUploadedFile("keys.txt", b"{}")},
            "jwks_file",
            ".json",
        ),
        (
            {"jwks_file": lambda: SimpleUploadedFile("keys.json", b'{"keys": []}')},
            "jwks_file",
            "ikke begge deler",
        ),
    ],
)
def test_bad_input_gets_an_error_on_its_field_and_registers_nothing(
    client: Client, world: World, changes: dict[str, Any], field: str, message: str
) -> None:
    data = registration(world.product)
    for name, value in changes.items():
        data[name] = value() if callable(value) else value

    response = as_(client, world.people["vendor_admin"]).post(url("client_new", world.vendor), data)

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert f'id="id_{field}_error"' in response.content.decode()
    assert OAuthClient.objects.count() == 2  # the world's two
    assert not ProvisioningJob.objects.exists()


def test_a_product_of_another_vendor_cannot_be_chosen(client: Client, world: World) -> None:
    theirs = world.other_client.product
    assert theirs is not None

    response = as_(client, world.people["vendor_admin"]).post(
        url("client_new", world.vendor), registration(theirs)
    )

    assert response.status_code == 200
    assert "product" in response.context["form"].errors
    assert not OAuthClient.objects.filter(name="Alarm test").exists()


def test_the_register_page_works_without_javascript_and_has_no_inline_script(
    client: Client, world: World
) -> None:
    html = as_(client, world.people["vendor_admin"]).get(url("client_new", world.vendor))
    page = html.content.decode()

    # Key generation is shown by static/js/keygen.js only; without it the page says so.
    assert re.search(r'<div class="keygen" data-keygen hidden', page)
    assert "Med JavaScript påslått kan du lage et nøkkelpar" in page
    assert 'enctype="multipart/form-data"' in page
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts
    assert all("src=" in tag for tag in scripts)
    assert '<script src="/static/js/keygen.js" defer></script>' in page
    assert not re.search(r"\sstyle=|<style|\son[a-z]+=", page)
    # What the browser test names: the button, the algorithms, the downloads, the submit button.
    for name in (
        "Lag nøkkelpar i nettleseren",
        "RS256 (RSA, 2048 bit)",
        "ES256 (ECDSA, P-256)",
        "Last ned privat nøkkel (PEM)",
        "Last ned privat nøkkel (JWK)",
        "Registrer klient",
    ):
        assert name in page


def test_a_client_with_no_product_to_choose_is_sent_to_register_one(
    client: Client, people: dict[str, Any], vendor: Organisation
) -> None:
    html = as_(client, people["vendor_admin"]).get(url("client_new", vendor)).content.decode()
    assert reverse("tenants:products", args=[vendor.orgnr]) in html
    assert "Registrer klient" not in html


# --- One client -----------------------------------------------------------------------------------


def test_a_client_shows_its_keys_and_its_access_per_kommune(client: Client, world: World) -> None:
    GrantFactory(client=world.client, kommune=world.kommune, status=GrantStatus.ACTIVE)
    GrantFactory(
        client=world.client,
        kommune=world.other_kommune,
        status=GrantStatus.FAILED,
        status_reason_code="keys_expired",
    )
    GrantFactory(client=world.client, kommune=world.kommune, status=GrantStatus.REVOKED)

    response = as_(client, world.people["vendor_developer"]).get(
        url("client", world.vendor, world.client.pk)
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "<code>key-1</code>" in html
    assert "RS256" in html
    assert world.kommune.name in html
    assert world.other_kommune.name in html
    assert '<span class="ds-tag" data-color="success">Aktiv</span>' in html
    assert '<span class="ds-tag" data-color="danger">Feilet</span>' in html
    assert "Alle de offentlige nøklene til klienten er utløpt" in html  # the reason, worded
    assert "Trukket tilbake" not in html  # revoked only when asked for
    assert "Den siste nøkkelen blir" in html  # no remove button for the only key
    assert url("client_remove", world.vendor, world.client.pk) not in html  # developers don't
    shown = client.get(url("client", world.vendor, world.client.pk), {"show": "all"})
    assert "Trukket tilbake" in shown.content.decode()


# --- Key rotation ---------------------------------------------------------------------------------


def test_a_new_key_is_added_beside_the_old_one(client: Client, world: World) -> None:
    response = as_(client, world.people["vendor_developer"]).post(
        url("client_key_add", world.vendor, world.client.pk),
        {"jwks": json.dumps(jwks(ec_public_jwk("key-2")))},
        follow=True,
    )

    assert set(world.client.keys.values_list("kid", flat=True)) == {"key-1", "key-2"}
    html = response.content.decode()
    assert "Den nye nøkkelen er lagt til, og de gamle nøklene virker fortsatt" in html
    assert "Fjern nøkkel key-1" in html


def test_a_new_key_can_be_uploaded_and_a_bad_one_changes_nothing(
    client: Client, world: World
) -> None:
    as_(client, world.people["vendor_admin"])
    add = url("client_key_add", world.vendor, world.client.pk)

    same_kid = client.post(add, {"jwks": json.dumps(jwks(ec_public_jwk("key-1")))})
    private = client.post(
        add,
        {"jwks_file": SimpleUploadedFile("k.json", json.dumps(jwks(rsa_private_jwk())).encode())},
    )
    uploaded = client.post(
        add, {"jwks_file": SimpleUploadedFile("k.json", json.dumps(jwks(ec_public_jwk())).encode())}
    )

    assert same_kid.status_code == 200
    assert "key-1" in same_kid.context["form"].errors["jwks"][0]
    assert private.status_code == 200
    assert "jwks_file" in private.context["form"].errors
    assert uploaded.status_code == 302
    assert set(world.client.keys.values_list("kid", flat=True)) == {"key-1", "ec-1"}


def test_an_old_key_is_removed_but_never_the_last(client: Client, world: World) -> None:
    as_(client, world.people["vendor_developer"])
    old = world.client.keys.get()
    remove = url("client_key_remove", world.vendor, world.client.pk, old.pk)

    refused = client.post(remove, follow=True)
    assert "siste gyldige nøkkel" in refused.content.decode()
    assert world.client.keys.count() == 1

    client.post(
        url("client_key_add", world.vendor, world.client.pk),
        {"jwks": json.dumps(jwks(ec_public_jwk("key-2")))},
    )
    removed = client.post(remove, follow=True)

    assert "Nøkkelen key-1 er fjernet" in removed.content.decode()
    assert list(world.client.keys.values_list("kid", flat=True)) == ["key-2"]
    assert client.get(remove).status_code == 405  # a write is a POST


def test_keys_of_another_vendors_client_cannot_be_touched(client: Client, world: World) -> None:
    theirs = world.other_client
    key = theirs.keys.get()
    as_(client, world.people["vendor_admin"])

    added = client.post(
        url("client_key_add", world.vendor, theirs.pk),
        {"jwks": json.dumps(jwks(ec_public_jwk("mine")))},
    )
    removed = client.post(url("client_key_remove", world.vendor, theirs.pk, key.pk))

    assert added.status_code == 404
    assert removed.status_code == 404
    assert list(theirs.keys.values_list("kid", flat=True)) == ["key-1"]


# --- Removing a client ----------------------------------------------------------------------------


def test_removing_a_client_shows_the_access_it_closes_before_it_is_confirmed(
    client: Client, world: World
) -> None:
    world.order("patient.read")
    world.delegation.items.all().delete()
    world.order("care-plan.read")
    remove = url("client_remove", world.vendor, world.client.pk)

    preview = as_(client, world.people["vendor_admin"]).get(remove)

    html = preview.content.decode()
    assert preview.status_code == 200
    assert "Når klienten fjernes, stenges 1 tilgang" in html
    assert "i 1 kommune." in html
    assert "1 bestilt tilgang som fortsatt venter, trekkes tilbake." in html
    assert world.kommune.name in html
    world.client.refresh_from_db()
    assert world.client.removed_at is None  # a preview changes nothing

    confirmed = client.post(remove, follow=True)

    world.client.refresh_from_db()
    assert world.client.removed_at is not None
    assert world.client.grants.get().status == GrantStatus.REVOKING
    assert world.client.access_requests.get(
        items__service__code="care-plan"
    ).items.get().status == (ItemStatus.WITHDRAWN)
    assert confirmed.redirect_chain[-1][0] == url("clients", world.vendor)
    assert f"Klienten {world.client.name} er fjernet" in confirmed.content.decode()


def test_only_a_vendor_admin_removes_a_client(client: Client, world: World) -> None:
    remove = url("client_remove", world.vendor, world.client.pk)
    as_(client, world.people["vendor_developer"])

    assert client.get(remove).status_code == 403
    assert client.post(remove).status_code == 403
    world.client.refresh_from_db()
    assert world.client.removed_at is None


def test_a_removed_client_is_not_removed_twice_and_its_keys_stay(
    client: Client, world: World
) -> None:
    as_(client, world.people["vendor_admin"])
    client.post(url("client_remove", world.vendor, world.client.pk))

    again = client.post(url("client_remove", world.vendor, world.client.pk), follow=True)
    add = client.get(url("client_key_add", world.vendor, world.client.pk), follow=True)

    assert "Klienten er allerede fjernet." in again.content.decode()
    assert "Klienten er fjernet; nøklene kan ikke endres." in add.content.decode()
    assert ClientKey.objects.filter(client=world.client).count() == 1
