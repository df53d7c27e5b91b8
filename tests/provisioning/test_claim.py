"""A job is claimed only when due and while no other job of its client holds a live lease."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from orders.models import ProvisioningJob
from provisioning.runner import job_claim
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
