"""Metrics and logs after real work: an order through the API, provisioned by a real Celery
worker against the real oidc-provider and HAProxy (the ``stack`` fixture).

* /metrics moves as the work is done: the job done, the grant active, its time to active, the
  worker's push to the gateway, the API call's latency.
* The order's request id (the caller's X-Request-ID) reaches the worker: its JSON log lines and
  the audit events it writes carry it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from orders.models import Grant, GrantStatus, ProvisioningJob
from provisioning import runner
from tests.portal.test_metrics import TOKEN, scrape, value
from tests.provisioning.stack import Stack, broker_purge, wait_for
from tests.provisioning.test_provisioning import DEADLINE, Vendor, active

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def order_through_the_api(vendor: Vendor, *, request_id: str) -> Grant:
    """The vendor's admin orders patient read access for its kommune, as its browser would."""
    api = APIClient()
    api.force_authenticate(vendor.admin)
    response = api.post(
        "/api/v1/access-requests/",
        {
            "client": str(vendor.client.pk),
            "kommune": vendor.kommune.orgnr,
            "items": [{"service": "patient", "access": "read"}],
        },
        format="json",
        HTTP_X_REQUEST_ID=request_id,
    )
    assert response.status_code == 201, response.content
    assert response["X-Request-ID"] == request_id
    return Grant.objects.get(client=vendor.client)


def provisioned(grant: Grant) -> bool:
    """Active, and its job finished (the gateway push is the job's last step)."""
    return (
        active(grant)
        and not ProvisioningJob.objects.filter(client_id=grant.client_id)
        .exclude(status=ProvisioningJob.Status.DONE)
        .exists()
    )


def test_a_scrape_after_an_order_shows_the_job_done_the_grant_active_and_the_push(
    stack: Stack, settings: Any
) -> None:
    settings.METRICS_TOKEN = TOKEN
    stack.start_worker()
    vendor = Vendor()
    before = scrape()

    grant = order_through_the_api(vendor, request_id=uuid.uuid4().hex)
    wait_for(lambda: provisioned(grant), timeout=DEADLINE, what="grant provisioned")
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("tilgang_provisioning_jobs", status="done") == 1
    assert moved("tilgang_provisioning_jobs", status="pending") == 0
    assert moved("tilgang_grants", status="active") == 1
    assert moved("tilgang_grants", status=GrantStatus.PROVISIONING) == 0
    assert moved("tilgang_grant_time_to_active_seconds_count") == 1
    assert moved("tilgang_grant_time_to_active_seconds_bucket", le="+Inf") == 1
    assert 0 < moved("tilgang_grant_time_to_active_seconds_sum") < DEADLINE
    # Counted in the worker's pool process, read from its file by this (web) process.
    assert moved("tilgang_gateway_pushes_total", operation="upsert") >= 1
    failures = "tilgang_gateway_push_failures_total"
    assert moved(failures, operation="upsert", error="unavailable") == 0
    latency = "tilgang_http_request_duration_seconds_count"
    assert moved(latency, view="access-request-list", method="POST", status="2xx") == 1
    assert value(after, "tilgang_queue_depth", queue="celery") == 0


def test_the_request_id_of_an_order_is_on_the_workers_log_lines_and_audit_events(
    stack: Stack,
) -> None:
    stack.env["LOG_FORMAT"] = "json"
    stack.start_worker()
    vendor = Vendor()
    request_id = f"order-{uuid.uuid4().hex}"

    grant = order_through_the_api(vendor, request_id=request_id)
    wait_for(lambda: provisioned(grant), timeout=DEADLINE, what="grant provisioned")

    # The audit events the worker wrote name the request that set them off.
    [activated] = AuditEvent.objects.filter(action="grant.activated", object_id=str(grant.pk))
    assert activated.request_id == request_id
    # Every log line is one JSON object; the job's lines carry the request id and the task.
    text = "".join(log.read_text() for log in stack.worker_logs)
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert {"time", "level", "logger", "message", "request_id"} <= set(lines[0])
    job_lines = [line for line in lines if line.get("task_name") == "provisioning.run_job"]
    [done] = [line for line in job_lines if line["logger"] == "provisioning.runner"]
    assert done["request_id"] == request_id
    assert "done in" in done["message"]
    job_task_id = done["task_id"]
    same_task = [line for line in job_lines if line["task_id"] == job_task_id]
    assert {line["request_id"] for line in same_task} == {request_id}
    # The worker said nothing of the tokens it used.
    assert settings_secret_free(text)


def settings_secret_free(text: str) -> bool:
    from django.conf import settings

    secrets = [settings.OIDC_INITIAL_ACCESS_TOKEN, settings.TILGANG_ENCRYPTION_KEY]
    return not any(secret in text for secret in secrets) and "Bearer " not in text


def test_a_job_the_sweeper_sends_again_carries_the_request_id_of_the_order(
    stack: Stack,
) -> None:
    """The order's message is lost (the broker down when it committed): the sweeper, which runs
    under no request, sends the job again, and the worker's lines and audit events still name
    the order's request (they named none)."""
    stack.env["LOG_FORMAT"] = "json"
    vendor = Vendor()
    request_id = f"order-{uuid.uuid4().hex}"
    grant = order_through_the_api(vendor, request_id=request_id)
    broker_purge()  # the message is lost
    ProvisioningJob.objects.filter(client=vendor.client).update(sent_at=None)  # as when unsent

    assert runner.jobs_sweep() == 1
    stack.start_worker()
    wait_for(lambda: provisioned(grant), timeout=DEADLINE, what="grant provisioned")

    [activated] = AuditEvent.objects.filter(action="grant.activated", object_id=str(grant.pk))
    assert activated.request_id == request_id
    text = "".join(log.read_text() for log in stack.worker_logs)
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    job_lines = [line for line in lines if line.get("task_name") == "provisioning.run_job"]
    assert job_lines
    assert {line["request_id"] for line in job_lines} == {request_id}
