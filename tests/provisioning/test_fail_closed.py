"""Provisioning fails closed (issue 11, section 3), against the real stack: PostgreSQL, Redis,
real Celery workers, the real oidc-provider and a real HAProxy."""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone, translation

from orders import services
from orders.models import GrantStatus, ProvisioningJob, Service
from orders.policy import grant_reason_text
from provisioning import reconcile as reconcile_module
from provisioning import runner
from provisioning.reconcile import desired_entries, gateway_files_write, reconcile
from tenants.models import ClientKey
from tests.provisioning.stack import Stack, wait_for
from tests.provisioning.test_provisioning import DEADLINE, Vendor, active, fhir, status_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _keys(stack: Stack, vendor: Vendor) -> set[str]:
    client_id = vendor.client_id()
    return {key for key in stack.gateway.entries() if f"|{client_id}|" in key}


def test_a_grant_is_not_opened_before_the_authorization_server_accepted_its_scope(
    stack: Stack,
) -> None:
    stack.start_worker()
    vendor = Vendor()
    [first] = vendor.order("patient.read")
    wait_for(lambda: active(first), timeout=DEADLINE, what="first grant active")
    stack.provider.stop()
    try:
        [second] = vendor.order("care-plan.read")
        wait_for(
            lambda: ProvisioningJob.objects.filter(
                client=vendor.client, attempts__gte=1, status="pending"
            ).exists(),
            timeout=DEADLINE,
            what="the job waits for the server",
        )
        assert status_of(second) == GrantStatus.PROVISIONING
        services_open = {entry.service for entry in desired_entries()}
        assert services_open == {"patient"}
        gateway_files_write()
        assert "care-plan" not in stack.gateway.config.grants_map.read_text()
    finally:
        stack.provider.start()
    wait_for(lambda: active(second), timeout=60, what="second grant active")


def test_a_refused_grant_fails_closed_and_does_not_hold_back_the_clients_other_grants(
    stack: Stack,
) -> None:
    stack.start_worker()
    vendor = Vendor()
    refused = vendor.order_refused()
    wait_for(lambda: status_of(refused) == GrantStatus.FAILED, timeout=DEADLINE, what="failed")
    assert all(entry.service != "care-plan" for entry in desired_entries())

    [patient] = vendor.order("patient.read")

    wait_for(
        lambda: status_of(patient) in (GrantStatus.ACTIVE, GrantStatus.FAILED),
        timeout=DEADLINE,
        what="the next grant settles",
    )
    assert status_of(patient) == GrantStatus.ACTIVE
    assert status_of(refused) == GrantStatus.FAILED
    token = stack.access_token(vendor.client_id(), vendor.key)
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 200
    assert stack.call(fhir(vendor.kommune, "CarePlan/1"), token).status_code == 403
    assert {key.split("|")[3] for key in _keys(stack, vendor)} == {"patient"}


def test_revocation_closes_the_gateway_within_a_second_while_a_job_backs_off(
    stack: Stack,
) -> None:
    stack.start_worker()
    stack.start_close_worker()
    vendor = Vendor()
    [patient] = vendor.order("patient.read")
    token = vendor.token_once_active(stack, patient)
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 200
    stack.provider.pause()
    try:
        [_care_plan] = vendor.order("care-plan.read")
        # The client's job now waits for the frozen server, then backs off.
        wait_for(
            lambda: ProvisioningJob.objects.filter(
                client=vendor.client, status__in=("running", "pending"), attempts__gte=1
            ).exists(),
            timeout=DEADLINE,
            what="the job is held by the frozen server",
        )
        ProvisioningJob.objects.filter(client=vendor.client, status="pending").update(
            next_attempt_at=timezone.now() + datetime.timedelta(minutes=1)
        )

        started = time.monotonic()
        services.grant_revoke(grant=patient, actor=vendor.kommune_admin)
        wait_for(
            lambda: stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 403,
            timeout=DEADLINE,
            what="the gateway closes",
        )
        assert time.monotonic() - started <= 1.0
    finally:
        stack.provider.resume()
    # Neither the map files nor the reconciler open it again.
    gateway_files_write()
    assert "|patient|" not in stack.gateway.config.grants_map.read_text()
    reconcile()
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 403


def test_revocation_closes_the_gateway_within_a_second_while_other_clients_jobs_fill_the_pool(
    stack: Stack,
) -> None:
    """The close does not queue behind other Celery work: with the server frozen every job
    holds a worker process for the read timeout, and here every process of the main pool is
    held by another client's job when the revocation commits."""
    stack.start_worker()  # two processes
    stack.start_close_worker()
    revoked, others = Vendor(), [Vendor(), Vendor()]
    [patient] = revoked.order("patient.read")
    token = revoked.token_once_active(stack, patient)
    assert stack.call(fhir(revoked.kommune, "Patient/1"), token).status_code == 200
    stack.provider.pause()
    try:
        for other in others:
            other.order("patient.read")
        wait_for(
            lambda: (
                ProvisioningJob.objects.filter(
                    client__in=[other.client for other in others], status="running"
                ).count()
                == 2
            ),
            timeout=DEADLINE,
            what="both processes of the pool hold a job waiting for the frozen server",
        )

        started = time.monotonic()
        services.grant_revoke(grant=patient, actor=revoked.kommune_admin)
        wait_for(
            lambda: stack.call(fhir(revoked.kommune, "Patient/1"), token).status_code == 403,
            timeout=DEADLINE,
            what="the gateway closes",
        )
        elapsed = time.monotonic() - started
        assert elapsed <= 1.0, f"closed after {elapsed:.2f} s"
    finally:
        stack.provider.resume()


def test_a_worker_that_read_a_grant_before_its_revocation_does_not_leave_it_open(
    stack: Stack,
) -> None:
    vendor = Vendor()  # no worker: this test is the worker
    [grant] = vendor.order("patient.read")
    job = ProvisioningJob.objects.get(client=vendor.client)
    claimed = runner.job_claim(job_id=job.pk)
    assert claimed is not None
    _, state = claimed
    assert [g.pk for g in state.new] == [grant.pk]

    services.grant_revoke(grant=grant, actor=vendor.kommune_admin)
    # The worker goes on with what it read: registers, then opens what it read as new.
    runner.client_sync(client_id=vendor.client.pk, state=state)

    assert _keys(stack, vendor) == set()
    assert status_of(grant) in (GrantStatus.REVOKING, GrantStatus.REVOKED)


def test_the_reconciler_heals_the_gateway_while_the_authorization_server_is_down(
    stack: Stack,
) -> None:
    stack.start_worker()
    vendor = Vendor()
    [grant] = vendor.order("patient.read")
    token = vendor.token_once_active(stack, grant)
    stack.stop_haproxy()
    stack.gateway.config.grants_map.write_text("")
    stack.start_haproxy()
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 403

    stack.provider.stop()
    try:
        report = reconcile()
    finally:
        stack.provider.start()

    assert "reconcile.gateway_grants" in report.heals
    assert report.errors
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 200


def test_two_reconcilers_do_not_run_at_once(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    inside = threading.Event()
    leave = threading.Event()
    runs: list[str] = []
    real_gateway = reconcile_module._gateways

    def gateway_step(report: Any) -> None:
        runs.append(threading.current_thread().name)
        inside.set()
        leave.wait(timeout=20)
        real_gateway(report)

    monkeypatch.setattr(reconcile_module, "_gateways", gateway_step)
    results: list[Any] = []

    def first() -> None:
        try:
            results.append(reconcile())
        finally:
            connection.close()

    thread = threading.Thread(target=first, name="first")
    thread.start()
    assert inside.wait(timeout=20)
    try:
        second = reconcile()
    finally:
        leave.set()
        thread.join(timeout=30)

    assert runs == ["first"]
    assert second.skipped
    assert not results[0].skipped


def test_a_client_whose_keys_all_expired_is_closed_with_a_reason_and_healed_once(
    stack: Stack,
) -> None:
    stack.start_worker()
    vendor = Vendor()
    [grant] = vendor.order("patient.read")
    token = vendor.token_once_active(stack, grant)
    ClientKey.objects.filter(client=vendor.client).update(
        expires_at=timezone.now() - datetime.timedelta(minutes=1)
    )

    first = reconcile()

    assert first.heals
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 403
    vendor.client.refresh_from_db()
    assert vendor.client.provisioning_status == "keys_expired"
    assert vendor.client.provisioning_error
    grant.refresh_from_db()
    assert grant.status not in (GrantStatus.ACTIVE, GrantStatus.PROVISIONING)
    assert grant.status_reason
    # Kept as a code, worded in each reader's language.
    assert grant.status_reason_code == "keys_expired"
    with translation.override("en"):
        english = grant_reason_text(grant.status_reason_code, grant.status_reason_params)
    with translation.override("nb"):
        bokmal = grant_reason_text(grant.status_reason_code, grant.status_reason_params)
    assert english.startswith("Every public key of the client has expired")
    assert bokmal != english
    second = reconcile()
    assert second.heals == []
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 403


def test_an_unforeseen_error_in_a_real_worker_ends_the_job_failed_with_its_reason(
    stack: Stack,
) -> None:
    stack.env["PROVISIONING_MAX_ATTEMPTS"] = "2"
    vendor = Vendor()
    [grant] = vendor.order("care-plan.read")
    # A service code the gateway cannot carry: building its map entry raises ValueError, an
    # exception that is neither of the two known kinds.
    Service.objects.filter(code="care-plan").update(code="care plan")
    job = ProvisioningJob.objects.get(client=vendor.client)
    stack.start_worker()
    stack.start_beat()

    wait_for(
        lambda: ProvisioningJob.objects.get(pk=job.pk).status == ProvisioningJob.Status.FAILED,
        timeout=DEADLINE,
        what="job failed",
    )
    job.refresh_from_db()
    assert job.attempts == 2
    assert "ValueError" in job.last_error
    assert job.lease_expires_at is None
    assert _keys(stack, vendor) == set()
    assert status_of(grant) == GrantStatus.FAILED


def test_a_job_whose_last_attempt_was_killed_fails_with_its_reason_and_is_not_run_again(
    stack: Stack,
) -> None:
    stack.env["PROVISIONING_MAX_ATTEMPTS"] = "1"  # the workers' setting: the first is the last
    victim = stack.start_worker("victim")
    survivor = stack.start_worker("survivor", queue="standby")
    stack.start_beat()
    vendor = Vendor()
    stack.provider.pause()  # the registration call hangs: the job is mid-flight
    [grant] = vendor.order("patient.read")
    job = ProvisioningJob.objects.get(client=vendor.client)
    wait_for(
        lambda: ProvisioningJob.objects.get(pk=job.pk).status == ProvisioningJob.Status.RUNNING,
        timeout=DEADLINE,
        what="job running",
    )

    stack.kill_worker(victim)  # as a time limit or the out-of-memory killer would
    stack.provider.resume()
    stack.consume(survivor)

    # The lease ends, the sweeper sends the job again, the survivor's claim fails it.
    wait_for(
        lambda: (
            ProvisioningJob.objects.get(pk=job.pk).status
            in (ProvisioningJob.Status.FAILED, ProvisioningJob.Status.DONE)
        ),
        timeout=60,
        what="the job ends",
    )
    job.refresh_from_db()
    assert (job.status, job.attempts) == (ProvisioningJob.Status.FAILED, 1)
    assert str(runner.GAVE_UP_UNFINISHED % {"attempts": 1}) == job.last_error
    assert status_of(grant) == GrantStatus.FAILED
    # The survivor's claim failed it without a sync (the victim's request, held by the frozen
    # server, may still have registered the client: the job's reason says it did not finish).
    outcomes = list(stack.task_results().values())
    assert "failed" in outcomes
    assert "done" not in outcomes
