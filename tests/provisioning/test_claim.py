"""A job is claimed only when due and while no other job of its client holds a live lease."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection
from django.db.models.functions import Now
from django.utils import timezone

from orders.models import ProvisioningJob
from provisioning.runner import job_claim, jobs_sweep, lease_renew
from tests.conftest import World

pytestmark = pytest.mark.django_db


def _job(world: World, **fields: object) -> ProvisioningJob:
    return ProvisioningJob.objects.create(client=world.client, reason="grant.approved", **fields)


def test_a_due_job_is_taken_with_a_lease_and_the_pending_jobs_of_its_client_ride_along(
    world: World,
) -> None:
    job, later = _job(world), _job(world)

    claimed = job_claim(job_id=job.pk)

    assert claimed is not None
    job.refresh_from_db()
    assert (job.status, job.attempts) == (ProvisioningJob.Status.RUNNING, 1)
    assert job.lease_expires_at is not None
    assert job.lease_expires_at > timezone.now()
    later.refresh_from_db()
    assert (later.status, later.coalesced_into_id) == (ProvisioningJob.Status.DONE, job.pk)


def test_a_job_waits_while_another_job_of_its_client_holds_a_live_lease(world: World) -> None:
    in_minute = timezone.now() + datetime.timedelta(minutes=1)
    _job(world, status=ProvisioningJob.Status.RUNNING, attempts=1, lease_expires_at=in_minute)
    waiting = _job(world)

    assert job_claim(job_id=waiting.pk) is None

    waiting.refresh_from_db()
    assert (waiting.status, waiting.attempts) == (ProvisioningJob.Status.PENDING, 0)


def test_a_lease_that_ran_out_does_not_hold_the_client(world: World) -> None:
    a_minute_ago = timezone.now() - datetime.timedelta(minutes=1)
    _job(world, status=ProvisioningJob.Status.RUNNING, attempts=1, lease_expires_at=a_minute_ago)
    waiting = _job(world)

    assert job_claim(job_id=waiting.pk) is not None

    waiting.refresh_from_db()
    assert waiting.status == ProvisioningJob.Status.RUNNING


def test_a_job_of_another_client_does_not_hold_this_one(world: World) -> None:
    in_minute = timezone.now() + datetime.timedelta(minutes=1)
    ProvisioningJob.objects.create(
        client=world.other_client,
        reason="grant.approved",
        status=ProvisioningJob.Status.RUNNING,
        lease_expires_at=in_minute,
    )
    waiting = _job(world)

    assert job_claim(job_id=waiting.pk) is not None


def test_a_job_not_yet_due_is_not_taken(world: World) -> None:
    waiting = _job(world, next_attempt_at=timezone.now() + datetime.timedelta(minutes=1))

    assert job_claim(job_id=waiting.pk) is None
    waiting.refresh_from_db()
    assert waiting.status == ProvisioningJob.Status.PENDING


# --- Leases run on the database's clock, not each host's --------------------------------------


def _database_now() -> datetime.datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT STATEMENT_TIMESTAMP()")
        now: datetime.datetime = cursor.fetchone()[0]
    return now


@pytest.fixture
def clock_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    """This host's clock runs a minute ahead of the database's (and of the other workers')."""
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + datetime.timedelta(minutes=1))


def test_a_host_whose_clock_runs_ahead_neither_claims_nor_sweeps_a_live_lease(
    world: World, clock_ahead: None
) -> None:
    held = _job(world)
    # Another worker's live lease, taken on the database's clock.
    ProvisioningJob.objects.filter(pk=held.pk).update(
        status=ProvisioningJob.Status.RUNNING,
        attempts=1,
        lease_expires_at=Now() + datetime.timedelta(seconds=15),
    )

    assert job_claim(job_id=held.pk) is None
    jobs_sweep()

    held.refresh_from_db()
    assert held.status == ProvisioningJob.Status.RUNNING


def test_a_lease_is_taken_and_renewed_on_the_database_clock(
    world: World, clock_ahead: None, settings: Any
) -> None:
    settings.PROVISIONING_LEASE_SECONDS = 15
    claimed = job_claim(job_id=_job(world).pk)
    assert claimed is not None
    job, _state = claimed

    def remaining() -> datetime.timedelta:
        job.refresh_from_db()
        assert job.lease_expires_at is not None
        return job.lease_expires_at - _database_now()

    assert datetime.timedelta(seconds=10) < remaining() <= datetime.timedelta(seconds=15)
    lease_renew(job)
    assert datetime.timedelta(seconds=10) < remaining() <= datetime.timedelta(seconds=15)
