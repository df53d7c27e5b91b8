"""The ordering journey through the public API alone, on the demo organisations."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.test import APIClient

from orders.models import Grant, ProvisioningJob
from tenants.services import memberships_bind
from tests.factories import api_session
from tests.keys import jwks, rsa_public_jwk

pytestmark = pytest.mark.django_db

OSLO, TRONDHEIM, BERGEN, TRYGGHET = "958935420", "942110464", "964338531", "910000012"


def person(email: str) -> APIClient:
    """An API session for a demo person, just after their login at the provider."""
    user = User.objects.create_user(email, email=email)
    memberships_bind(user=user, identity=email)
    client: APIClient = api_session(user)
    return client


INSTRUCTION = {
    "subject_matter": "Velferdsteknologi: pasientdata og målinger",
    "duration": "Til instruksen erstattes",
    "nature_and_purpose": "NHN samler inn og gjør tilgjengelig helsedata for kommunens systemer",
    "personal_data_categories": ["helseopplysninger", "identifikasjonsopplysninger"],
    "data_subject_categories": ["pasienter og brukere av kommunale helse- og omsorgstjenester"],
    "sharing_scope": "kommune_only",
    "retention": "Så lenge kommunen yter tjenesten",
    "sub_processors_acknowledged": ["NHN driftsleverandører"],
    "contact_name": "Kari Nordmann",
    "contact_email": "personvern@kommune.example",
}


def sign_instruction(admin: APIClient, kommune: str, services: list[str]) -> dict[str, Any]:
    draft = admin.post(
        "/api/v1/instructions/",
        {**INSTRUCTION, "kommune": kommune, "services": services},
        format="json",
    )
    assert draft.status_code == 201, draft.json()
    assert draft.json()["status"] == "draft"
    signed = admin.post(f"/api/v1/instructions/{draft.json()['id']}/sign/")
    assert signed.status_code == 200, signed.json()
    return dict(signed.json())


def items_by_service(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{i['service']}.{i['access']}": i for i in request["items"]}


def test_the_ordering_journey_through_the_api_alone() -> None:
    call_command("seed_demo", verbosity=0)
    oslo, trondheim, bergen = (
        person("admin@oslo.example"),
        person("admin@trondheim.example"),
        person("admin@bergen.example"),
    )
    trygghet = person("admin@trygghet.example")

    # Oslo's admin signs an instruction and delegates patient and observation to Trygghet AS.
    signed = sign_instruction(oslo, OSLO, ["patient", "observation", "condition"])
    assert signed["status"] == "signed"
    assert signed["signed_by"] == "admin@oslo.example"
    delegation = oslo.post(
        "/api/v1/delegations/",
        {
            "kommune": OSLO,
            "vendor": TRYGGHET,
            "items": [
                {"service": "patient", "access": "read"},
                {"service": "observation", "access": "write", "service_codes": ["TA", "DHO"]},
            ],
        },
        format="json",
    )
    assert delegation.status_code == 201, delegation.json()
    assert delegation.json()["status"] == "active"

    # Trygghet AS registers a production client with a public key.
    product = trygghet.get("/api/v1/products/", {"vendor": TRYGGHET}).json()["results"][0]
    assert product["system_type"] == "VFT"
    registered = trygghet.post(
        "/api/v1/clients/",
        {
            "name": "Trygghet Alarm prod",
            "product": product["id"],
            "environment": "production",
            "jwks": jwks(rsa_public_jwk("trygghet-2026")),
        },
        format="json",
    )
    assert registered.status_code == 201, registered.json()
    client_id = registered.json()["id"]
    assert registered.json()["client_id"] == ""  # set once provisioned
    assert [k["kid"] for k in registered.json()["keys"]] == ["trygghet-2026"]

    # It asks for patient.read, observation.write and patient.write for Oslo.
    response = trygghet.post(
        "/api/v1/access-requests/",
        {
            "client": client_id,
            "kommune": OSLO,
            "items": [
                {"service": "patient", "access": "read"},
                {"service": "observation", "access": "write", "service_codes": ["TA", "DHO"]},
                {"service": "patient", "access": "write"},
                {"service": "condition", "access": "read"},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    items = items_by_service(response.json())
    # Both approved at once, no person involved.
    assert items["patient.read"]["status"] == "approved"
    assert items["observation.write"]["status"] == "approved"
    # A VFT may read patient but not write it; condition is for kommuner on Epic only.
    assert items["patient.write"]["status"] == "rejected"
    assert "VFT" in items["patient.write"]["reason"]
    assert items["condition.read"]["status"] == "rejected"
    assert "Epic" in items["condition.read"]["reason"]

    grants = trygghet.get("/api/v1/grants/", {"client": client_id, "kommune": OSLO}).json()
    scopes = sorted(g["scope"] for g in grants["results"])
    assert scopes == ["nhn:ksp/observation.write", "nhn:ksp/patient.read"]
    observation = next(g for g in grants["results"] if g["service"] == "observation")
    assert observation["instruction_version"] == signed["version"]
    assert observation["service_codes"] == ["TA", "DHO"]
    assert observation["approved_automatically"] is True
    # Provisioning comes with the next issue: the grants wait with a job each client.
    assert {g["status"] for g in grants["results"]} == {"pending"}
    assert ProvisioningJob.objects.filter(client_id=client_id, status="pending").count() == 1

    # condition.read for Trondheim, which runs Epic: approved.
    sign_instruction(trondheim, TRONDHEIM, ["condition"])
    trondheim.post(
        "/api/v1/delegations/",
        {
            "kommune": TRONDHEIM,
            "vendor": TRYGGHET,
            "items": [{"service": "condition", "access": "read"}],
        },
        format="json",
    )
    response = trygghet.post(
        "/api/v1/access-requests/",
        {
            "client": client_id,
            "kommune": TRONDHEIM,
            "items": [{"service": "condition", "access": "read"}],
        },
        format="json",
    )
    assert response.json()["items"][0]["status"] == "approved", response.json()

    # Bergen has delegated nothing: the request waits until Bergen's admin approves it.
    sign_instruction(bergen, BERGEN, ["patient"])
    response = trygghet.post(
        "/api/v1/access-requests/",
        {
            "client": client_id,
            "kommune": BERGEN,
            "items": [{"service": "patient", "access": "read"}],
        },
        format="json",
    )
    waiting = response.json()
    assert waiting["items"][0]["status"] == "awaiting_kommune"
    assert "godkjenne" in waiting["items"][0]["reason"]  # bokmål first
    assert not Grant.objects.filter(kommune__orgnr=BERGEN).exists()

    approved = bergen.post(f"/api/v1/access-requests/{waiting['id']}/approve/", {}, format="json")

    assert approved.status_code == 200, approved.json()
    assert approved.json()["items"][0]["status"] == "approved"
    grant = Grant.objects.get(kommune__orgnr=BERGEN)
    assert grant.approved_by is not None
    assert grant.approved_by.username == "admin@bergen.example"
    assert not grant.approved_automatically
