"""Running provisioning jobs: claim, bring one client's outside state in line, release.

A job names a client, not a change: the worker reads the client's desired state from the database
when it runs, so a job done twice changes nothing and jobs for one client coalesce (the latest
state wins). Jobs of one client never run at the same time: a claim takes the client's row lock
and refuses while another job of that client holds a live lease. Nothing external is called
inside a database transaction.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import audit_event_record, audit_events_batched
from orders.models import PASSING_GRANT_STATUSES, Grant, GrantStatus, ProvisioningJob
from orders.services import provisioning_job_send_on_commit
from portal.exceptions import Conflict
from provisioning.authserver import (
    AuthServerClient,
    AuthServerRejected,
    AuthServerUnavailable,
    RegistrationGone,
    client_metadata,
)
from provisioning.gateway import Entry, GatewayError, GatewayUnavailable, HAProxyGateway
from provisioning.models import ClientRegistration
from provisioning.settings import gateway_config
from tenants.models import OAuthClient

logger = logging.getLogger(__name__)

Job = ProvisioningJob
TRANSIENT = (AuthServerUnavailable, GatewayUnavailable)
PERMANENT = (AuthServerRejected, GatewayError)
PORTAL_API_SCOPE = "tilgang:api"
# A task delivered a little before its retry time (clock skew, jitter) may still claim the job.
EARLY_TOLERANCE = datetime.timedelta(seconds=1)


def lease() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.PROVISIONING_LEASE_SECONDS)


def backoff(attempts: int) -> float:
    """Exponential backoff with full jitter: about 1, 2, 4, ... s, at most the configured cap."""
    ceiling = min(settings.PROVISIONING_BACKOFF_MAX_SECONDS, 2 ** max(attempts - 1, 0))
    return float(ceiling) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


# --- Claim and release --------------------------------------------------------------------------


def job_claim(*, job_id: Any) -> tuple[ProvisioningJob, ClientState] | None:
    """Take the job for this worker with a lease, and read its client's desired state in the same
    transaction; None when it is not ours to run (done, not due, held by a live lease, or another
    job of the same client is running)."""
    now = timezone.now()
    with transaction.atomic():
        # One statement locks the job and its client; the client's row lock serialises claims of
        # its jobs. Its registration comes along (not locked: only workers holding the lock write
        # it).
        try:
            job = (
                Job.objects.select_for_update(of=("self", "client"))
                .select_related("client", "client__registration")
                .get(pk=job_id)
            )
        except Job.DoesNotExist:
            return None
        client = job.client
        due = job.status == Job.Status.PENDING and job.next_attempt_at <= now + EARLY_TOLERANCE
        abandoned = job.status == Job.Status.RUNNING and (
            job.lease_expires_at is None or job.lease_expires_at < now
        )
        if not (due or abandoned):
            return None
        # Taken only while no other job of the client holds a live lease: one statement.
        another_running = Job.objects.filter(
            client_id=client.pk, status=Job.Status.RUNNING, lease_expires_at__gte=now
        ).exclude(pk=job.pk)
        job.status = Job.Status.RUNNING
        job.attempts += 1
        job.lease_expires_at = now + lease()
        job.updated_at = now
        taken = (
            Job.objects.filter(pk=job.pk)
            .exclude(Exists(another_running))
            .update(
                status=job.status,
                attempts=job.attempts,
                lease_expires_at=job.lease_expires_at,
                updated_at=now,
            )
        )
        if not taken:
            return None
        # Changes committed before this claim are all read by this run: their jobs ride along.
        Job.objects.filter(client_id=client.pk, status=Job.Status.PENDING).exclude(
            pk=job.pk
        ).update(status=Job.Status.DONE, finished_at=now, coalesced_into=job, updated_at=now)
        state = _state_of(client, now)
    return job, state


def _release(job: ProvisioningJob, **fields: Any) -> None:
    fields["updated_at"] = timezone.now()
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(**fields)


def _client_status(client_id: Any, status: str, error: str, attempts: int) -> None:
    now = timezone.now()
    values: dict[str, Any] = {
        "provisioning_status": status,
        "provisioning_error": error,
        "provisioning_attempts": attempts,
    }
    if status == "provisioned":
        values["provisioned_at"] = now
    OAuthClient.objects.filter(pk=client_id).update(**values)


@dataclass
class Outcome:
    """What the task should do next: nothing, or try again in ``retry_in`` seconds."""

    status: str
    retry_in: float | None = None


def job_run(*, job_id: Any) -> Outcome:
    """Claim and run one job; transient failures come back with a delay, permanent ones fail."""
    started = time.perf_counter()
    claimed_job = job_claim(job_id=job_id)
    if claimed_job is None:
        return Outcome("skipped")
    job, state = claimed_job
    claimed = time.perf_counter()
    try:
        client_sync(client_id=job.client_id, state=state)
    except TRANSIENT as exc:
        error = str(exc)
        if job.attempts >= settings.PROVISIONING_MAX_ATTEMPTS:
            message = f"Gave up after {job.attempts} attempts. Last error: {error}"
            _fail(job, message)
            return Outcome("failed")
        delay = backoff(job.attempts)
        with transaction.atomic():
            _release(
                job,
                status=Job.Status.PENDING,
                last_error=error,
                next_attempt_at=timezone.now() + datetime.timedelta(seconds=delay),
                lease_expires_at=None,
                sent_at=timezone.now(),
            )
            _client_status(job.client_id, "pending", error, job.attempts)
        logger.info("provisioning job %s: transient failure, retry in %.1fs", job.pk, delay)
        return Outcome("retry", retry_in=delay)
    except PERMANENT as exc:
        _fail(job, str(exc))
        return Outcome("failed")
    synced = time.perf_counter()
    # What changed, the job's end and the client's status are recorded in one transaction.
    with transaction.atomic():
        record(state)
        _release(
            job,
            status=Job.Status.DONE,
            finished_at=timezone.now(),
            last_error="",
            lease_expires_at=None,
        )
        _client_status(job.client_id, "provisioned", "", job.attempts)
        _kick_pending(job.client_id)
    logger.info(
        "provisioning job %s done in %.1f ms (claim %.1f, sync %.1f)",
        job.pk,
        (time.perf_counter() - started) * 1000,
        (claimed - started) * 1000,
        (synced - claimed) * 1000,
    )
    return Outcome("done")


def _fail(job: ProvisioningJob, message: str) -> None:
    """A failure a person must look at: the job, the client and its unfinished grants say why."""
    now = timezone.now()
    with transaction.atomic():
        _release(job, status=Job.Status.FAILED, finished_at=now, last_error=message)
        _client_status(job.client_id, "failed", message, job.attempts)
        stuck = Grant.objects.filter(client_id=job.client_id, status=GrantStatus.PROVISIONING)
        with audit_events_batched():
            for grant in stuck.select_related("kommune"):
                audit_event_record(
                    actor=None,
                    actor_label="system:provisioning",
                    action="grant.failed",
                    target=grant,
                    organisation=grant.kommune,
                    after={"status": GrantStatus.FAILED, "error": message},
                )
        stuck.update(status=GrantStatus.FAILED, status_changed_at=now)
    logger.warning("provisioning job %s failed: %s", job.pk, message)
    _kick_pending(job.client_id)


def _kick_pending(client_id: Any) -> None:
    """A job that arrived while this one ran was refused its claim; send it (after COMMIT)."""
    pending = Job.objects.filter(
        client_id=client_id, status=Job.Status.PENDING, next_attempt_at__lte=timezone.now()
    )
    for job_id in pending.values_list("pk", flat=True):
        provisioning_job_send_on_commit(job_id=job_id)


@transaction.atomic
def job_retry(*, job: ProvisioningJob, actor: Any) -> ProvisioningJob:
    """An NHN operator sends a failed job again (after fixing its cause)."""
    job = Job.objects.select_for_update().select_related("client__vendor").get(pk=job.pk)
    if job.status != Job.Status.FAILED:
        raise Conflict(
            _("Only failed jobs are retried; this one is %(status)s.") % {"status": job.status}
        )
    now = timezone.now()
    job.status = Job.Status.PENDING
    job.attempts = 0
    job.next_attempt_at = now
    job.sent_at = now
    job.finished_at = None
    job.save(
        update_fields=[
            "status",
            "attempts",
            "next_attempt_at",
            "sent_at",
            "finished_at",
            "updated_at",
        ]
    )
    audit_event_record(
        actor=actor,
        action="provisioning_job.retried",
        target=job,
        organisation=job.client.vendor,
        before={"status": "failed", "error": job.last_error},
        after={"status": "pending"},
    )
    provisioning_job_send_on_commit(job_id=job.pk)
    return job


def jobs_sweep() -> int:
    """Send again what is due but was not delivered: jobs whose worker died (lease ended) and
    pending jobs whose message was lost. Run by beat every few seconds."""
    now = timezone.now()
    Job.objects.filter(status=Job.Status.RUNNING, lease_expires_at__lt=now).update(
        status=Job.Status.PENDING, next_attempt_at=now, sent_at=None, updated_at=now
    )
    overdue = now - datetime.timedelta(seconds=10)
    due = Job.objects.filter(
        Q(sent_at__isnull=True) | Q(sent_at__lt=overdue),
        status=Job.Status.PENDING,
        next_attempt_at__lte=now,
    ).order_by("next_attempt_at")[:500]
    ids = list(due.values_list("pk", flat=True))
    with transaction.atomic():
        Job.objects.filter(pk__in=ids).update(sent_at=now)
        for job_id in ids:
            provisioning_job_send_on_commit(job_id=job_id)
    return len(ids)


# --- One client's sync --------------------------------------------------------------------------


@dataclass
class ClientState:
    """What one sync needs. Only the grants that change are loaded, and the union of scopes is
    one aggregate: the cost of pushing one change does not grow with the client's grants."""

    client: OAuthClient
    keys: list[dict[str, Any]]
    scope_union: list[str]
    new: list[Grant] = field(default_factory=list)  # to add at the gateway
    closing: list[Grant] = field(default_factory=list)  # to remove from the gateway
    registration: ClientRegistration | None = None

    @property
    def wanted(self) -> bool:
        return self.client.removed_at is None and bool(self.keys)

    @property
    def scopes(self) -> list[str]:
        if self.client.purpose == OAuthClient.Purpose.PORTAL_API:
            return [PORTAL_API_SCOPE]
        return self.scope_union


def _state_of(client: OAuthClient, now: datetime.datetime) -> ClientState:
    """Read a (locked) client's desired state; pending and failed grants become provisioning."""
    Grant.objects.filter(
        client=client, status__in=(GrantStatus.PENDING, GrantStatus.FAILED)
    ).update(status=GrantStatus.PROVISIONING, status_changed_at=now)
    keys = [key.jwk for key in client.keys.all() if key.expires_at is None or key.expires_at > now]
    wanted = client.removed_at is None and bool(keys)
    closing_statuses = [GrantStatus.REVOKING]
    if not wanted:  # nothing may pass for this client any more
        closing_statuses += PASSING_GRANT_STATUSES
    changing = Grant.objects.filter(
        client=client, status__in=[GrantStatus.PROVISIONING, *closing_statuses]
    ).select_related("kommune", "service")
    scope_union = sorted(
        Grant.objects.passing()
        .filter(client=client)
        .order_by()  # DISTINCT over the scope alone, not the model's ordering column too
        .values_list("scope", flat=True)
        .distinct()
    )
    state = ClientState(
        client=client,
        keys=keys,
        scope_union=scope_union,
        registration=_registration_of(client),
    )
    for grant in changing:
        if grant.status in closing_statuses:
            state.closing.append(grant)
        else:
            state.new.append(grant)
    return state


def _registration_of(client: OAuthClient) -> ClientRegistration | None:
    """The client's registration, from ``select_related`` when the caller loaded it."""
    try:
        registration: ClientRegistration = client.registration
    except ClientRegistration.DoesNotExist:
        return None
    return registration


def _state(client_id: Any) -> ClientState:
    with transaction.atomic():
        client = OAuthClient.objects.select_for_update().get(pk=client_id)
        return _state_of(client, timezone.now())


def entry_for(grant: Grant, *, environment: str, client_id: str) -> Entry:
    return Entry(
        environment=environment,
        client_id=client_id,
        kommune=grant.kommune.orgnr,
        service=grant.service.code,
        access=grant.access,
        service_codes=grant.service_codes,
    )


def metadata_hash(metadata: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(metadata, sort_keys=True).encode()).hexdigest()


def gateway() -> HAProxyGateway:
    return HAProxyGateway(gateway_config())


def client_sync(
    *,
    client_id: Any,
    authserver: AuthServerClient | None = None,
    state: ClientState | None = None,
) -> ClientState:
    """Bring one client's registration and gateway entries in line with the database; the
    caller then records the outcome (``record``) in its transaction.

    Revocation order: the gateway entries go first (denial at once), then the scope at the
    authorization server is narrowed. New grants: the scope is widened first, then the entries
    are added, so a grant is never open at the gateway for a token that cannot carry its scope.
    """
    state = state or _state(client_id)
    client = state.client
    server = authserver or AuthServerClient()
    gw = gateway()
    server_client_id = state.registration.server_client_id if state.registration else ""

    # 1. Close what is being revoked (or everything, for a removed client) at the gateway.
    if server_client_id:
        for grant in state.closing:
            gw.remove(entry_for(grant, environment=client.environment, client_id=server_client_id))

    # 2. The registration at the authorization server.
    if not state.wanted:
        if state.registration is not None:
            server.delete(
                state.registration.registration_client_uri,
                state.registration.registration_access_token,
            )
            state.registration.delete()
    else:
        server_client_id = _register_or_update(state, server)

    # 3. Open the new grants at the gateway.
    if state.wanted:
        for grant in state.new:
            gw.upsert(entry_for(grant, environment=client.environment, client_id=server_client_id))
    return state


def _register_or_update(state: ClientState, server: AuthServerClient) -> str:
    client = state.client
    metadata = client_metadata(
        software_id=str(client.pk),
        name=client.name,
        jwks={"keys": state.keys},
        scopes=state.scopes,
    )
    digest = metadata_hash(metadata)
    registration = state.registration
    if registration is not None and registration.metadata_hash == digest:
        return registration.server_client_id
    if registration is not None:
        try:
            result = server.update(
                registration.registration_client_uri,
                registration.registration_access_token,
                registration.server_client_id,
                metadata,
            )
        except RegistrationGone:
            # Deleted behind our back: register again (the server keeps the same client_id).
            result = server.register(metadata)
    else:
        result = server.register(metadata)
    with transaction.atomic():
        registration, _ = ClientRegistration.objects.get_or_create(
            client=client,
            defaults={"server_client_id": result.client_id},
        )
        registration.server_client_id = result.client_id
        registration.registration_client_uri = result.registration_client_uri
        if result.registration_access_token:
            registration.registration_access_token = result.registration_access_token
        registration.metadata_hash = digest
        registration.save()
        if client.client_id != result.client_id:
            OAuthClient.objects.filter(pk=client.pk).update(client_id=result.client_id)
    state.registration = registration
    return result.client_id


def record(state: ClientState) -> None:
    """The outside world now matches: the new grants are active, the closed ones revoked.
    Run inside the caller's transaction, after ``client_sync``."""
    now = timezone.now()
    changes = [
        *[(g, GrantStatus.PROVISIONING, GrantStatus.ACTIVE, "grant.activated") for g in state.new],
        *[
            (g, g.status, GrantStatus.REVOKED, "grant.revoked_everywhere")
            for g in state.closing
            if g.status == GrantStatus.REVOKING
        ],
    ]
    with audit_events_batched():
        for grant, old, new, action in changes:
            # A grant revoked while this job ran keeps `revoking`: the next job closes it.
            changed = Grant.objects.filter(pk=grant.pk, status=old).update(
                status=new, status_changed_at=now
            )
            if changed:
                audit_event_record(
                    actor=None,
                    actor_label="system:provisioning",
                    action=action,
                    target=grant,
                    organisation=grant.kommune,
                    before={"status": old},
                    after={"status": new, "scope": grant.scope},
                )
