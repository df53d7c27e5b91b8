"""Provisioning end to end: PostgreSQL, the broker, real Celery workers, the real oidc-provider
and a real HAProxy, all on loopback. Deadlines are generous; `make bench` measures latency."""

from __future__ import annotations

import base64
import json
import time

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from orders import services
from orders.api.serializers import SERVICE_CODES
from orders.models import Access, AccessRequest, Grant, GrantStatus, ProvisioningJob, Service
from provisioning.models import ClientRegistration
from provisioning.reconcile import reconcile
from tenants.models import Environment, Organisation, Product, Role
from tests.factories import (
    ClientFactory,
    DelegationFactory,
    InstructionFactory,
    KommuneOrganisationFactory,
    MembershipFactory,
    OrganisationFactory,
    ProductFactory,
)
from tests.keys import jwks, rsa_private_key, rsa_public_jwk
from tests.provisioning.stack import Stack, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

DEADLINE = 30.0


class Vendor:
    """A VFT (or ``system_type``) vendor with a production client, and a kommune that has
    delegated everything."""

    def __init__(
        self,
        environment: str = Environment.PRODUCTION,
        system_type: str = Product.SystemType.VFT,
    ) -> None:
        self.kommune = KommuneOrganisationFactory()
        self.other_kommune = KommuneOrganisationFactory()
        self.vendor = OrganisationFactory(kind=Organisation.Kind.VENDOR)
        self.admin = MembershipFactory(organisation=self.vendor, role=Role.VENDOR_ADMIN).user
        self.kommune_admin = MembershipFactory(
            organisation=self.kommune, role=Role.KOMMUNE_ADMIN
        ).user
        product = ProductFactory(vendor=self.vendor, system_type=system_type)
        self.client = ClientFactory(product=product, environment=environment)
        InstructionFactory(kommune=self.kommune)
        # Every service, both accesses, every tjenstlig-behov code: the codes a grant holds are
        # those the vendor asks for that the kommune allowed.
        DelegationFactory(
            kommune=self.kommune,
            vendor=self.vendor,
            items=[(s, a, SERVICE_CODES) for s in Service.objects.all() for a in Access.values],
        )
        self.key = rsa_private_key(0)

    def order(
        self,
        *codes_access: str,
        kommune: Organisation | None = None,
        service_codes: tuple[str, ...] = (),
    ) -> list[Grant]:
        items = []
        for code_access in codes_access:
            code, access = code_access.split(".")
            service = Service.objects.get(code=code)
            items.append(services.ItemInput(service, access, service_codes=service_codes))
        [request] = services.access_request_create(
            client=self.client,
            kommuner=[kommune or self.kommune],
            items=items,
            initiated_by=AccessRequest.Initiator.VENDOR,
            actor=self.admin,
        )
        return [item.grant for item in request.items.all() if item.grant is not None]

    def client_id(self) -> str:
        self.client.refresh_from_db()
        return self.client.client_id

    def token_once_active(self, stack: Stack, *grants: Grant) -> str:
        """Once every grant is active, a token for the client."""
        wait_for(
            lambda: all(active(grant) for grant in grants),
            timeout=DEADLINE,
            what="grant active",
        )
        return stack.access_token(self.client_id(), self.key)

    def order_refused(self) -> Grant:
        """An order under a scope the server does not know: it refuses the client metadata
        with a 400."""
        Service.objects.filter(code="care-plan").update(read_scope="nhn:unknown/care-plan.read")
        [grant] = self.order("care-plan.read")
        return grant


def active(grant: Grant) -> bool:
    grant.refresh_from_db()
    return grant.status == GrantStatus.ACTIVE


def status_of(grant: Grant) -> str:
    grant.refresh_from_db()
    return grant.status


def fhir(kommune: Organisation, resource: str, environment: str = "production") -> str:
    prefix = "/test" if environment == "test" else ""
    return f"{prefix}/{kommune.orgnr}/fhir/{resource}"


def test_an_approved_grant_becomes_active_and_only_its_access_passes_the_gateway(
    stack: Stack,
) -> None:
    stack.start_worker()
    vendor = Vendor()

    [grant] = vendor.order("patient.read")
    wait_for(lambda: active(grant), timeout=DEADLINE, what="grant active")

    client_id = vendor.client_id()
    assert client_id.startswith("tilgang-")
    token = stack.access_token(client_id, vendor.key)
    through = stack.call(fhir(vendor.kommune, "Patient/123"), token)
    assert through.status_code == 200, through.text
    assert through.json()["client"] == client_id
    assert through.json()["kommune"] == vendor.kommune.orgnr
    assert through.json()["service"] == "patient"
    assert stack.call(fhir(vendor.kommune, "Patient?name=x"), token, "HEAD").status_code == 200
    assert stack.call(fhir(vendor.kommune, "Patient/_search"), token, "POST").status_code == 200

    assert stack.call(fhir(vendor.other_kommune, "Patient/123"), token).status_code == 403
    assert stack.call(fhir(vendor.kommune, "Observation/1"), token).status_code == 403
    assert stack.call(fhir(vendor.kommune, "Patient"), token, "POST").status_code == 403
    assert stack.call(fhir(vendor.kommune, "Unknown/1"), token).status_code == 404

    assert stack.call(fhir(vendor.kommune, "Patient/123"), None).status_code == 401
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["client_id"] = "someone-else"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{signature}"
    assert stack.call(fhir(vendor.kommune, "Patient/123"), forged).status_code == 401

    registration = ClientRegistration.objects.get(client=vendor.client)
    assert registration.registration_access_token  # kept, encrypted
    assert "registration_access_token" not in json.dumps(
        list(AuditEvent.objects.values("before", "after")), default=str
    )
    api = APIClient()
    api.force_authenticate(vendor.admin)
    shown = api.get(f"/api/v1/grants/{grant.pk}/").json()
    assert shown["status"] == "active"
    assert shown["provisioning"]["status"] == "provisioned"
    assert registration.registration_access_token not in json.dumps(
        api.get(f"/api/v1/clients/{vendor.client.pk}/").json()
    )


def test_revoking_closes_the_gateway_and_narrows_the_scope_at_the_server(stack: Stack) -> None:
    stack.start_worker()
    stack.start_close_worker()
    vendor = Vendor()
    patient, observation = vendor.order("patient.read", "observation.write")
    wait_for(lambda: active(patient) and active(observation), timeout=DEADLINE, what="active")
    client_id = vendor.client_id()
    token = stack.access_token(client_id, vendor.key)
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 200
    assert stack.token(client_id, vendor.key, scope="nhn:ksp/patient.read").status_code == 200

    services.grant_revoke(grant=patient, actor=vendor.kommune_admin)

    wait_for(
        lambda: stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 403,
        timeout=DEADLINE,
        what="gateway denies the revoked grant",
    )
    wait_for(lambda: status_of(patient) == GrantStatus.REVOKED, timeout=DEADLINE, what="revoked")
    refused = stack.token(client_id, vendor.key, scope="nhn:ksp/patient.read")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"
    # The other grant still works, with the same token and a new one.
    assert stack.call(fhir(vendor.kommune, "Observation"), token, "POST").status_code == 200
    assert stack.token(client_id, vendor.key, scope="nhn:ksp/observation.write").status_code == 200
    # The removal waits in the revoked map until the reconciler swaps in a new grants map: no
    # drift to heal, and the grant stays closed.
    assert stack.gateway.revoked()
    assert "reconcile.gateway_grants" not in reconcile().heals
    assert stack.gateway.revoked() == set()
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 403
    assert stack.call(fhir(vendor.kommune, "Observation"), token, "POST").status_code == 200


def test_a_job_delivered_twice_makes_one_registration_and_one_map_entry(stack: Stack) -> None:
    vendor = Vendor()
    before = stack.provider.registrations()
    [grant] = vendor.order("patient.read")
    job = ProvisioningJob.objects.get(client=vendor.client)
    from portal import celery_app

    for _ in range(3):  # three duplicates of the message sent on commit
        celery_app.send_task("provisioning.run_job", args=[str(job.pk)])
    stack.start_worker()

    wait_for(lambda: active(grant), timeout=DEADLINE, what="grant active")
    late = [celery_app.send_task("provisioning.run_job", args=[str(job.pk)]).id for _ in range(2)]

    # Every delivery has run (the on-commit message, three before the worker and two after):
    # their outcomes in the workers' log, not a pause that hopes they are done.
    def all_run() -> dict[str, str] | None:
        found = stack.task_results()
        return found if len(found) >= 6 and set(late) <= set(found) else None

    results = wait_for(all_run, timeout=DEADLINE, what="all six deliveries run")
    assert sorted(results.values()) == ["done"] + ["skipped"] * 5
    assert [results[task_id] for task_id in late] == ["skipped", "skipped"]
    assert stack.provider.registrations() == before + 1
    entries = [e for e in stack.gateway.entries() if vendor.client_id() in e]
    assert len(entries) == 1
    job.refresh_from_db()
    assert job.status == ProvisioningJob.Status.DONE
    assert job.attempts == 1


def test_a_worker_killed_mid_job_leaves_the_same_end_state_within_30_seconds(
    stack: Stack,
) -> None:
    # Everything starts before the job does, so the 30 s are counted from the kill, not from
    # start-ups; the survivor waits on a queue nobody sends to until the victim is dead.
    victim = stack.start_worker("victim")
    survivor = stack.start_worker("survivor", queue="standby")
    stack.start_beat()
    vendor = Vendor()
    before = stack.provider.registrations()
    stack.provider.pause()  # the registration call hangs: the job is mid-flight
    [grant] = vendor.order("patient.read")
    job = ProvisioningJob.objects.get(client=vendor.client)
    wait_for(
        lambda: ProvisioningJob.objects.get(pk=job.pk).status == ProvisioningJob.Status.RUNNING,
        timeout=DEADLINE,
        what="job running",
    )

    stack.kill_worker(victim)
    killed_at = time.monotonic()
    stack.provider.resume()
    stack.consume(survivor)

    # The lease (15 s) ends, the sweep (every 2 s) sends the job again, the survivor runs it.
    wait_for(lambda: active(grant), timeout=30, what="grant active within 30 s of the kill")
    assert time.monotonic() - killed_at < 30
    job.refresh_from_db()
    assert job.attempts == 2  # the victim's claim and the survivor's
    assert stack.provider.registrations() == before + 1
    assert len([e for e in stack.gateway.entries() if vendor.client_id() in e]) == 1
    token = stack.access_token(vendor.client_id(), vendor.key)
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 200


def test_the_authorization_server_down_is_retried_with_backoff_until_it_is_back(
    stack: Stack,
) -> None:
    stack.start_worker()
    vendor = Vendor()
    stack.provider.stop()
    try:
        [grant] = vendor.order("patient.read")
        # Four attempts while the server is down (at least 3.5 s of backoff between them),
        # each put back to wait, none failing the job.
        waiting = wait_for(
            lambda: ProvisioningJob.objects.filter(
                client=vendor.client, status=ProvisioningJob.Status.PENDING, attempts__gte=4
            ).first(),
            timeout=60,
            what="four attempts while the server is down",
        )
        # Backoff, not a storm: the delay before the next try doubles with each attempt (about
        # 1, 2, 4, 8 s with jitter down to half), read from the row the worker wrote, not timed.
        delay = (waiting.next_attempt_at - waiting.updated_at).total_seconds()
        assert delay >= 0.5 * 2 ** (waiting.attempts - 1) - 0.5
        assert status_of(grant) == GrantStatus.PROVISIONING
        vendor.client.refresh_from_db()
        assert vendor.client.provisioning_status == "pending"
        assert "no answer" in vendor.client.provisioning_error
    finally:
        stack.provider.start()
    wait_for(lambda: active(grant), timeout=60, what="grant active once the server is back")
    # The grant is activated during the sync; the job ends done in the transaction after it.
    job = wait_for(
        lambda: ProvisioningJob.objects.filter(client=vendor.client, status="done").first(),
        timeout=DEADLINE,
        what="the job done",
    )
    assert job.attempts > waiting.attempts  # retried until the server answered


def test_a_refusal_by_the_server_fails_with_its_reason_and_retry_works_after_a_fix(
    stack: Stack,
) -> None:
    stack.start_worker()
    vendor = Vendor()
    grant = vendor.order_refused()
    job = ProvisioningJob.objects.get(client=vendor.client)

    wait_for(
        lambda: ProvisioningJob.objects.get(pk=job.pk).status == ProvisioningJob.Status.FAILED,
        timeout=DEADLINE,
        what="job failed",
    )
    job.refresh_from_db()
    assert job.attempts == 1  # no retry storm
    assert "invalid_client_metadata" in job.last_error
    assert status_of(grant) == GrantStatus.FAILED

    operator = MembershipFactory(
        organisation=OrganisationFactory(kind=Organisation.Kind.OPERATOR),
        role=Role.NHN_OPERATOR,
    ).user
    api = APIClient()
    api.force_authenticate(operator)
    listed = api.get("/api/v1/provisioning-jobs/", {"status": "failed"}).json()["results"]
    assert [j["id"] for j in listed] == [str(job.pk)]
    # The fix: the kommune revokes the grant that cannot be provisioned; then the retry succeeds.
    services.grant_revoke(grant=grant, actor=vendor.kommune_admin)
    retried = api.post(f"/api/v1/provisioning-jobs/{job.pk}/retry/")
    assert retried.status_code == 200, retried.json()
    wait_for(
        lambda: ProvisioningJob.objects.get(pk=job.pk).status == ProvisioningJob.Status.DONE,
        timeout=DEADLINE,
        what="job done after retry",
    )
    assert vendor.client_id()


def test_after_an_haproxy_restart_the_reconciler_restores_the_entries(stack: Stack) -> None:
    stack.start_worker()
    vendor = Vendor()
    [grant] = vendor.order("patient.read")
    token = vendor.token_once_active(stack, grant)

    stack.stop_haproxy()
    config = stack.gateway.config
    config.grants_map.write_text("")  # the map files had not been rewritten yet
    stack.start_haproxy()
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 403

    report = reconcile()

    assert "reconcile.gateway_grants" in report.heals
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 200
    assert AuditEvent.objects.filter(action="reconcile.gateway_grants").count() == 1
    assert reconcile().heals == []  # nothing left to heal


def test_the_reconciler_heals_a_registration_changed_behind_its_back(stack: Stack) -> None:
    stack.start_worker()
    vendor = Vendor()
    [grant] = vendor.order("patient.read")
    wait_for(lambda: active(grant), timeout=DEADLINE, what="grant active")
    registration = ClientRegistration.objects.get(client=vendor.client)
    from provisioning.authserver import AuthServerClient

    server = AuthServerClient()
    metadata = server.read(
        registration.registration_client_uri, registration.registration_access_token
    )
    server_managed = {
        "registration_access_token",
        "registration_client_uri",
        "client_id_issued_at",
        "client_secret_expires_at",
    }
    narrowed = {k: v for k, v in metadata.items() if k not in server_managed}
    narrowed["scope"] = "nhn:ksp/observation.read"
    server.update(
        registration.registration_client_uri,
        registration.registration_access_token,
        registration.server_client_id,
        narrowed,
    )
    assert (
        stack.token(vendor.client_id(), vendor.key, scope="nhn:ksp/patient.read").status_code == 400
    )

    report = reconcile()

    assert "reconcile.registration" in report.heals
    assert (
        stack.token(vendor.client_id(), vendor.key, scope="nhn:ksp/patient.read").status_code == 200
    )
    assert AuditEvent.objects.filter(
        action="reconcile.registration", object_id=str(vendor.client.pk)
    ).exists()


def test_key_rotation_lets_the_new_key_in_and_keeps_the_removed_key_out(stack: Stack) -> None:
    stack.start_worker()
    vendor = Vendor()
    [grant] = vendor.order("patient.read")
    wait_for(lambda: active(grant), timeout=DEADLINE, what="grant active")
    client_id = vendor.client_id()
    new_key = rsa_private_key(1)

    services.client_jwks_rotate(
        client=vendor.client, jwks=jwks(rsa_public_jwk("key-2", seed=1)), actor=vendor.admin
    )

    wait_for(
        lambda: stack.token(client_id, new_key, kid="key-2").status_code == 200,
        timeout=DEADLINE,
        what="the new key accepted",
    )
    refused = stack.token(client_id, vendor.key, kid="key-1")
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    token = stack.access_token(client_id, new_key, kid="key-2")
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 200


def test_a_restarted_provider_keeps_the_client_and_its_client_id(stack: Stack) -> None:
    stack.start_worker()
    vendor = Vendor()
    [grant] = vendor.order("patient.read")
    wait_for(lambda: active(grant), timeout=DEADLINE, what="grant active")
    client_id = vendor.client_id()

    stack.provider.restart()

    token = stack.access_token(client_id, vendor.key)
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 200
    assert vendor.client_id() == client_id


def test_test_and_production_are_separated_end_to_end(stack: Stack) -> None:
    stack.start_worker()
    production = Vendor()
    testing = Vendor(environment=Environment.TEST)
    [prod_grant] = production.order("patient.read")
    [test_grant] = testing.order("patient.read")
    wait_for(lambda: active(prod_grant) and active(test_grant), timeout=DEADLINE, what="active")
    prod_token = stack.access_token(production.client_id(), production.key)
    test_token = stack.access_token(testing.client_id(), testing.key)

    assert stack.call(fhir(testing.kommune, "Patient/1", "test"), test_token).status_code == 200
    assert stack.call(fhir(testing.kommune, "Patient/1"), test_token).status_code == 403
    assert stack.call(fhir(production.kommune, "Patient/1"), prod_token).status_code == 200
    assert stack.call(fhir(production.kommune, "Patient/1", "test"), prod_token).status_code == 403


def test_the_map_files_follow_the_database_in_the_background_coalesced(stack: Stack) -> None:
    from provisioning.reconcile import gateway_files_write

    stack.start_worker()
    vendor = Vendor()
    first, second = vendor.order("patient.read", "care-plan.read")
    wait_for(lambda: active(first) and active(second), timeout=DEADLINE, what="active")

    assert gateway_files_write() is True  # both changes in one rewrite
    assert gateway_files_write() is False  # nothing changed since
    written = stack.gateway.config.grants_map.read_text()
    client_id = vendor.client_id()
    assert f"production|{client_id}|{vendor.kommune.orgnr}|patient|read" in written
    assert f"production|{client_id}|{vendor.kommune.orgnr}|care-plan|read" in written


def test_a_grants_service_codes_reach_the_upstream_and_a_changed_set_is_healed(
    stack: Stack,
) -> None:
    stack.start_worker()
    vendor = Vendor()
    [grant] = vendor.order("patient.read", service_codes=("TA", "RT"))
    token = vendor.token_once_active(stack, grant)
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).json()["service_codes"] == "RT,TA"

    # Changed behind the gateway's back: the key is the same, its value (the codes) is not.
    Grant.objects.filter(pk=grant.pk).update(service_codes=["RT"])
    report = reconcile()

    assert "reconcile.gateway_grants" in report.heals
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).json()["service_codes"] == "RT"
    assert "|patient|read RT\n" in stack.gateway.config.grants_map.read_text()


def test_a_token_without_the_grants_scope_is_refused_by_the_gateway_end_to_end(
    stack: Stack,
) -> None:
    stack.start_worker()
    vendor = Vendor()
    patient, care_plan = vendor.order("patient.read", "care-plan.read")
    wait_for(lambda: active(patient) and active(care_plan), timeout=DEADLINE, what="active")
    client_id = vendor.client_id()
    narrow = stack.access_token(client_id, vendor.key, scope="nhn:ksp/patient.read")
    wide = stack.access_token(client_id, vendor.key)

    refused = stack.call(fhir(vendor.kommune, "CarePlan/1"), narrow)
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_scope"
    assert stack.call(fhir(vendor.kommune, "Patient/1"), narrow).status_code == 200
    reaching = fhir(vendor.kommune, "Patient?_revinclude=CarePlan:subject")
    assert stack.call(reaching, narrow).json()["error"] == "insufficient_scope"
    assert stack.call(reaching, wide).status_code == 200


def test_a_changed_catalogue_scope_is_written_into_the_gateway_and_reloaded_by_the_reconciler(
    stack: Stack,
) -> None:
    config = stack.gateway.config
    assert "nhn:ksp/patient.read" in config.config_file.read_text()

    Service.objects.filter(code="patient").update(read_scope="nhn:ksp/pasient.les")
    report = reconcile()

    assert "reconcile.gateway_keys" in report.heals  # the configuration, keys and scopes
    assert "nhn:ksp/pasient\\.les" in config.config_file.read_text()
    assert "nhn:ksp/patient\\.read" not in config.config_file.read_text()
    assert "patient|read nhn:ksp/pasient.les\n" in config.scopes_map.read_text()
    assert reconcile().heals == []
