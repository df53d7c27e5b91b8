"""Live provisioning ("Is it working yet?") on an order's page, and "How do I call it?" for an
active grant. The steps are read from what is stored: the grant's status and its client's jobs."""

from __future__ import annotations

import datetime
import html
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders import services
from orders.models import AccessRequest, Grant, GrantStatus, ProvisioningJob, Service
from tenants.models import ClientKey, Environment, OAuthClient
from tests.conftest import World
from tests.factories import ClientFactory
from tests.keys import ec_public_jwk

pytestmark = pytest.mark.django_db

POLLING = 'hx-trigger="every 1s"'


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def order_url(world: World, request: AccessRequest) -> str:
    return reverse("orders:order", args=[world.vendor.orgnr, request.pk])


def try_url(world: World, grant: Grant) -> str:
    return reverse("orders:grant_try", args=[world.vendor.orgnr, grant.pk])


@pytest.fixture
def admin(client: Client, world: World) -> Client:
    client.force_login(world.people["vendor_admin"])
    return client


def poll(client: Client, url: str) -> Any:
    return client.get(url, HTTP_HX_REQUEST="true")


def granted(world: World, items: str = "patient.read") -> tuple[AccessRequest, Grant]:
    request = world.order(items)
    grant = request.items.first().grant
    assert grant is not None
    return request, grant


def activate(grant: Grant, *, when: datetime.datetime | None = None) -> None:
    """What the worker does: the client is registered, the grant active, its job done."""
    when = when or timezone.now()
    OAuthClient.objects.filter(pk=grant.client_id).update(client_id="tilgang-test-client")
    Grant.objects.filter(pk=grant.pk).update(status=GrantStatus.ACTIVE, status_changed_at=when)
    ProvisioningJob.objects.filter(client_id=grant.client_id).update(
        status=ProvisioningJob.Status.DONE, finished_at=when + datetime.timedelta(seconds=1)
    )


# --- Is it working yet? -------------------------------------------------------------------------


def test_a_grant_in_the_queue_is_polled_for_with_its_first_step_under_way(
    admin: Client, world: World
) -> None:
    request, _grant = granted(world)

    page = admin.get(order_url(world, request))
    fragment = poll(admin, order_url(world, request))

    assert POLLING in page.content.decode()
    assert fragment.status_code == 200
    assert POLLING in fragment.content.decode()
    assert "<html" not in fragment.content.decode()  # only the part that changes
    words = text(fragment)
    assert "Klargjøres" in words
    assert "Registrert hos autorisasjonsserveren: pågår I kø" in words
    assert "Satt opp i gatewayen: ikke ennå" in words


def test_the_page_shown_again_after_a_refused_withdrawal_polls_the_order_itself(
    admin: Client, world: World
) -> None:
    request = world.order("patient.read,care-plan.read")  # both approved: nothing waits
    url = reverse("orders:order_withdraw", args=[world.vendor.orgnr, request.pk])

    response = admin.post(url, {"withdraw-items": ["not-an-item"]})

    assert response.status_code == 200
    assert f'hx-get="{order_url(world, request)}"' in response.content.decode()


def test_an_active_grant_whose_job_is_done_stops_the_polling_with_286(
    admin: Client, world: World
) -> None:
    request, grant = granted(world)
    activate(grant)

    fragment = poll(admin, order_url(world, request))
    page = admin.get(order_url(world, request))

    assert fragment.status_code == 286
    assert POLLING not in fragment.content.decode()
    assert POLLING not in page.content.decode()
    words = text(fragment)
    assert "Aktiv" in words
    assert "Registrert hos autorisasjonsserveren: ferdig" in words
    assert "Satt opp i gatewayen: ferdig" in words
    assert "Aktiv: fagsystemet kan kalle tjenesten: ferdig" in words
    assert try_url(world, grant) in fragment.content.decode()


def test_an_active_grant_is_at_the_gateway_step_while_the_job_that_activated_it_runs(
    admin: Client, world: World
) -> None:
    request, grant = granted(world)
    ProvisioningJob.objects.filter(client_id=grant.client_id).update(
        status=ProvisioningJob.Status.RUNNING
    )
    Grant.objects.filter(pk=grant.pk).update(
        status=GrantStatus.ACTIVE, status_changed_at=timezone.now()
    )

    fragment = poll(admin, order_url(world, request))

    assert fragment.status_code == 200
    words = text(fragment)
    assert "Registrert hos autorisasjonsserveren: ferdig" in words
    assert "Satt opp i gatewayen: pågår" in words
    assert try_url(world, grant) not in fragment.content.decode()


def test_a_later_job_of_the_client_does_not_hold_up_an_active_grant(
    admin: Client, world: World
) -> None:
    request, grant = granted(world)
    activate(grant, when=timezone.now() - datetime.timedelta(minutes=5))
    ProvisioningJob.objects.create(client=world.client, reason="grant.approved")  # afterwards

    assert poll(admin, order_url(world, request)).status_code == 286


def test_a_failed_attempt_is_told_while_it_is_tried_again(admin: Client, world: World) -> None:
    request, grant = granted(world)
    ProvisioningJob.objects.filter(client_id=grant.client_id).update(
        attempts=1, last_error="The authorization server did not answer."
    )
    Grant.objects.filter(pk=grant.pk).update(status=GrantStatus.PROVISIONING)

    fragment = poll(admin, order_url(world, request))

    assert fragment.status_code == 200
    assert (
        "Forsøk 1 feilet: The authorization server did not answer. Det prøves igjen av seg selv."
        in text(fragment)
    )


def test_a_failed_grant_says_why_and_nothing_more_is_polled(admin: Client, world: World) -> None:
    request, grant = granted(world)
    Grant.objects.filter(pk=grant.pk).update(
        status=GrantStatus.FAILED,
        status_reason_code="gave_up",
        status_reason_params={"attempts": 8, "error": "HTTP 400 invalid_client_metadata"},
    )
    ProvisioningJob.objects.filter(client_id=grant.client_id).update(
        status=ProvisioningJob.Status.FAILED, finished_at=timezone.now()
    )

    fragment = poll(admin, order_url(world, request))

    assert fragment.status_code == 286
    words = text(fragment)
    assert "Feilet" in words
    assert "Registrert hos autorisasjonsserveren: feilet" in words
    assert "HTTP 400 invalid_client_metadata" in words


def test_a_job_that_failed_after_activation_fails_the_gateway_step(
    admin: Client, world: World
) -> None:
    request, grant = granted(world)
    now = timezone.now()
    Grant.objects.filter(pk=grant.pk).update(status=GrantStatus.ACTIVE, status_changed_at=now)
    ProvisioningJob.objects.filter(client_id=grant.client_id).update(
        status=ProvisioningJob.Status.FAILED,
        finished_at=now + datetime.timedelta(seconds=1),
        last_error="The gateway refused the entry.",
    )

    fragment = poll(admin, order_url(world, request))

    assert fragment.status_code == 286
    assert "Satt opp i gatewayen: feilet The gateway refused the entry." in text(fragment)


def test_a_revocation_is_polled_until_it_has_reached_the_gateway(
    admin: Client, world: World
) -> None:
    request, grant = granted(world)
    activate(grant)
    services.grant_revoke(grant=grant, actor=world.people["kommune_admin"])

    revoking = poll(admin, order_url(world, request))
    Grant.objects.filter(pk=grant.pk).update(status=GrantStatus.REVOKED)
    revoked = poll(admin, order_url(world, request))

    assert revoking.status_code == 200
    assert "Trekkes tilbake" in text(revoking)
    assert revoked.status_code == 286
    assert "Trukket tilbake" in text(revoked)


def test_an_order_with_nothing_approved_has_nothing_to_poll(admin: Client, world: World) -> None:
    request = world.order("patient.read", kommune=world.other_kommune)

    page = admin.get(order_url(world, request))

    assert POLLING not in page.content.decode()
    assert "Ingenting klargjøres" in text(page)
    assert poll(admin, order_url(world, request)).status_code == 286


# --- How do I call it? --------------------------------------------------------------------------


def python_of(response: Any) -> str:
    """The Python script as the page shows it (what a person copies)."""
    found = re.search(
        r'<pre[^>]*id="try-python"[^>]*><code>(.*?)</code></pre>', response.content.decode(), re.S
    )
    assert found is not None
    return html.unescape(found.group(1))


def curl_of(response: Any) -> str:
    found = re.search(
        r'<pre[^>]*id="try-curl"[^>]*><code>(.*?)</code></pre>', response.content.decode(), re.S
    )
    assert found is not None
    return html.unescape(found.group(1))


@pytest.mark.parametrize("who", ["vendor_admin", "vendor_developer"])
def test_an_active_grant_s_commands_are_filled_in_with_the_real_values(
    client: Client, world: World, settings: Any, who: str
) -> None:
    settings.GATEWAY_URL = "https://gw.example.test"
    settings.GATEWAY_AUDIENCE = "https://gateway-audience.example.test"
    settings.OIDC_OP_TOKEN_ENDPOINT = "https://login.example.test/oauth/token"
    _request, grant = granted(world)
    activate(grant)
    client.force_login(world.people[who])

    response = client.get(try_url(world, grant))

    assert response.status_code == 200
    script = python_of(response)
    compile(script, "call.py", "exec")
    key_line = 'PRIVATE_KEY_FILE = "key-1.private-key.pem"'
    assert script.index(key_line) < script.index("import jwt") + 200
    assert 'CLIENT_ID = "tilgang-test-client"' in script
    assert 'TOKEN_ENDPOINT = "https://login.example.test/oauth/token"' in script
    assert 'AUDIENCE = "https://gateway-audience.example.test"' in script
    assert 'SCOPE = "nhn:ksp/patient.read"' in script
    assert f'URL = "https://gw.example.test/{world.kommune.orgnr}/fhir/Patient"' in script
    assert 'KEY_ID = "key-1"' in script
    assert 'ALGORITHM = "RS256"' in script
    assert "requests.get(" in script
    assert "print(response.status_code)" in script
    curl = curl_of(response)
    assert "TOKEN_ENDPOINT=https://login.example.test/oauth/token" in curl
    assert "openssl dgst -sha256 -sign" in curl
    assert 'aria-label="Python-skript"' in response.content.decode()


def test_a_test_client_calls_the_test_route_and_a_write_posts_a_resource(
    admin: Client, world: World, settings: Any
) -> None:
    settings.GATEWAY_URL = "http://127.0.0.1:8080"
    test_client = ClientFactory(product=world.product, environment=Environment.TEST)
    [request] = services.access_request_create(
        client=test_client,
        kommuner=[world.kommune],
        items=[
            services.ItemInput(
                Service.objects.get(code="observation"), "write", service_codes=("RT",)
            )
        ],
        initiated_by=AccessRequest.Initiator.VENDOR,
        actor=world.people["vendor_admin"],
    )
    grant = request.items.get().grant
    Grant.objects.filter(pk=grant.pk).update(service_codes=["RT"])
    activate(grant)

    response = admin.get(try_url(world, grant))

    script = python_of(response)
    compile(script, "call.py", "exec")
    assert f'URL = "http://127.0.0.1:8080/test/{world.kommune.orgnr}/fhir/Observation"' in script
    assert 'SCOPE = "nhn:ksp/observation.write"' in script
    assert "requests.post(" in script
    assert '"ServiceCodes": "RT"' in script
    assert '\\"resourceType\\": \\"Observation\\"' in script
    curl = curl_of(response)
    assert "-X POST" in curl
    assert "'ServiceCodes: RT'" in curl


def test_an_ec_key_s_assertion_is_signed_by_pyjwt_in_the_shell_too(
    admin: Client, world: World
) -> None:
    _request, grant = granted(world)
    activate(grant)
    ClientKey.objects.filter(client=world.client).delete()
    ClientKey.objects.create(
        client=world.client, kid="ec-1", kty="EC", alg="ES256", jwk=ec_public_jwk("ec-1")
    )

    response = admin.get(try_url(world, grant))

    assert 'ALGORITHM = "ES256"' in python_of(response)
    assert 'KEY_ID = "ec-1"' in python_of(response)
    assert "jwt.encode" in curl_of(response)
    assert "openssl dgst" not in curl_of(response)


def test_a_grant_that_is_not_active_has_no_commands_yet(admin: Client, world: World) -> None:
    _request, grant = granted(world)

    response = admin.get(try_url(world, grant))

    assert response.status_code == 200
    assert "Denne tilgangen er ikke aktiv (klargjøres)" in text(response)
    assert "try-python" not in response.content.decode()


@pytest.mark.parametrize("who", ["other_vendor_admin", "kommune_admin"])
def test_another_organisation_finds_no_grant_to_call(
    client: Client, world: World, who: str
) -> None:
    _request, grant = granted(world)
    activate(grant)
    client.force_login(world.people[who])

    assert client.get(try_url(world, grant)).status_code == 404


def test_another_vendor_s_grant_is_not_found_from_this_vendor_s_page(
    admin: Client, world: World
) -> None:
    services.delegation_create(
        kommune=world.kommune,
        vendor=world.other_vendor,
        items=[services.DelegationItemInput(Service.objects.get(code="patient"), "read")],
        valid_from=None,
        valid_until=None,
        actor=world.people["kommune_admin"],
    )
    [request] = services.access_request_create(
        client=world.other_client,
        kommuner=[world.kommune],
        items=[services.ItemInput(Service.objects.get(code="patient"), "read")],
        initiated_by=AccessRequest.Initiator.VENDOR,
        actor=world.people["other_vendor_admin"],
    )
    grant = request.items.get().grant

    assert admin.get(try_url(world, grant)).status_code == 404
