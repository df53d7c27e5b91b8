"""Key pairs made in a real browser (Debian's chromium, driven by Playwright) on the page that
registers a client: the public key is sent, the private key is a file the person downloads, and
the request that registers the client carries no private member.

A Django test client posting what the page would post cannot show this: only a browser runs
static/js/keygen.js, so only a browser shows what the page really sends. The page itself, before
a key is made, is checked with every other page (test_every_page.py); here it is checked again
with the key pair and its downloads on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from django.urls import reverse
from playwright.sync_api import Page, Request, expect

from tenants.jwks import PRIVATE_MEMBERS
from tenants.models import OAuthClient, Organisation
from tests.browser.helpers import check_page, login, set_language
from tests.keys import b64url_uint, ec_public_jwk

pytestmark = pytest.mark.integration

VENDOR_ADMIN = "admin@trygghet.example"  # the demo's Trygghet AS, with its product Trygghet Alarm
PUBLIC_MEMBERS = {"kty", "kid", "alg", "use", "n", "e", "crv", "x", "y"}

#: The accessible names the test uses, per language (as the page's users hear them).
NAMES = {
    "nb": {
        "product": "Produkt",
        "test": "Test",
        "name": "Navn på klienten",
        "generate": "Lag nøkkelpar i nettleseren",
        "pem": "Last ned privat nøkkel (PEM)",
        "jwk": "Last ned privat nøkkel (JWK)",
        "jwks": "Offentlige nøkler (JWKS)",
        "register": "Registrer klient",
        "registered": "Klienten Alarm test er registrert",
        "no_js": "Med JavaScript påslått kan du lage et nøkkelpar",
    },
    "en": {
        "product": "Product",
        "test": "Test",
        "name": "Name of the client",
        "generate": "Make a key pair in the browser",
        "pem": "Download the private key (PEM)",
        "jwk": "Download the private key (JWK)",
        "jwks": "Public keys (JWKS)",
        "register": "Register client",
        "registered": "The client Alarm test is registered",
        "no_js": "With JavaScript on, you can make a key pair",
    },
}
ALGORITHMS = {"RS256": "RS256 (RSA, 2048 bit)", "ES256": "ES256 (ECDSA, P-256)"}


def client_new(open_page: Callable[..., Page], language: str, **options: bool) -> Page:
    """The page that registers a client, opened by the demo vendor's admin, logged in through
    the provider, in ``language``."""
    page = open_page(**options)
    set_language(page, language)
    login(page, VENDOR_ADMIN)
    vendor = Organisation.objects.get(name="Trygghet AS")
    page.goto(reverse("orders:client_new", args=[vendor.orgnr]))
    return page


def fill_in_the_client(page: Page, names: dict[str, str]) -> None:
    page.get_by_label(names["product"], exact=True).select_option(label="Trygghet Alarm (VFT)")
    page.get_by_label(names["test"], exact=True).check()
    page.get_by_label(names["name"], exact=True).fill("Alarm test")


def form_field(body: bytes, name: str) -> str:
    """One field of a multipart/form-data body."""
    match = re.search(rb'name="' + name.encode() + rb'"\r\n\r\n(.*?)\r\n--', body, flags=re.DOTALL)
    assert match is not None, f"{name} is not in the request"
    return match.group(1).decode()


@pytest.mark.parametrize(("algorithm", "language"), [("RS256", "nb"), ("ES256", "en")])
def test_a_key_pair_made_in_the_browser_registers_the_client_and_the_private_key_stays_home(
    open_page: Callable[..., Page], demo_data: None, tmp_path: Path, algorithm: str, language: str
) -> None:
    names = NAMES[language]
    page = client_new(open_page, language)
    posted: list[bytes] = []

    def seen(request: Request) -> None:
        if request.method == "POST":
            posted.append(request.post_data_buffer or b"")

    page.on("request", seen)
    fill_in_the_client(page, names)
    page.get_by_label(ALGORITHMS[algorithm], exact=True).check()
    page.get_by_role("button", name=names["generate"]).click()
    pem_link = page.get_by_role("link", name=names["pem"])
    expect(pem_link).to_be_visible()
    check_page(page)  # the page with the key pair and its downloads on it
    with page.expect_download() as pem_download:
        pem_link.click()
    with page.expect_download() as jwk_download:
        page.get_by_role("link", name=names["jwk"]).click()
    pem_file = tmp_path / pem_download.value.suggested_filename
    pem_download.value.save_as(pem_file)
    jwk_file = tmp_path / jwk_download.value.suggested_filename
    jwk_download.value.save_as(jwk_file)
    shown = json.loads(page.get_by_label(names["jwks"], exact=True).input_value())
    page.get_by_role("button", name=names["register"]).click()
    expect(page.get_by_text(names["registered"])).to_be_visible()

    # The private key is a real file the person keeps: PEM (PKCS#8) and a private JWK.
    assert pem_file.suffix == ".pem"
    pem = pem_file.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    private_key = serialization.load_pem_private_key(pem, password=None)
    private_jwk = json.loads(jwk_file.read_text())
    assert private_jwk["d"]
    assert private_jwk["alg"] == algorithm

    # The one POST (the registration) carries the public key only: no private member, no
    # private value, nothing of the PEM.
    [body] = posted
    sent = json.loads(form_field(body, "jwks"))
    assert sent == shown
    [sent_key] = sent["keys"]
    assert set(sent_key) <= PUBLIC_MEMBERS
    assert not PRIVATE_MEMBERS & set(sent_key)
    assert sent_key["alg"] == algorithm
    assert sent_key["use"] == "sig"
    for member in PRIVATE_MEMBERS & set(private_jwk):
        assert private_jwk[member].encode() not in body
    pem_body = b"".join(pem.splitlines()[1:-1])
    assert pem_body[:40] not in body

    # The client holds the public half of the downloaded private key: what it signs verifies.
    registered = OAuthClient.objects.get(name="Alarm test")
    [stored] = registered.keys.all()
    assert stored.kid == sent_key["kid"] == private_jwk["kid"]
    message = b"client assertion"
    if algorithm == "RS256":
        assert isinstance(private_key, rsa.RSAPrivateKey)
        numbers = private_key.public_key().public_numbers()
        assert (stored.jwk["n"], stored.jwk["e"]) == (
            b64url_uint(numbers.n),
            b64url_uint(numbers.e),
        )
        signature = private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        rsa.RSAPublicNumbers(numbers.e, numbers.n).public_key().verify(
            signature, message, padding.PKCS1v15(), hashes.SHA256()
        )
    else:
        assert isinstance(private_key, ec.EllipticCurvePrivateKey)
        point = private_key.public_key().public_numbers()
        assert (stored.jwk["x"], stored.jwk["y"]) == (
            b64url_uint(point.x, 32),
            b64url_uint(point.y, 32),
        )


def test_without_javascript_the_page_explains_and_a_pasted_key_registers(
    open_page: Callable[..., Page], demo_data: None
) -> None:
    names = NAMES["nb"]
    public_jwks = {"keys": [ec_public_jwk("pasted")]}
    page = client_new(open_page, "nb", java_script_enabled=False)
    generate = page.get_by_role("button", name=names["generate"])
    explained = page.get_by_text(names["no_js"]).is_visible()
    generate_hidden = generate.is_hidden()
    fill_in_the_client(page, names)
    page.get_by_label(names["jwks"], exact=True).fill(json.dumps(public_jwks))
    page.get_by_role("button", name=names["register"]).click()
    expect(page.get_by_text(names["registered"])).to_be_visible()

    assert explained
    assert generate_hidden
    registered = OAuthClient.objects.get(name="Alarm test")
    assert list(registered.keys.values_list("kid", flat=True)) == ["pasted"]
