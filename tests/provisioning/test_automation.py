"""Automation clients: scripts and vendor pipelines use the portal's API with bearer tokens."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from rest_framework.test import APIClient

from orders.models import GrantStatus
from tenants.models import OAuthClient, Role
from tests.components import PROJECT_DIR, VENV_BIN
from tests.factories import MembershipFactory, automation_client_post
from tests.keys import jwks, rsa_private_key, rsa_public_jwk
from tests.provisioning.stack import Stack, private_pem, wait_for
from tests.provisioning.test_provisioning import Vendor, active

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_the_readme_api_example_runs_with_an_automation_client(
    stack: Stack, live_server: Any, tmp_path: Path
) -> None:
    stack.start_worker()
    vendor = Vendor()
    [grant] = vendor.order("patient.read")
    wait_for(lambda: active(grant), timeout=30, what="grant active")
    registered = automation_client_post(
        vendor.kommune_admin, vendor.kommune.orgnr, "kommune_reader"
    )
    client = OAuthClient.objects.get(pk=registered["id"])
    wait_for(lambda: OAuthClient.objects.get(pk=client.pk).client_id, timeout=30, what="registered")
    client.refresh_from_db()
    key = tmp_path / "pipeline.pem"
    key.write_bytes(private_pem(rsa_private_key(2)))

    result = subprocess.run(
        [
            str(VENV_BIN / "python"),
            str(PROJECT_DIR / "scripts" / "api_example.py"),
            "--client-id",
            client.client_id,
            "--key",
            str(key),
            "--kid",
            "pipeline-1",
            "--issuer",
            stack.provider.issuer,
            "--portal",
            live_server.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert f"{vendor.kommune.orgnr} nhn:ksp/patient.read {GrantStatus.ACTIVE}" in result.stdout
    assert "1 grants" in result.stdout


def reader_token(stack: Stack, vendor: Vendor) -> str:
    """An access token of a kommune-reader automation client of ``vendor``'s kommune, registered
    through the API and then, by the worker, at the provider."""
    registered = automation_client_post(
        vendor.kommune_admin, vendor.kommune.orgnr, "kommune_reader"
    )
    client_id = wait_for(
        lambda: OAuthClient.objects.get(pk=registered["id"]).client_id,
        timeout=30,
        what="registered",
    )
    return stack.access_token(client_id, rsa_private_key(2), kid="pipeline-1")


def test_an_automation_client_acts_with_its_role_and_no_more(
    stack: Stack, live_server: Any
) -> None:
    stack.start_worker()
    vendor = Vendor()
    token = reader_token(stack, vendor)
    bearer = {"Authorization": f"Bearer {token}"}

    def api(method: str, path: str, **kw: Any) -> requests.Response:
        return requests.request(
            method, f"{live_server.url}{path}", headers=bearer, timeout=10, **kw
        )

    seen = api("GET", f"/api/v1/organizations/{vendor.kommune.orgnr}/")
    assert seen.status_code == 200
    assert seen.json()["my_roles"] == [Role.KOMMUNE_READER]
    refused = api(
        "POST",
        "/api/v1/delegations/",
        json={
            "kommune": vendor.kommune.orgnr,
            "vendor": vendor.vendor.orgnr,
            "items": [{"service": "patient", "access": "read"}],
        },
    )
    assert refused.status_code == 403
    assert api("GET", f"/api/v1/organizations/{vendor.vendor.orgnr}/").status_code == 404
    # The token of a gateway client, a forged token, or none: 401.
    bad = requests.get(
        f"{live_server.url}/api/v1/grants/", headers={"Authorization": "Bearer x.y.z"}, timeout=10
    )
    assert bad.status_code == 401
    assert requests.get(f"{live_server.url}/api/v1/grants/", timeout=10).status_code == 401


def test_only_admins_register_automation_clients_and_only_with_roles_they_may_give() -> None:
    vendor = Vendor()
    reader = MembershipFactory(organisation=vendor.kommune, role=Role.KOMMUNE_READER).user

    def register(person: Any, role: str) -> int:
        api = APIClient()
        api.force_authenticate(person)
        return api.post(
            "/api/v1/clients/",
            {
                "name": "Pipeline",
                "purpose": "portal_api",
                "organisation": vendor.kommune.orgnr,
                "role": role,
                "jwks": jwks(rsa_public_jwk("k", seed=2)),
            },
            format="json",
        ).status_code

    assert register(reader, "kommune_reader") == 403
    assert register(vendor.kommune_admin, "nhn_operator") == 400
    assert not OAuthClient.objects.filter(purpose="portal_api").exists()
    assert register(vendor.kommune_admin, "kommune_admin") == 201


def test_an_automation_client_past_its_rate_gets_429_and_people_do_not(
    stack: Stack, live_server: Any, settings: Any
) -> None:
    """Each automation client has its own budget (tenants/throttles.py), counted per client_id
    across the web processes: past it, 429 with Retry-After; a person of the same organisation
    still gets through."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "client_read": "3/min",
        },
    }
    stack.start_worker()
    vendor = Vendor()
    token = reader_token(stack, vendor)
    path = f"{live_server.url}/api/v1/grants/"

    def call() -> requests.Response:
        return requests.get(path, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    answers = [call().status_code for _ in range(3)]
    throttled = call()

    assert answers == [200, 200, 200]
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    person = APIClient()
    person.force_login(vendor.kommune_admin)
    assert person.get("/api/v1/grants/").status_code == 200


def test_no_secret_in_the_answers_about_registrations_and_jobs(stack: Stack, settings: Any) -> None:
    """After a real registration at the provider: the API and the pages about the client and
    its provisioning jobs hold neither its registration access token (in clear or encrypted)
    nor any of the portal's secrets."""
    from django.test import Client

    from orders.models import ProvisioningJob
    from provisioning.models import ClientRegistration
    from tenants.models import Organisation
    from tests.factories import OrganisationFactory

    stack.start_worker()
    vendor = Vendor()
    [grant] = vendor.order("patient.read")
    wait_for(lambda: active(grant), timeout=30, what="grant active")
    registration = ClientRegistration.objects.get(client=vendor.client)
    secrets = {
        "registration access token": registration.registration_access_token,
        "registration access token, encrypted": registration.registration_access_token_encrypted,
        "SECRET_KEY": settings.SECRET_KEY,
        "TILGANG_ENCRYPTION_KEY": settings.TILGANG_ENCRYPTION_KEY,
        "OIDC_RP_CLIENT_SECRET": settings.OIDC_RP_CLIENT_SECRET,
        "OIDC_INITIAL_ACCESS_TOKEN": settings.OIDC_INITIAL_ACCESS_TOKEN,
    }
    nhn = OrganisationFactory(kind=Organisation.Kind.OPERATOR)
    operator = MembershipFactory(organisation=nhn, role=Role.NHN_OPERATOR).user
    jobs = list(ProvisioningJob.objects.filter(client=vendor.client))
    assert jobs
    client_pk = vendor.client.pk
    answers: dict[str, str] = {}
    for person, paths in (
        (
            vendor.admin,
            [
                "/api/v1/clients/",
                f"/api/v1/clients/{client_pk}/",
                f"/o/{vendor.vendor.orgnr}/clients/{client_pk}/",
            ],
        ),
        (
            operator,
            [
                "/api/v1/provisioning-jobs/",
                *(f"/api/v1/provisioning-jobs/{job.pk}/" for job in jobs),
                f"/o/{nhn.orgnr}/jobs/",
                *(f"/o/{nhn.orgnr}/jobs/{job.pk}/" for job in jobs),
                "/api/v1/audit-events/",
            ],
        ),
    ):
        browser = Client()
        browser.force_login(person)
        for path in paths:
            response = browser.get(path)
            assert response.status_code == 200, path
            answers[path] = response.content.decode()

    assert registration.server_client_id in answers[f"/api/v1/clients/{client_pk}/"]
    leaked = {
        (path, name)
        for path, body in answers.items()
        for name, value in secrets.items()
        if value in body
    }
    assert leaked == set()
