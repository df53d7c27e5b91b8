"""The whole vendor journey on the real stack (PostgreSQL, broker, Celery worker, oidc-provider,
HAProxy): order from the page, watch the grant become active on the order's page until its
polling is told to stop, then run the page's own "try it" commands with the vendor's private key
and get 200 from the gateway."""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from orders.api.serializers import SERVICE_CODES
from orders.models import Access, AccessRequest, Service
from tenants.models import Organisation, Product, Role
from tests.components import VENV_BIN
from tests.factories import (
    ClientFactory,
    DelegationFactory,
    InstructionFactory,
    KommuneOrganisationFactory,
    MembershipFactory,
    OrganisationFactory,
    ProductFactory,
)
from tests.keys import rsa_private_key
from tests.provisioning.stack import Stack, private_pem, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

DEADLINE = 30.0


def block(response: Any, element_id: str) -> str:
    """The text of a code block as the page shows it (what a person copies)."""
    found = re.search(
        rf'<pre[^>]*id="{element_id}"[^>]*><code>(.*?)</code></pre>',
        response.content.decode(),
        re.S,
    )
    assert found is not None, f"no {element_id} on the page"
    return html.unescape(found.group(1))


def test_a_vendor_orders_from_the_page_watches_it_go_live_and_calls_it_with_the_page_s_commands(
    stack: Stack, tmp_path: Path
) -> None:
    stack.start_worker()
    kommune = KommuneOrganisationFactory()
    vendor = OrganisationFactory(kind=Organisation.Kind.VENDOR)
    admin = MembershipFactory(organisation=vendor, role=Role.VENDOR_ADMIN).user
    product = ProductFactory(vendor=vendor, system_type=Product.SystemType.VFT)
    client = ClientFactory(product=product)  # its public key is rsa_private_key(0)'s
    InstructionFactory(kommune=kommune)
    DelegationFactory(
        kommune=kommune,
        vendor=vendor,
        items=[(s, a, SERVICE_CODES) for s in Service.objects.all() for a in Access.values],
    )
    browser = Client()
    browser.force_login(admin)

    # Order: the check page, then the send.
    answers = {
        "client": str(client.pk),
        "items": ["patient.read"],
        "which": "chosen",
        "kommuner": [kommune.orgnr],
        "action": "preview",
    }
    preview = browser.post(reverse("orders:order_new", args=[vendor.orgnr]), answers)
    assert "1 godkjennes" in preview.content.decode()
    sent = browser.post(
        reverse("orders:order_send", args=[vendor.orgnr]), {"order": preview.context["token"]}
    )
    assert sent.status_code == 302
    request = AccessRequest.objects.get(client=client)
    order_url = reverse("orders:order", args=[vendor.orgnr, request.pk])

    # "Is it working yet?": the polled part, until it answers 286 (nothing left to wait for).
    def settled() -> Any:
        response = browser.get(order_url, HTTP_HX_REQUEST="true")
        return response if response.status_code == 286 else None

    done = wait_for(settled, timeout=DEADLINE, what="the order's progress to settle")
    assert "Aktiv: fagsystemet kan kalle tjenesten: ferdig" in re.sub(
        r"\s+", " ", re.sub(r"<[^>]+>", " ", done.content.decode())
    )
    grant = request.items.get().grant
    try_url = reverse("orders:grant_try", args=[vendor.orgnr, grant.pk])
    assert try_url in done.content.decode()

    # "How do I call it?": the page's Python, next to the downloaded key, run as a script.
    page = browser.get(try_url)
    assert page.status_code == 200
    # Saved under the name the key generator downloads it as.
    kid = client.keys.get().kid
    (tmp_path / f"{kid}.private-key.pem").write_bytes(private_pem(rsa_private_key(0)))
    (tmp_path / "call.py").write_text(block(page, "try-python"))
    python = subprocess.run(  # noqa: S603 - the project's interpreter, a script the test wrote
        [str(VENV_BIN / "python"), "call.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert python.returncode == 0, python.stderr
    assert python.stdout.strip() == "200"

    # The curl commands do the same in a shell (openssl signs the assertion).
    (tmp_path / "call.sh").write_text(block(page, "try-curl"))
    shell = subprocess.run(  # noqa: S603
        ["/bin/bash", "call.sh"],  # noqa: S607
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.strip().splitlines()[-1] == "200", shell.stdout + shell.stderr
    assert f'"kommune": "{kommune.orgnr}"' in shell.stdout  # the echo upstream's answer
