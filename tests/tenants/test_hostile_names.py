"""Hostile names and numbers: invisible and direction-changing characters and look-alike letters
in names are refused beside the field; script and SQL text is stored as given and shown
escaped; organisation and kommune numbers take only ASCII digits; key sets with private parts,
small RSA keys or a kid twice are refused."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from orders.models import Instruction
from tenants.models import ClientKey, Kommune, OAuthClient, Organisation, Product
from tests.conftest import World
from tests.keys import b64url_uint, jwks, rsa_private_jwk, rsa_public_jwk

pytestmark = pytest.mark.django_db


def api(world: World, who: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(world.people[who])
    return client


def browser(world: World, who: str) -> Client:
    client = Client()
    client.force_login(world.people[who])
    return client


def nhn_of(world: World) -> Organisation:
    return world.people["nhn_operator"].memberships.get().organisation


# Each kind of name, created through the API: (who, path, body with the name, model).
def organisation_body(world: World, name: str) -> dict[str, Any]:
    return {"orgnr": "974760673", "name": name, "kind": "vendor"}


def product_body(world: World, name: str) -> dict[str, Any]:
    return {"vendor": world.vendor.orgnr, "name": name, "system_type": "VFT"}


def client_body(world: World, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "product": str(world.product.pk),
        "environment": "test",
        "jwks": jwks(rsa_public_jwk("k1")),
    }


NAMES = {
    "organisation": ("nhn_operator", "/api/v1/organizations/", organisation_body, Organisation),
    "product": ("vendor_admin", "/api/v1/products/", product_body, Product),
    "client": ("vendor_admin", "/api/v1/clients/", client_body, OAuthClient),
}

HOSTILE_NAMES = {
    "right-to-left-override": "Trygg\u202emoc.lve",
    "right-to-left-mark": "Trygg\u200fHelse",
    "left-to-right-isolate": "Trygg\u2066Helse\u2069",
    "zero-width-space": "Trygg\u200bHelse",
    "zero-width-joiner": "Trygg\u200dHelse",
    "byte-order-mark": "\ufeffTrygg Helse",
    "soft-hyphen": "Trygg\u00adHelse",
    "line-separator": "Trygg\u2028Helse",
    "private-use": "Trygg\ue000Helse",
    "cyrillic-e-in-latin": "Trygg H\u0435lse",  # looks exactly like "Trygg Helse"
    "greek-omicron-in-latin": "Tr\u03bfndheim Helse",
}

GOOD_NAMES = {
    "norwegian": "Bjørnøya Ærlige Åsen Helse",
    "northern-sami": "Guovdageainnu suohkan – Áltá Čázáš Đ Ŋ Š Ŧ Ž",
    "combining-ring": "A\u030asen Helse",  # "Åsen" with a combining ring above
    "cyrillic-alone": "Мурманск",  # a name wholly in one other alphabet is still a name
    "punctuation": "Helse & Omsorg (Vest) AS, avd. 2/3 «ny»",
}


@pytest.mark.parametrize("kind", list(NAMES))
@pytest.mark.parametrize("name", list(HOSTILE_NAMES.values()), ids=list(HOSTILE_NAMES))
def test_a_name_with_invisible_or_look_alike_characters_is_a_field_error(
    world: World, kind: str, name: str
) -> None:
    who, path, body, model = NAMES[kind]
    before = model.objects.count()

    response = api(world, who).post(path, body(world, name), format="json")

    assert response.status_code == 400, response.content
    assert "name" in response.json()
    assert "U+" in " ".join(response.json()["name"])
    assert model.objects.count() == before


@pytest.mark.parametrize("kind", list(NAMES))
@pytest.mark.parametrize("name", list(GOOD_NAMES.values()), ids=list(GOOD_NAMES))
def test_norwegian_and_sami_names_are_kept_as_written(world: World, kind: str, name: str) -> None:
    who, path, body, model = NAMES[kind]

    response = api(world, who).post(path, body(world, name), format="json")

    assert response.status_code == 201, response.content
    assert model.objects.filter(name=name).count() == 1


def test_the_product_page_shows_a_bidi_refusal_beside_the_name(world: World) -> None:
    response = browser(world, "vendor_admin").post(
        f"/o/{world.vendor.orgnr}/products/new/",
        {"name": "Trygg\u202emoc.lve", "system_type": "VFT"},
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert 'id="id_name_error"' in text
    assert "usynlig tegn eller kontrolltegn (U+202E)" in text
    assert not Product.objects.filter(name__startswith="Trygg").exists()


# --- Script and SQL text: stored exactly, shown escaped ----------------------------------------

HOSTILE_TEXT = "<script>alert(1)</script>'; DROP TABLE x; --"
ESCAPED_TEXT = "&lt;script&gt;alert(1)&lt;/script&gt;&#x27;; DROP TABLE x; --"


def instruction_with(world: World, text: str) -> tuple[Instruction, str]:
    response = api(world, "kommune_admin").post(
        "/api/v1/instructions/",
        {
            "kommune": world.kommune.orgnr,
            "services": ["patient"],
            "subject_matter": text,
            "duration": text,
            "nature_and_purpose": text,
            "personal_data_categories": [text],
            "data_subject_categories": [text],
            "sharing_scope": "kommune_only",
            "retention": text,
            "contact_name": text,
            "contact_email": "kari@k.example",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    instruction = Instruction.objects.get(pk=response.json()["id"])
    return instruction, f"/o/{world.kommune.orgnr}/instruction/{instruction.version}/"


def test_script_and_sql_text_in_every_free_text_field_is_stored_as_given_and_shown_escaped(
    world: World,
) -> None:
    operator = api(world, "nhn_operator")
    vendor = api(world, "vendor_admin")
    assert (
        operator.post(
            "/api/v1/organizations/", organisation_body(world, HOSTILE_TEXT), format="json"
        ).status_code
        == 201
    )
    assert (
        vendor.post(
            "/api/v1/products/", product_body(world, HOSTILE_TEXT), format="json"
        ).status_code
        == 201
    )
    assert (
        vendor.post("/api/v1/clients/", client_body(world, HOSTILE_TEXT), format="json").status_code
        == 201
    )
    instruction, instruction_page = instruction_with(world, HOSTILE_TEXT)

    stored = [
        Organisation.objects.get(orgnr="974760673").name,
        Product.objects.get(vendor=world.vendor, system_type="VFT", name__contains="DROP").name,
        OAuthClient.objects.get(name__contains="DROP").name,
        instruction.subject_matter,
        instruction.duration,
        instruction.nature_and_purpose,
        instruction.retention,
        instruction.contact_name,
        *instruction.personal_data_categories,
        *instruction.data_subject_categories,
    ]
    assert stored == [HOSTILE_TEXT] * len(stored)

    pages = {
        "organisations": (
            "nhn_operator",
            f"/o/{nhn_of(world).orgnr}/organisations/",
        ),
        "products": ("vendor_admin", f"/o/{world.vendor.orgnr}/products/"),
        "clients": ("vendor_admin", f"/o/{world.vendor.orgnr}/clients/"),
        "instruction": ("kommune_admin", instruction_page),
    }
    for page, (who, url) in pages.items():
        response = browser(world, who).get(url)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert ESCAPED_TEXT in html, page
        assert "<script>alert(1)" not in html, page


# --- Organisation and kommune numbers ----------------------------------------------------------


@pytest.mark.parametrize(
    "orgnr",
    [
        "٩٧٤٧٦٠٦٧٣",  # Arabic-Indic digits: str.isdigit() says yes
        "９７４７６０６７３",  # full-width digits
        "974760674",  # wrong check digit
        "974 760 673",  # spaces: the API takes the number as stored
        "97476067",  # eight digits
        "0974760673",  # ten
        "974760673\u200b",  # a zero-width space after it
        "",
    ],
    ids=[
        "arabic-indic",
        "full-width",
        "check-digit",
        "spaces",
        "eight",
        "ten",
        "zero-width",
        "empty",
    ],
)
def test_the_api_takes_an_orgnr_only_as_nine_ascii_digits_with_the_check_digit(
    world: World, orgnr: str
) -> None:
    before = Organisation.objects.count()
    response = api(world, "nhn_operator").post(
        "/api/v1/organizations/",
        {"orgnr": orgnr, "name": "Ny leverandør", "kind": "vendor"},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "orgnr" in response.json()
    assert Organisation.objects.count() == before


def test_the_page_takes_an_orgnr_with_spaces_but_not_with_other_digits(world: World) -> None:
    nhn = nhn_of(world).orgnr
    operator = browser(world, "nhn_operator")
    url = f"/o/{nhn}/organisations/new/"

    arabic = operator.post(url, {"orgnr": "٩٧٤ ٧٦٠ ٦٧٣", "name": "Ny", "kind": "vendor"})
    spaced = operator.post(url, {"orgnr": " 974 760 673 ", "name": "Ny", "kind": "vendor"})

    assert arabic.status_code == 200
    assert 'id="id_orgnr_error"' in arabic.content.decode()
    assert spaced.status_code == 302
    assert Organisation.objects.get(orgnr="974760673").name == "Ny"


ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.mark.parametrize(
    ("spelling", "accepted"),
    [
        (lambda n: n, True),  # the leading zero is part of the number
        (lambda n: n[1:], False),
        (lambda n: n.translate(ARABIC_INDIC), False),
        (lambda n: n.translate(FULL_WIDTH), False),
        (lambda n: f"{n[:2]} {n[2:]}", False),
    ],
    ids=["as-is", "leading-zero-dropped", "arabic-indic", "full-width", "space"],
)
def test_a_kommune_number_keeps_its_leading_zero_and_takes_only_ascii_digits(
    world: World, spelling: Any, accepted: bool
) -> None:
    free = Kommune.objects.create(
        number="0199", name="Nullby", county_number="01", county_name="Nullfylke"
    )
    response = api(world, "nhn_operator").post(
        "/api/v1/organizations/",
        {
            "orgnr": "974760673",
            "name": f"{free.name} kommune",
            "kind": "kommune",
            "kommune": spelling(free.number),
        },
        format="json",
    )
    assert (response.status_code == 201) is accepted, response.content
    if accepted:
        assert Organisation.objects.get(orgnr="974760673").kommune == free
    else:
        assert "kommune" in response.json()
        assert not Organisation.objects.filter(orgnr="974760673").exists()


@pytest.mark.parametrize(
    "path", ["/api/v1/organizations/٩٧٤٧٦٠٦٧٣/", "/api/v1/epj-register/٩٧٤٧٦٠٦٧٣/"]
)
def test_an_orgnr_in_other_digits_in_a_path_finds_nothing(world: World, path: str) -> None:
    Organisation.objects.filter(pk=world.kommune.pk).update(orgnr="974760673")
    assert api(world, "nhn_operator").get(path).status_code == 404


# --- Key sets ------------------------------------------------------------------------------------


def small_rsa_jwk(kid: str) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505
    return {
        "kty": "RSA",
        "kid": kid,
        "alg": "RS256",
        "n": b64url_uint(small.public_numbers().n),
        "e": "AQAB",
    }


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth"])
def test_each_private_member_alone_makes_the_key_set_refused_on_create_and_rotation(
    world: World, member: str
) -> None:
    private = rsa_private_jwk("leaky")
    key = rsa_public_jwk("leaky") | {member: private.get(member, [{"r": "AQAB"}])}
    before = (OAuthClient.objects.count(), ClientKey.objects.count())
    vendor = api(world, "vendor_admin")

    created = vendor.post(
        "/api/v1/clients/", client_body(world, "Ny") | {"jwks": jwks(key)}, format="json"
    )
    rotated = vendor.put(f"/api/v1/clients/{world.client.pk}/jwks/", jwks(key), format="json")

    for response in (created, rotated):
        assert response.status_code == 400, response.content
        assert "privat" in " ".join(response.json()["jwks"]).lower()
    assert (OAuthClient.objects.count(), ClientKey.objects.count()) == before


@pytest.mark.parametrize(
    ("keyset", "fragment"),
    [
        (lambda: jwks(small_rsa_jwk("small")), "1024"),
        (lambda: jwks(rsa_public_jwk("same"), rsa_public_jwk("same", seed=1)), "brukes allerede"),
    ],
    ids=["rsa-1024", "duplicate-kid"],
)
def test_a_small_rsa_key_or_a_kid_twice_is_refused_when_a_client_is_registered(
    world: World, keyset: Any, fragment: str
) -> None:
    before = (OAuthClient.objects.count(), ClientKey.objects.count())
    response = api(world, "vendor_admin").post(
        "/api/v1/clients/", client_body(world, "Ny") | {"jwks": keyset()}, format="json"
    )
    assert response.status_code == 400
    assert fragment in " ".join(response.json()["jwks"])
    assert (OAuthClient.objects.count(), ClientKey.objects.count()) == before


def test_a_private_key_set_pasted_on_the_page_is_refused_beside_the_field(world: World) -> None:
    import json

    before = OAuthClient.objects.count()
    response = browser(world, "vendor_admin").post(
        f"/o/{world.vendor.orgnr}/clients/new/",
        {
            "name": "Ny",
            "product": str(world.product.pk),
            "environment": "test",
            "jwks": json.dumps(jwks(rsa_private_jwk("leaky"))),
        },
    )
    assert response.status_code == 200
    assert 'id="id_jwks_error"' in response.content.decode()
    assert OAuthClient.objects.count() == before
