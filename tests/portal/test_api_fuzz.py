"""API fuzzing: schemathesis reads the served OpenAPI schema (/api/v1/schema/) and sends every
operation generated requests, valid and invalid, in-process through the WSGI application, as each
kind of person (a browser session with its CSRF token) and as automation clients (a kommune's and a
vendor's, with a bearer token the real oidc-provider issued them). No answer may be a 5xx, and
every documented answer must match the schema (content type and body).

Bounded for ``make test``: a few examples per operation and mode, derandomized (the same cases
every run), no example database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from portal.wsgi import application
from provisioning.authserver import AuthServerClient, client_metadata
from provisioning.runner import PORTAL_API_SCOPE
from tenants.models import OAuthClient, Role
from tests.conftest import World
from tests.factories import api_session, automation_client_post
from tests.integration import Provider
from tests.keys import jwks, rsa_private_key, rsa_public_jwk
from tests.provisioning.stack import client_credentials

pytestmark = pytest.mark.django_db(transaction=False)

#: Examples per operation, per mode (valid and invalid data), per person.
EXAMPLES = 2
ROLES = ("kommune_admin", "vendor_admin", "nhn_auditor", "nhn_operator")
CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]


@dataclass
class Tally:
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Caller:
    """A logged-in browser: its cookies, and the CSRF token DRF checks for session callers."""

    cookies: dict[str, str]
    headers: dict[str, str]

    def dress(self, case: Any) -> None:
        """Send ``case`` as this caller: schemathesis generates values for the schema's security
        schemes too (a junk bearer token, a junk session cookie), which would only test those."""
        generated = {
            name: value
            for name, value in (case.headers or {}).items()
            if name.lower() not in ("authorization", "cookie")
        }
        case.headers = generated | self.headers
        case.cookies = dict(self.cookies)


def browser_of(user: Any) -> Caller:
    browser = api_session(user)
    token = secrets.token_urlsafe(24)[:32]
    return Caller(
        cookies={"sessionid": browser.cookies["sessionid"].value, "csrftoken": token},
        headers={"X-CSRFToken": token},
    )


def automation_client_of(
    admin: Any, organisation: Any, role: str, provider: Provider, *, seed: int
) -> Caller:
    """An automation client of ``organisation`` holding ``role``, registered through the API by
    its admin and then at the real oidc-provider (what the worker's job does, done here in the
    test's transaction), calling with the access token the provider issues it."""
    kid = f"fuzz-{seed}"
    registered = automation_client_post(admin, organisation.orgnr, role, kid=kid, seed=seed)
    client = OAuthClient.objects.get(pk=registered["id"])
    registration = AuthServerClient().register(
        client_metadata(
            software_id=str(client.pk),
            name=client.name,
            jwks=jwks(rsa_public_jwk(kid, seed=seed)),
            scopes=[PORTAL_API_SCOPE],
        )
    )
    OAuthClient.objects.filter(pk=client.pk).update(client_id=registration.client_id)
    answer = client_credentials(
        provider.issuer, registration.client_id, rsa_private_key(seed), kid=kid
    )
    assert answer.status_code == 200, answer.text
    return Caller(cookies={}, headers={"Authorization": f"Bearer {answer.json()['access_token']}"})


def known_objects(world: World) -> dict[str, str]:
    """Real objects for path parameters, so valid cases get past the 404 to the view's work."""
    return {"orgnr": world.kommune.orgnr, "code": "patient", "id": str(world.client.pk)}


def fuzz(operation: Any, caller: Caller, path: dict[str, str], tally: Tally) -> None:
    names = {p["name"] for p in operation.definition.raw.get("parameters", []) if p["in"] == "path"}
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        fixed = {k: v for k, v in path.items() if k in names} if mode.is_positive else None
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed or None)
        examples(strategy, caller, tally, f"{operation.label} [{mode}]")


def examples(strategy: Any, caller: Caller, tally: Tally, label: str) -> None:
    """Send the cases of ``strategy`` as ``caller`` and collect every failed check."""

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        caller.dress(case)
        response = case.call()
        tally.cases += 1
        tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as exc:  # each failure is collected
            tally.failures.append(f"{label}: {str(exc)[:1500]}")

    run()


@contextmanager
def wsgi_in_the_test_transaction() -> Iterator[None]:
    """The real WSGI handler closes the database connection after each request, which would end
    the test's transaction; Django's test client keeps it open the same way (and connects the
    handlers again after each of its requests: so no test client call inside this)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def fuzz_as(world: World, callers: list[Caller]) -> Tally:
    world.order("patient.read")  # an access request and grants to list and look at
    tally = Tally()

    with wsgi_in_the_test_transaction():
        schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application)
        operations = [result.ok() for result in schema.get_all_operations()]
        for caller in callers:
            for operation in operations:
                fuzz(operation, caller, known_objects(world), tally)

    print(f"schemathesis: {len(operations)} operations, {tally.cases} cases, {tally.statuses}")
    assert len(operations) > 50
    assert tally.failures == [], "\n\n".join(tally.failures)
    return tally


def test_schemathesis_finds_no_5xx_and_no_answer_off_the_schema_for_any_role(
    world: World,
) -> None:
    fuzz_as(world, [browser_of(world.people[role]) for role in ROLES])


@pytest.mark.integration
def test_schemathesis_finds_no_5xx_and_no_answer_off_the_schema_for_automation_clients(
    world: World, oidc_settings: Provider
) -> None:
    """A kommune's automation client holding the kommune admin role and a vendor's holding the
    vendor admin role, each with its real bearer token: every call goes through
    ``AutomationTokenAuthentication`` (the provider's signature, issuer, audience, expiry)."""
    callers = [
        automation_client_of(
            world.people["kommune_admin"],
            world.kommune,
            Role.KOMMUNE_ADMIN,
            oidc_settings,
            seed=21,
        ),
        automation_client_of(
            world.people["vendor_admin"], world.vendor, Role.VENDOR_ADMIN, oidc_settings, seed=22
        ),
    ]
    tally = fuzz_as(world, callers)

    assert 401 not in tally.statuses, "a token was refused: the calls tested only the refusal"
