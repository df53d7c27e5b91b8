"""A policy reason reads in the reader's language, whatever language the order was made in."""

from __future__ import annotations

import pytest
from django.utils import translation
from rest_framework.test import APIClient

from orders import policy
from tests.conftest import World
from tests.factories import GrantFactory

pytestmark = pytest.mark.django_db


def test_a_reason_decided_in_bokmal_reads_wholly_in_english(world: World) -> None:
    vendor = APIClient()
    vendor.force_authenticate(world.people["vendor_admin"])
    made = vendor.post(
        "/api/v1/access-requests/",
        {
            "client": str(world.client.pk),
            "kommune": world.kommune.orgnr,
            "items": [{"service": "patient", "access": "write"}],
        },
        format="json",
        HTTP_ACCEPT_LANGUAGE="nb",
    )
    assert made.status_code == 201, made.json()
    norwegian = made.json()["items"][0]["reason"]

    english = vendor.get(
        f"/api/v1/access-requests/{made.json()['id']}/", HTTP_ACCEPT_LANGUAGE="en"
    ).json()["items"][0]["reason"]

    assert "skrive Pasient" in norwegian
    assert "may not write Patient" in english, english


def test_a_reason_stored_with_words_of_either_language_reads_in_the_readers() -> None:
    """Items decided before the parameters were kept as codes hold the decider's words."""
    from django.utils import translation

    from orders.policy import reason_text

    stored = {"service": "patient", "kommune": "Oslo", "environment": "produksjon", "date": "x"}
    with translation.override("en"):
        text = reason_text("not_available", stored)

    assert text == "patient opens in production on x; the item is granted by itself then."


def _grant_reason(client: APIClient, grant_id: object, language: str) -> str:
    response = client.get(f"/api/v1/grants/{grant_id}/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200, response.json()
    reason: str = response.json()["revoke_reason"]
    return reason


def test_a_grant_revoked_in_english_reads_in_bokmal_and_back(world: World) -> None:
    """Revocation reasons are kept as a code and parameters, worded when read (as items are)."""
    from django.utils import translation

    from orders import services
    from orders.models import AccessRequest, Service
    from tenants import services as tenant_services
    from tenants.models import Product
    from tests.factories import ClientFactory, ProductFactory

    epj = ProductFactory(vendor=world.vendor, system_type=Product.SystemType.EPJ)
    patient = Service.objects.get(code="patient")
    grants = []
    for client in (world.client, ClientFactory(product=epj)):
        [request] = services.access_request_create(
            client=client,
            kommuner=[world.kommune],
            items=[
                services.ItemInput(
                    service=patient, access="read" if client == world.client else "write"
                )
            ],
            initiated_by=AccessRequest.Initiator.VENDOR,
            actor=world.people["vendor_admin"],
        )
        grants.append(request.items.get().grant)
    delegated, written = grants
    with translation.override("en"):
        tenant_services.product_verify(
            product=epj, system_type="VFT", is_epic=False, actor=world.people["nhn_operator"]
        )
        services.delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])
    reader = APIClient()
    reader.force_authenticate(world.people["kommune_admin"])

    assert (
        _grant_reason(reader, delegated.pk, "nb")
        == "Delegeringen tilgangen bygde på, ble trukket tilbake."
    )
    assert _grant_reason(reader, delegated.pk, "en") == "The delegation it rested on was revoked."
    in_bokmal = _grant_reason(reader, written.pk, "nb")
    assert "ikke lenger verifisert som EPJ" in in_bokmal, in_bokmal
    assert "skrive" in in_bokmal, in_bokmal  # the access, worded in bokmål too
    in_english = _grant_reason(reader, written.pk, "en")
    assert "no longer verified as EPJ" in in_english, in_english
    assert "may write patient" in in_english, in_english


def test_a_grant_revoked_before_reason_codes_reads_as_it_was_stored(world: World) -> None:
    from orders.models import GrantStatus, Service

    patient = Service.objects.get(code="patient")
    old = GrantFactory(
        client=world.client,
        kommune=world.kommune,
        service=patient,
        status=GrantStatus.REVOKED,
        revoke_reason="Avtalen er sagt opp",
    )
    reader = APIClient()
    reader.force_authenticate(world.people["kommune_admin"])

    assert _grant_reason(reader, old.pk, "en") == "Avtalen er sagt opp"


def test_a_reason_names_the_service_and_its_opening_day_as_the_reader_reads_them() -> None:
    params = {
        "service": "care-plan",
        "service_nb": "Besøksplan",
        "service_en": "Care plan",
        "environment": "production",
        "date": "2027-03-01",
    }
    with translation.override("nb"):
        norwegian = policy.reason_text("not_available", params)
    with translation.override("en"):
        english = policy.reason_text("not_available", params)

    assert "Besøksplan" in norwegian
    assert "1. mars 2027" in norwegian
    assert "Care plan" in english
    assert "1 March 2027" in english
    # A reason stored before the names were kept still reads, by the service's code.
    old = {"service": "care-plan", "environment": "test"}
    with translation.override("en"):
        assert "care-plan" in policy.reason_text("not_scheduled", old)
