"""Celery tasks of the provisioning workers: policy only (retries, schedules); the logic is in
``provisioning.runner`` and ``provisioning.reconcile``."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from portal.locks import OneAtATime
from provisioning import data_access, reconcile, runner
from provisioning.gateway import GatewayUnavailable


@shared_task(name="provisioning.run_job", bind=True, acks_late=True, max_retries=None)
def run_job(self: Task[Any, Any], job_id: str) -> str:
    """Run one provisioning job. acks_late is safe: the job is idempotent and claimed atomically.
    A transient failure comes back with a delay (exponential backoff with jitter, capped); the job
    row counts the attempts and fails for good after the configured maximum."""
    outcome = runner.job_run(job_id=job_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="provisioning.gateway_close", bind=True, acks_late=True, max_retries=50)
def gateway_close(self: Task[Any, Any], grant_ids: list[str]) -> int:
    """Close revoked grants at the gateway at once, whatever the client's job is waiting for.
    Idempotent: the client's job closes them too (gateway first, then the server). A gateway
    that does not answer is asked again soon (0.2 s, doubling, at most 5 s apart)."""
    try:
        return runner.gateway_close(grant_ids=grant_ids)
    except GatewayUnavailable as exc:
        raise self.retry(countdown=min(0.2 * 2**self.request.retries, 5.0)) from exc


@shared_task(name="provisioning.sweep", base=OneAtATime, ignore_result=True)
def sweep() -> int:
    """Re-send jobs whose message was lost or whose worker died."""
    return runner.jobs_sweep()


@shared_task(name="provisioning.reconcile", base=OneAtATime, ignore_result=True)
def reconcile_all() -> dict[str, int]:
    """Compare the desired state with the authorization server and the gateway; heal drift."""
    return reconcile.reconcile().counts()


@shared_task(name="provisioning.reconcile_gateways", base=OneAtATime, ignore_result=True)
def reconcile_gateways() -> dict[str, int]:
    """Compare each gateway with the database and heal it: every 10 s, so a gateway that comes
    back converges within 30 s."""
    return reconcile.reconcile_gateways().counts()


@shared_task(name="provisioning.write_gateway_files", base=OneAtATime, ignore_result=True)
def write_gateway_files() -> bool:
    """Rewrite the gateway's map files (read on reload) when they differ from the desired state.
    Coalesced: one rewrite every few seconds however many changes came in between."""
    return reconcile.gateway_files_write()


@shared_task(name="provisioning.data_access_purge", base=OneAtATime, ignore_result=True)
def data_access_purge() -> int:
    """Delete the data-access log's entries older than DATA_ACCESS_RETENTION_DAYS."""
    return data_access.data_access_purge()
