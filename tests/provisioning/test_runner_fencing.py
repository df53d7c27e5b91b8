"""The runner's guarantees that do not need the outside world: every failure counts as an attempt,
a lease belongs to one claim, a change committed during a claim is never lost, and the runner's
status changes are audited. The client's sync is replaced by a fake (the boundary to the
authorization server and the gateway); the database, its locks and the claim are real."""

from __future__ import annotations

import datetime
import threading
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone, translation

from audit.models import AuditEvent
from orders import services
from orders.models import Grant, GrantStatus, ProvisioningJob
from orders.policy import grant_reason_text
from provisioning import runner
from tests.components import wait_until
from tests.conftest import World
from tests.provisioning.test_runner_claims import grant_of


@pytest.mark.django_db
def test_any_exception_in_a_job_counts_as_an_attempt_and_the_last_one_fails_it(
    world: World, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PROVISIONING_MAX_ATTEMPTS = 2
    grant = grant_of(world, GrantStatus.PENDING)
    job = ProvisioningJob.objects.create(client=world.client, reason="grant.approved")

    def broken(**kwargs: Any) -> None:
        raise KeyError("a bug nobody foresaw")

    monkeypatch.setattr(runner, "client_sync", broken)

    first = runner.job_run(job_id=job.pk)

    job.refresh_from_db()
    assert first.status == "retry"
    assert (job.status, job.attempts) == (ProvisioningJob.Status.PENDING, 1)
    assert "KeyError" in job.last_error
    ProvisioningJob.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())

    last = runner.job_run(job_id=job.pk)

    job.refresh_from_db()
    assert last.status == "failed"
    assert (job.status, job.attempts) == (ProvisioningJob.Status.FAILED, 2)
    assert "KeyError" in job.last_error
    assert job.lease_expires_at is None
    grant.refresh_from_db()
    assert grant.status == GrantStatus.FAILED
    # The reason is kept as a code and worded in each reader's language.
    assert grant.status_reason_code == "gave_up"
    with translation.override("en"):
        english = grant_reason_text(grant.status_reason_code, grant.status_reason_params)
    with translation.override("nb"):
        bokmal = grant_reason_text(grant.status_reason_code, grant.status_reason_params)
    assert english.startswith("Gave up after 2 attempts")
    assert bokmal.startswith("Ga opp etter 2 forsøk")


@pytest.mark.django_db
def test_a_worker_whose_lease_was_taken_over_can_neither_finish_nor_release_the_new_claim(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant_of(world, GrantStatus.PENDING)
    job = ProvisioningJob.objects.create(client=world.client, reason="grant.approved")
    taken_over: dict[str, Any] = {}

    def slow_sync(**kwargs: Any) -> runner.ClientState:
        # While this worker is (say) frozen past its lease, another takes the job over.
        ProvisioningJob.objects.filter(pk=job.pk).update(
            lease_expires_at=timezone.now() - datetime.timedelta(seconds=1)
        )
        claim = runner.job_claim(job_id=job.pk)
        assert claim is not None
        taken_over["job"] = claim[0]
        state: runner.ClientState = kwargs["state"]
        return state

    monkeypatch.setattr(runner, "client_sync", slow_sync)

    outcome = runner.job_run(job_id=job.pk)

    assert outcome.status != "done"
    job.refresh_from_db()
    assert job.status == ProvisioningJob.Status.RUNNING  # the second claim's, untouched
    assert job.attempts == 2
    assert job.lease_expires_at is not None
    assert job.lease_expires_at > timezone.now()
    assert Grant.objects.filter(client=world.client, status=GrantStatus.ACTIVE).count() == 0


@pytest.mark.django_db
def test_a_live_worker_keeps_its_lease_so_no_second_worker_syncs_the_client(
    world: World, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PROVISIONING_LEASE_SECONDS = 2
    grant_of(world, GrantStatus.PENDING)
    job = ProvisioningJob.objects.create(client=world.client, reason="grant.approved")
    second_claims: list[object] = []
    first_expiry: list[datetime.datetime] = []

    def lease_expiry() -> datetime.datetime:
        expiry = ProvisioningJob.objects.get(pk=job.pk).lease_expires_at
        assert expiry is not None
        return expiry

    def long_sync(**kwargs: Any) -> runner.ClientState:
        # Steps (say: the server, then gateway calls) that each use half of the lease as it
        # stands after the step's fence, until the sync has outlasted the claim's lease: each
        # step is shorter than a lease, the whole sync is not. Waits on the row's lease, not on
        # a guessed duration.
        fence = kwargs["fence"]
        first_expiry.append(lease_expiry())
        steps = 0
        while steps < 3 or timezone.now() <= first_expiry[0]:
            fence()
            half_used = lease_expiry() - datetime.timedelta(seconds=1)
            wait_until(
                lambda at=half_used: timezone.now() >= at, timeout=10, what="half the lease used"
            )
            runner.jobs_sweep()  # what beat runs every 2 s: it must not see an abandoned job
            second_claims.append(runner.job_claim(job_id=job.pk))
            steps += 1
        state: runner.ClientState = kwargs["state"]
        return state

    monkeypatch.setattr(runner, "client_sync", long_sync)

    outcome = runner.job_run(job_id=job.pk)

    assert timezone.now() > first_expiry[0]  # the sync outlasted the claim's own lease
    assert second_claims
    assert all(claim is None for claim in second_claims)
    assert outcome.status == "done"
    job.refresh_from_db()
    assert (job.status, job.attempts) == (ProvisioningJob.Status.DONE, 1)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_revocation_that_commits_during_a_claim_is_read_by_it_or_gets_a_job_of_its_own(
    world: World,
) -> None:
    grant = grant_of(world, GrantStatus.ACTIVE)
    pending = ProvisioningJob.objects.create(client=world.client, reason="grant.approved")
    revoking = threading.Event()
    commit = threading.Event()
    errors: list[BaseException] = []

    def revoke() -> None:
        try:
            with transaction.atomic():
                services._grants_revoke(
                    Grant.objects.filter(pk=grant.pk), actor=None, reason="test"
                )
                revoking.set()
                commit.wait(timeout=10)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        finally:
            revoking.set()
            connection.close()

    revoker = threading.Thread(target=revoke)
    revoker.start()
    assert revoking.wait(timeout=10)
    claim: list[Any] = []

    def claimer() -> None:
        try:
            claim.append(runner.job_claim(job_id=pending.pk))
        finally:
            connection.close()

    worker = threading.Thread(target=claimer)
    worker.start()
    worker.join(timeout=0.5)  # a claim that does not wait for the revocation is done by now
    commit.set()
    revoker.join(timeout=10)
    worker.join(timeout=10)
    assert not errors

    [claimed] = claim
    assert claimed is not None
    _, state = claimed
    read_by_the_claim = grant.pk in {g.pk for g in state.closing}
    has_its_own_job = ProvisioningJob.objects.filter(
        client=world.client, status=ProvisioningJob.Status.PENDING
    ).exists()
    assert read_by_the_claim or has_its_own_job


@pytest.mark.django_db
def test_the_runners_status_changes_are_audited(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = grant_of(world, GrantStatus.PENDING)
    job = ProvisioningJob.objects.create(client=world.client, reason="grant.approved")

    def sync(**kwargs: Any) -> runner.ClientState:
        state: runner.ClientState = kwargs["state"]
        return state

    monkeypatch.setattr(runner, "client_sync", sync)

    assert runner.job_run(job_id=job.pk).status == "done"

    grant_actions = set(
        AuditEvent.objects.filter(object_id=str(grant.pk)).values_list("action", flat=True)
    )
    assert "grant.provisioning" in grant_actions
    client_events = AuditEvent.objects.filter(
        object_id=str(world.client.pk), action="client.provisioning_status"
    )
    assert [e.after["provisioning_status"] for e in client_events] == ["provisioned"]
