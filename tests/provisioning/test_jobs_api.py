"""The provisioning queue in the API: NHN staff read it, NHN operators retry failed jobs."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from orders.models import ProvisioningJob
from tests.conftest import World

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed(world: World) -> ProvisioningJob:
    return ProvisioningJob.objects.create(
        client=world.client, reason="grant.approved", status="failed", last_error="HTTP 400: x"
    )


@pytest.mark.parametrize(
    ("who", "listed", "retried"),
    [
        ("nhn_operator", 200, 200),
        ("nhn_auditor", 200, 403),
        ("vendor_admin", 403, 403),
        ("kommune_admin", 403, 403),
    ],
)
def test_the_queue_is_nhn_staffs_and_retry_is_the_operators(
    world: World, failed: ProvisioningJob, who: str, listed: int, retried: int
) -> None:
    api = APIClient()
    api.force_authenticate(world.people[who])

    listing = api.get("/api/v1/provisioning-jobs/", {"status": "failed"})
    retry = api.post(f"/api/v1/provisioning-jobs/{failed.pk}/retry/")

    assert listing.status_code == listed
    assert retry.status_code == retried
    failed.refresh_from_db()
    assert failed.status == ("pending" if retried == 200 else "failed")
    if listed == 200:
        rows = listing.json()["results"]
        assert [r["id"] for r in rows] == [str(failed.pk)]
        assert rows[0]["last_error"] == "HTTP 400: x"
        assert "registration_access_token" not in str(rows)


def test_only_a_failed_job_is_retried(world: World, failed: ProvisioningJob) -> None:
    ProvisioningJob.objects.filter(pk=failed.pk).update(status="done")
    api = APIClient()
    api.force_authenticate(world.people["nhn_operator"])
    response: Any = api.post(f"/api/v1/provisioning-jobs/{failed.pk}/retry/")
    assert response.status_code == 409
