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
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, Exists, ExpressionWrapper, OuterRef, Q, Subquery
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.context import current_request_id
from audit.services import audit_event_record, audit_events_batched
from notifications.services import notify
from orders.models import (
    PASSING_GRANT_STATUSES,
    Grant,
    GrantPeriod,
    GrantStatus,
    ProvisioningJob,
)
from orders.services import (
    grant_periods_close,
    grant_periods_open,
    provisioning_job_send_on_commit,
)
from portal.exceptions import Conflict
from provisioning.authserver import (
    AuthServerClient,
    AuthServerRejected,
    AuthServerUnavailable,
    RegistrationGone,
    client_metadata,
)
from provisioning.gateway import Entry, GatewayError, Gateways, GatewayUnavailable, HAProxyGateway
from provisioning.models import ClientRegistration
from provisioning.settings import gateway_configs
from tenants.models import OAuthClient, Role

logger = logging.getLogger(__name__)

ACTOR = "system:provisioning"
#: Why a client and its grants are closed though nobody revoked them.
KEYS_EXPIRED = _(
    "Every public key of the client has expired: its grants are closed at the gateway until "
    "a new key is registered."
)
TRANSIENT = (AuthServerUnavailable, GatewayUnavailable)
PERMANENT = (AuthServerRejected, GatewayError)
PORTAL_API_SCOPE = "tilgang:api"
GATEWAYS_BEHIND = _(
    "Done, but these gateways did not answer: %(gateways)s. They get the change from their map "
    "files when they start again, and from the reconciler within 30 s of answering."
)
# A task delivered a little before its retry time (clock skew, jitter) may still claim the job.
EARLY_TOLERANCE = datetime.timedelta(seconds=1)


def lease() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.PROVISIONING_LEASE_SECONDS)


def database_now_plus(delta: datetime.timedelta) -> ExpressionWrapper[CombinedExpression]:
    """The database's time plus ``delta``, as a value to write. Leases are set and compared on
    the database's clock only: the workers' hosts' clocks may differ, and a host running ahead
    would take over a live lease (or one running behind would renew a lease already over)."""
    return ExpressionWrapper(Now() + delta, output_field=DateTimeField())


def backoff(attempts: int) -> float:
    """Exponential backoff with full jitter: about 1, 2, 4, ... s, at most the configured cap."""
    ceiling = min(settings.PROVISIONING_BACKOFF_MAX_SECONDS, 2 ** max(attempts - 1, 0))
    return float(ceiling) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


# --- Claim and release --------------------------------------------------------------------------


class LeaseLost(Exception):
    """Another claim took this worker's job over (its lease ran out): stop, change nothing."""


class ClaimFailed(Exception):
    """The claim took the job but cannot run it: its attempts are used up (``final``: a worker
    was killed or timed out in the last one), or reading the client's state raised. The attempt
    is counted (committed); ``job_run`` ends it as a failed attempt or fails the job."""

    def __init__(self, job: ProvisioningJob, reason: str, *, final: bool) -> None:
        super().__init__(reason)
        self.job = job
        self.reason = reason
        self.final = final


#: The last attempt was claimed but never reported back: its worker was killed or timed out.
GAVE_UP_UNFINISHED = _(
    "Gave up after %(attempts)s attempts: the last one never finished (its worker was stopped "
    "or ran out of time)."
)
GAVE_UP = _("Gave up after %(attempts)s attempts. Last error: %(error)s")
SCOPE_NOT_GRANTED = _(
    "The authorization server did not grant the scope as requested (not granted: %(missing)s; "
    "not requested: %(extra)s)."
)


def job_claim(*, job_id: Any) -> tuple[ProvisioningJob, ClientState] | None:
    """Take the job for this worker with a lease and a fresh fencing token, and read its client's
    desired state in the same transaction; None when it is not ours to run (done, not due, held
    by a live lease, or another job of the same client is running). Its times are the
    database's (``database_now_plus``)."""
    with transaction.atomic():
        # The client's row lock first, then the job's: the client's lock serialises claims of
        # its jobs, and every transaction that locks both takes them in this order (an
        # approval locks the client, then finds its pending job; an order takes only KEY SHARE
        # on the client and skips a locked job), so none waits for the other in a cycle: a
        # claim that held its job while waiting for the client deadlocked with one coalescing
        # that job. NO KEY UPDATE, not UPDATE: a transaction that writes a new job
        # (or anything else referring to the client) takes KEY SHARE on the client and need not
        # wait. Its registration comes along (not locked: only workers holding the lease write
        # it).
        try:
            client = (
                OAuthClient.objects.select_for_update(of=("self",), no_key=True)
                .select_related("registration", "vendor")
                .get(pk=Subquery(ProvisioningJob.objects.filter(pk=job_id).values("client_id")))
            )
            job = (
                ProvisioningJob.objects.select_for_update()
                .annotate(database_now=Now())
                .get(pk=job_id)
            )
        except (OAuthClient.DoesNotExist, ProvisioningJob.DoesNotExist):
            return None
        now: datetime.datetime = job.database_now
        job.client = client
        status = ProvisioningJob.Status
        due = job.status == status.PENDING and job.next_attempt_at <= now + EARLY_TOLERANCE
        abandoned = job.status == status.RUNNING and (
            job.lease_expires_at is None or job.lease_expires_at < now
        )
        if not (due or abandoned):
            return None
        # A job whose last attempt was claimed but never reported back (its worker killed, a
        # time limit) would be swept and claimed again forever: it fails here instead.
        exhausted = job.attempts >= settings.PROVISIONING_MAX_ATTEMPTS
        # Taken only while no other job of the client holds a live lease: one statement.
        another_running = ProvisioningJob.objects.filter(
            client_id=client.pk, status=status.RUNNING, lease_expires_at__gte=now
        ).exclude(pk=job.pk)
        job.status = status.RUNNING
        if not exhausted:
            job.attempts += 1
        job.lease_expires_at = now + lease()
        job.lease_token = uuid.uuid4()
        job.updated_at = now
        taken = (
            ProvisioningJob.objects.filter(pk=job.pk)
            .exclude(Exists(another_running))
            .update(
                status=job.status,
                attempts=job.attempts,
                lease_expires_at=job.lease_expires_at,
                lease_token=job.lease_token,
                updated_at=now,
            )
        )
        if not taken:
            return None
        read: ClientState | ClaimFailed
        if exhausted:  # the claim commits; the failure ends it under its token (job_run)
            message = GAVE_UP_UNFINISHED % {"attempts": job.attempts}
            read = ClaimFailed(job, str(message), final=True)
        else:
            read = _claim_read(job, client, now)
    if isinstance(read, ClaimFailed):
        raise read
    return job, read


def _claim_read(
    job: ProvisioningJob, client: OAuthClient, now: datetime.datetime
) -> ClientState | ClaimFailed:
    """In the claim's transaction: coalesce the client's pending jobs and read its state. A
    failure of the read rolls back to a savepoint, so the claim and its attempt still count."""
    status = ProvisioningJob.Status
    # Changes committed before this claim are all read by this run: their jobs ride along.
    # A change still being written holds its pending job's row lock
    # (``provisioning_job_enqueue``): this statement waits for its COMMIT, and the state is
    # read after it, so the change is read here or has a job of its own, never lost.
    ProvisioningJob.objects.filter(client_id=client.pk, status=status.PENDING).exclude(
        pk=job.pk
    ).update(status=status.DONE, finished_at=now, coalesced_into=job, updated_at=now)
    try:
        with transaction.atomic():
            return _state_of(client, now, resync=job.attempts > 1)
    except Exception as exc:  # noqa: BLE001 - an attempt like any other, never lost
        logger.exception("provisioning job %s: reading the client's state failed", job.pk)
        return ClaimFailed(job, f"{type(exc).__name__}: {exc}"[:1000], final=False)


def lease_renew(job: ProvisioningJob) -> None:
    """The fence and heartbeat of a running sync, before each call to the outside: extend the
    lease while this claim (its token) still holds it, or raise LeaseLost. Each step is shorter
    than a lease (HTTP timeouts), so a live worker keeps its client and no second worker
    syncs it at the same time."""
    renewed = ProvisioningJob.objects.filter(
        pk=job.pk, status=ProvisioningJob.Status.RUNNING, lease_token=job.lease_token
    ).update(lease_expires_at=database_now_plus(lease()), updated_at=Now())
    if not renewed:
        raise LeaseLost(f"provisioning job {job.pk}: the lease was taken over")


class Fence(Protocol):
    """Run before each call to the outside; ``strict`` inside a transaction that writes what a
    call returned: the renewal then holds the job's row until COMMIT, so a claim taking the job
    over waits for it, or the write is refused (LeaseLost rolls it back)."""

    def __call__(self, *, strict: bool = False) -> None: ...


class _Fence:
    """``lease_renew`` before a call to the outside, once a third of the lease has passed since
    the last renewal (or the claim): until then the lease cannot have run out, so no other claim
    can hold the job, and the call on the path to an open grant saves a round trip. ``strict``:
    always, for the writes made after a call that may have outlasted the lease."""

    def __init__(self, job: ProvisioningJob) -> None:
        self.job = job
        self.renewed = time.monotonic()

    def __call__(self, *, strict: bool = False) -> None:
        if not strict and time.monotonic() - self.renewed < lease().total_seconds() / 3:
            return
        lease_renew(self.job)
        self.renewed = time.monotonic()


def _release(job: ProvisioningJob, **fields: Any) -> bool:
    """End this claim; False (nothing changed) when it no longer holds the job."""
    fields["updated_at"] = timezone.now()
    fields["lease_token"] = None
    released = ProvisioningJob.objects.filter(
        pk=job.pk, status=ProvisioningJob.Status.RUNNING, lease_token=job.lease_token
    ).update(**fields)
    return bool(released)


def _end_claim(
    job: ProvisioningJob, client: OAuthClient, client_status: str, error: str, **fields: Any
) -> None:
    """In the caller's transaction: the client's status, then the job's release; LeaseLost
    (which rolls the transaction back) when this claim no longer holds the job. The client's
    row first, as a claim takes them: a claim waiting for this job while holding the client,
    and this transaction waiting for the client while holding the job, would deadlock."""
    _client_status(client, client_status, error, job.attempts)
    if not _release(job, **fields):
        raise LeaseLost(f"provisioning job {job.pk}: the lease was taken over")


def _client_status(client: OAuthClient, status: str, error: str, attempts: int) -> None:
    """The client's provisioning status as the API shows it; a change of status is audited."""
    now = timezone.now()
    values: dict[str, Any] = {
        "provisioning_status": status,
        "provisioning_error": error,
        "provisioning_attempts": attempts,
    }
    if status == "provisioned":
        values["provisioned_at"] = now
    OAuthClient.objects.filter(pk=client.pk).update(**values)
    if client.provisioning_status != status:
        audit_event_record(
            actor=None,
            actor_label=ACTOR,
            action="client.provisioning_status",
            target=client,
            organisation=client.vendor,
            before={"provisioning_status": client.provisioning_status},
            after={"provisioning_status": status, "error": error},
        )
        client.provisioning_status = status


@dataclass
class Outcome:
    """What the task should do next: nothing, or try again in ``retry_in`` seconds."""

    status: str
    retry_in: float | None = None


def job_run(*, job_id: Any) -> Outcome:
    """Claim and run one job. A permanent refusal fails it; any other exception (transient or
    not foreseen) counts as an attempt and comes back with a delay, until the last attempt
    fails it with its reason: no job is left running."""
    started = time.perf_counter()
    try:
        claimed_job = job_claim(job_id=job_id)
    except ClaimFailed as failed:
        if failed.final:
            _fail(failed.job, failed.reason)
            return Outcome("failed")
        return _attempt_failed(failed.job, failed.job.client, failed.reason)
    if claimed_job is None:
        return Outcome("skipped")
    job, state = claimed_job
    claimed = time.perf_counter()
    try:
        client_sync(client_id=job.client_id, state=state, fence=_Fence(job))
        synced = time.perf_counter()
        # What changed, the job's end and the client's status are recorded in one transaction,
        # by this claim only.
        with transaction.atomic():
            status, error = _settled_status(state)
            _end_claim(
                job,
                state.client,
                status,
                error,
                status=ProvisioningJob.Status.DONE,
                finished_at=timezone.now(),
                last_error=behind_note(state.behind),
                lease_expires_at=None,
            )
            record(state)
            _kick_pending(job.client_id)
    except LeaseLost as exc:
        logger.warning("%s; this worker stops", exc)
        return Outcome("lost")
    except PERMANENT as exc:
        _fail(job, str(exc))
        return Outcome("failed")
    except Exception as exc:  # noqa: BLE001 - every failure is an attempt, none leaves it running
        if isinstance(exc, TRANSIENT):
            error = str(exc)
        else:
            logger.exception("provisioning job %s: unexpected error", job.pk)
            error = f"{type(exc).__name__}: {exc}"[:1000]
        return _attempt_failed(job, state.client, error)
    logger.info(
        "provisioning job %s done in %.1f ms (claim %.1f, sync %.1f)",
        job.pk,
        (time.perf_counter() - started) * 1000,
        (claimed - started) * 1000,
        (synced - claimed) * 1000,
    )
    return Outcome("done")


def _attempt_failed(job: ProvisioningJob, client: OAuthClient, error: str) -> Outcome:
    if job.attempts >= settings.PROVISIONING_MAX_ATTEMPTS:
        params = {"attempts": job.attempts, "error": error}
        _fail(job, str(GAVE_UP % params), reason=("gave_up", params))
        return Outcome("failed")
    delay = backoff(job.attempts)
    try:
        with transaction.atomic():
            _end_claim(
                job,
                client,
                "pending",
                error,
                status=ProvisioningJob.Status.PENDING,
                last_error=error,
                next_attempt_at=database_now_plus(datetime.timedelta(seconds=delay)),
                lease_expires_at=None,
                sent_at=Now(),
            )
            _kick_pending(job.client_id)
    except LeaseLost as exc:
        logger.warning("%s; this worker stops", exc)
        return Outcome("lost")
    logger.info("provisioning job %s: failed attempt, retry in %.1fs", job.pk, delay)
    return Outcome("retry", retry_in=delay)


def _settled_status(state: ClientState) -> tuple[str, str]:
    if state.keys_expired:
        return "keys_expired", str(KEYS_EXPIRED)
    return "provisioned", ""


def _fail(
    job: ProvisioningJob, message: str, *, reason: tuple[str, dict[str, Any]] = ("", {})
) -> None:
    """A failure a person must look at: the job, the client and its unfinished grants say why
    (the grants also as a reason code of ``orders.policy.GRANT_REASONS`` with its parameters,
    worded in the reader's language, when there is one). Those grants never passed the gateway
    (a grant opens only once the authorization server accepted it); their entries are removed
    all the same, in case an older run left one."""
    now = timezone.now()
    try:
        with transaction.atomic():
            _end_claim(
                job,
                job.client,
                "failed",
                message,
                status=ProvisioningJob.Status.FAILED,
                finished_at=now,
                last_error=message,
                lease_expires_at=None,
            )
            failed = _grants_fail(job, message, now, reason)
            _failure_notify(job, message, failed)
    except LeaseLost as exc:
        logger.warning("%s; this worker stops", exc)
        return
    logger.warning("provisioning job %s failed: %s", job.pk, message)
    try:
        _close_at_gateway(failed)
    except (GatewayUnavailable, GatewayError) as exc:  # the reconciler closes them later
        logger.warning("provisioning job %s: closing failed grants: %s", job.pk, exc)


def _failure_notify(job: ProvisioningJob, message: str, failed: list[Grant]) -> None:
    """Tell the client's vendor (its admins) and NHN's operators that the job failed, in the
    transaction that records it."""
    client = job.client
    notify(
        kind="provisioning_failed",
        organisation=client.vendor,
        roles=[Role.VENDOR_ADMIN],
        params={"client": client.name, "grants": len(failed), "error": message[:500]},
        link="orders:client",
        link_args={"client_id": client.pk},
    )
    notify(
        kind="job_failed",
        organisation=None,
        roles=[Role.NHN_OPERATOR],
        params={
            "client": client.name,
            "vendor": client.vendor.name,
            "attempts": job.attempts,
            "error": message[:500],
        },
        link="provisioning:job",
        link_args={"job_id": job.pk},
    )


def _grants_move(
    grants: list[Grant],
    status: GrantStatus,
    *,
    action: str,
    now: datetime.datetime,
    after: dict[str, Any] | None = None,
    **fields: Any,
) -> None:
    """The runner moves (locked) grants to ``status``, each recorded, in one update; the objects
    follow."""
    with audit_events_batched():
        for grant in grants:
            audit_event_record(
                actor=None,
                actor_label=ACTOR,
                action=action,
                target=grant,
                organisation=grant.kommune,
                before={"status": grant.status},
                after={"status": status, **(after or {})},
            )
    Grant.objects.filter(pk__in=[g.pk for g in grants]).update(
        status=status, status_changed_at=now, **fields
    )
    for grant in grants:
        grant.status = status


def _grants_fail(
    job: ProvisioningJob,
    message: str,
    now: datetime.datetime,
    reason: tuple[str, dict[str, Any]] = ("", {}),
) -> list[Grant]:
    """The job's client's grants being provisioned fail with its reason; returns them."""
    stuck = Grant.objects.filter(client_id=job.client_id, status=GrantStatus.PROVISIONING)
    failed = list(stuck.select_for_update().select_related("kommune", "service"))
    _grants_move(
        failed,
        GrantStatus.FAILED,
        action="grant.failed",
        now=now,
        after={"error": message},
        status_reason=message[:300],
        status_reason_code=reason[0],
        status_reason_params=reason[1],
    )
    _kick_pending(job.client_id)
    return failed


def _kick_pending(client_id: Any) -> None:
    """A job that arrived while this one ran was refused its claim; send it (after COMMIT)."""
    pending = ProvisioningJob.objects.filter(
        client_id=client_id,
        status=ProvisioningJob.Status.PENDING,
        next_attempt_at__lte=Now(),
    )
    for job_id, request_id in pending.values_list("pk", "request_id"):
        provisioning_job_send_on_commit(job_id=job_id, request_id=request_id)


def job_run_now(*, client: OAuthClient, reason: str) -> Outcome:
    """Run a job for the client in this process (the reconciler), through the same claim and
    lease as the workers: never beside a worker's job of the same client. When one holds the
    client, this job is sent and waits its turn."""
    with transaction.atomic():
        job = ProvisioningJob.objects.filter(
            client=client, status=ProvisioningJob.Status.PENDING
        ).first() or ProvisioningJob.objects.create(
            client=client, reason=reason, sent_at=timezone.now(), request_id=current_request_id()
        )
    outcome = job_run(job_id=job.pk)
    if outcome.status == "skipped":
        provisioning_job_send_on_commit(job_id=job.pk, request_id=job.request_id)
    return outcome


def gateway_close(*, grant_ids: list[Any]) -> int:
    """Close these grants at the gateway at once, idempotently, without the client's lease or
    the authorization server: what a revocation's on-commit task runs, so that revoking never
    waits for a job that is backing off or a server that does not answer. A grant that passes
    again is left alone, and so is one whose item (the gateway's key) was granted again and
    passes: a close that runs late must not shut the new grant. Returns how many were closed."""
    regranted = Grant.objects.passing().filter(
        client_id=OuterRef("client_id"),
        kommune_id=OuterRef("kommune_id"),
        service_id=OuterRef("service_id"),
        access=OuterRef("access"),
    )
    grants = list(
        Grant.objects.filter(pk__in=grant_ids)
        .exclude(status__in=PASSING_GRANT_STATUSES)
        .exclude(Exists(regranted))
        .select_related("client__registration", "kommune", "service")
    )
    return _close_at_gateway(grants)


def _close_at_gateway(grants: list[Grant]) -> int:
    """Close each grant at every gateway; GatewayUnavailable, once all were tried, when one did
    not answer (its files hold the removal) or could not write a removal into its files
    (MapFileUnwritable, once every grant was closed where the gateways run): the closer asks
    again soon."""
    gw = gateway()
    entries = [
        entry_for(
            grant, environment=grant.client.environment, client_id=registration.server_client_id
        )
        for grant in grants
        # One never registered was never opened.
        if (registration := _registration_of(grant.client)) is not None
    ]
    gw.remove_all(entries)
    if gw.behind:
        raise GatewayUnavailable(
            "closed where the gateways answered; behind: " + ", ".join(sorted(gw.behind))
        )
    return len(entries)


@transaction.atomic
def job_retry(*, job: ProvisioningJob, actor: Any) -> ProvisioningJob:
    """An NHN operator sends a failed job again (after fixing its cause); the client's failed
    grants are tried again with it (they wait as pending, not counted as passing)."""
    job = (
        ProvisioningJob.objects.select_for_update().select_related("client__vendor").get(pk=job.pk)
    )
    if job.status != ProvisioningJob.Status.FAILED:
        raise Conflict(
            _("Only failed jobs are retried; this one is %(status)s.") % {"status": job.status}
        )
    now = timezone.now()
    job.status = ProvisioningJob.Status.PENDING
    job.attempts = 0
    job.next_attempt_at = now
    job.sent_at = now
    job.finished_at = None
    job.request_id = current_request_id()  # the worker's lines name the operator's retry
    job.save(
        update_fields=[
            "status",
            "attempts",
            "next_attempt_at",
            "sent_at",
            "finished_at",
            "request_id",
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
    failed = Grant.objects.filter(client_id=job.client_id, status=GrantStatus.FAILED)
    with audit_events_batched():
        for grant in failed.select_for_update().select_related("kommune"):
            audit_event_record(
                actor=actor,
                action="grant.retried",
                target=grant,
                organisation=grant.kommune,
                before={"status": GrantStatus.FAILED, "reason": grant.status_reason},
                after={"status": GrantStatus.PENDING},
            )
    failed.update(
        status=GrantStatus.PENDING,
        status_changed_at=now,
        status_reason="",
        status_reason_code="",
        status_reason_params={},
    )
    provisioning_job_send_on_commit(job_id=job.pk, request_id=job.request_id)
    return job


def jobs_sweep() -> int:
    """Send again what is due but was not delivered: jobs whose worker died (lease ended) and
    pending jobs whose message was lost. Run by beat every few seconds. On the database's
    clock, as the leases are (``database_now_plus``)."""
    # Their worker's token goes with the lease: if it still runs, it can change nothing more.
    ProvisioningJob.objects.filter(
        status=ProvisioningJob.Status.RUNNING, lease_expires_at__lt=Now()
    ).update(
        status=ProvisioningJob.Status.PENDING,
        next_attempt_at=Now(),
        sent_at=None,
        lease_token=None,
        updated_at=Now(),
    )
    overdue = database_now_plus(-datetime.timedelta(seconds=10))
    due = ProvisioningJob.objects.filter(
        Q(sent_at__isnull=True) | Q(sent_at__lt=overdue),
        status=ProvisioningJob.Status.PENDING,
        next_attempt_at__lte=Now(),
    ).order_by("next_attempt_at")[:500]
    jobs = list(due.values_list("pk", "request_id"))
    with transaction.atomic():
        ProvisioningJob.objects.filter(pk__in=[job_id for job_id, _ in jobs]).update(sent_at=Now())
        for job_id, request_id in jobs:
            provisioning_job_send_on_commit(job_id=job_id, request_id=request_id)
    return len(jobs)


# --- One client's sync --------------------------------------------------------------------------


@dataclass
class ClientState:
    """What one sync needs. Only the grants that change are loaded, and the union of scopes is
    one aggregate: the cost of pushing one change does not grow with the client's grants."""

    client: OAuthClient
    keys: list[dict[str, Any]]
    scope_union: list[str]
    new: list[Grant] = field(default_factory=list)  # to widen the scope for, then to open
    closing: list[Grant] = field(default_factory=list)  # to remove from the gateway
    reopen: list[Grant] = field(default_factory=list)  # active ones to open again (a retry)
    registration: ClientRegistration | None = None
    had_keys: bool = False
    #: The gateways that did not answer this sync (by name, with the reason): per-gateway drift
    #: the reconciler heals; the job is done all the same (``Gateways``).
    behind: dict[str, str] = field(default_factory=dict)

    @property
    def wanted(self) -> bool:
        return self.client.removed_at is None and bool(self.keys)

    @property
    def keys_expired(self) -> bool:
        """Not removed, but every key it has has expired: closed until it gets a new one."""
        return self.client.removed_at is None and self.had_keys and not self.keys

    @property
    def scopes(self) -> list[str]:
        if self.client.purpose == OAuthClient.Purpose.PORTAL_API:
            return [PORTAL_API_SCOPE]
        return self.scope_union


def _state_of(client: OAuthClient, now: datetime.datetime, *, resync: bool = False) -> ClientState:
    """Read a (locked) client's desired state; its pending grants become provisioning. Failed
    grants stay failed: not counted as passing, not in the scope sent to the server (an
    operator's retry of the job makes them pending again). ``resync``: a retry opens the
    active grants at the gateway again, in case the failed attempt had not."""
    all_keys = list(client.keys.all())
    # A key past its own expiry or the key lifetime is left out: no longer accepted.
    keys = [key.jwk for key in all_keys if key.is_valid(now)]
    wanted = client.removed_at is None and bool(keys)
    closing_statuses = [GrantStatus.REVOKING]
    if not wanted:  # nothing may pass for this client any more
        closing_statuses += [GrantStatus.ACTIVE, GrantStatus.PROVISIONING]
    # Locked until the claim commits: a revocation committed between this read and the move to
    # provisioning below would be overwritten, and the revoked grant activated and opened. A
    # revocation waits here instead, before it takes the audit chain's lock, and then revokes
    # the grant being provisioned (tests/provisioning/test_claim_races.py).
    changing = list(
        Grant.objects.filter(
            client=client,
            status__in=[GrantStatus.PENDING, GrantStatus.PROVISIONING, *closing_statuses],
        )
        .select_related("kommune", "service")
        .select_for_update(of=("self",))
    )
    pending = [grant for grant in changing if grant.status == GrantStatus.PENDING]
    if pending:
        _grants_move(pending, GrantStatus.PROVISIONING, action="grant.provisioning", now=now)
    # What the server must accept: what passes, and what is being provisioned now.
    scope_union = sorted(
        Grant.objects.filter(
            client=client, status__in=[*PASSING_GRANT_STATUSES, GrantStatus.PROVISIONING]
        )
        .order_by()  # DISTINCT over the scope alone, not the model's ordering column too
        .values_list("scope", flat=True)
        .distinct()
    )
    state = ClientState(
        client=client,
        keys=keys,
        scope_union=scope_union,
        registration=_registration_of(client),
        had_keys=bool(all_keys),
    )
    for grant in changing:
        if grant.status in closing_statuses:
            state.closing.append(grant)
        else:
            state.new.append(grant)
    if resync and wanted:
        state.reopen = list(
            Grant.objects.passing().filter(client=client).select_related("kommune", "service")
        )
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
        client = (
            OAuthClient.objects.select_for_update(no_key=True)
            .select_related("vendor")
            .get(pk=client_id)
        )
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


def gateway() -> Gateways:
    """Every gateway of the settings, as one: a change goes to each (``Gateways``)."""
    return Gateways(HAProxyGateway(config) for config in gateway_configs())


def behind_note(behind: dict[str, str]) -> str:
    """What a finished job says about the gateways that did not take its change at runtime:
    the files and the reconciler bring them in line when they answer again."""
    if not behind:
        return ""
    names = ", ".join(sorted(behind))
    return str(GATEWAYS_BEHIND % {"gateways": names})[:1000]


def _no_fence(*, strict: bool = False) -> None:
    return None


def client_sync(
    *,
    client_id: Any,
    authserver: AuthServerClient | None = None,
    state: ClientState | None = None,
    fence: Fence = _no_fence,
) -> ClientState:
    """Bring one client's registration and gateway entries in line with the database; the
    caller then records the outcome (``record``) in its transaction. ``fence`` runs before each
    call to the outside (the job's lease renewal: it raises LeaseLost when the job was taken
    over).

    Revocation order: the gateway entries go first (denial at once), then the scope at the
    authorization server is narrowed. New grants fail closed: the scope is widened first; once
    the server accepted it the grants become active, and only then are they opened at the
    gateway. A grant revoked meanwhile is not activated, and one revoked between its
    activation and its opening is closed again right after (the re-check below), so a worker
    that read a grant before its revocation never leaves it open.

    Several gateways: each change goes to every gateway that answers (``Gateways``). A grant is
    active once the server accepted its scope, as with one gateway; the job is done once at
    least one gateway opened it (none: it tries again, the grant closed everywhere). A gateway
    that did not answer is behind (``state.behind``, noted on the job) and catches up from its
    files and the reconciler. A revocation closes at every gateway that answers and in every
    gateway's revoked map file, so it is done even while one is down: that one starts closed.
    """
    state = state or _state(client_id)
    server = authserver or AuthServerClient()
    gw = gateway()
    try:
        return _client_sync(state, server, gw, fence)
    finally:
        state.behind = dict(gw.behind)


def _client_sync(
    state: ClientState, server: AuthServerClient, gw: Gateways, fence: Fence
) -> ClientState:
    client = state.client
    server_client_id = state.registration.server_client_id if state.registration else ""

    # 1. Close what is being revoked (or everything, for a removed client) at the gateway.
    if server_client_id and state.closing:
        fence()
        gw.remove_all(
            entry_for(grant, environment=client.environment, client_id=server_client_id)
            for grant in state.closing
        )

    # 2. The registration at the authorization server.
    if not state.wanted:
        if state.registration is not None:
            fence()
            server.delete(
                state.registration.registration_client_uri,
                state.registration.registration_access_token,
            )
            with transaction.atomic():
                fence(strict=True)  # the delete may have outlasted the lease
                state.registration.delete()
            state.registration = None
        return state
    fence()
    server_client_id = _register_or_update(state, server, fence)

    # 3. The server accepted the scopes: the new grants become active, then open. Their
    # entries are built first: one the gateway cannot carry fails the job before any grant is
    # called active.
    entries = {
        grant.pk: entry_for(grant, environment=client.environment, client_id=server_client_id)
        for grant in [*state.new, *state.reopen]
    }
    opening = [*_grants_accept(state.new, fence), *state.reopen]
    if not opening:
        return state
    if state.reopen:
        # A retry opens what a lost claim may have read long ago: only while it holds the job.
        fence(strict=True)
    for grant in opening:
        gw.upsert(entries[grant.pk])
    still_passing = set(
        Grant.objects.passing().filter(pk__in=[g.pk for g in opening]).values_list("pk", flat=True)
    )
    # Revoked while it was being opened.
    gw.remove_all(entries[grant.pk] for grant in opening if grant.pk not in still_passing)
    return state


def _grants_accept(grants: list[Grant], fence: Fence) -> list[Grant]:
    """The authorization server accepted their scope: those still being provisioned become
    active (a grant revoked meanwhile stays as it is), while this claim holds the job (the
    fence, in the same transaction). Returns the activated ones."""
    if not grants:
        return []
    now = timezone.now()
    ids = [grant.pk for grant in grants]
    with transaction.atomic():
        fence()
        accepted = Grant.objects.filter(pk__in=ids, status=GrantStatus.PROVISIONING).update(
            status=GrantStatus.ACTIVE,
            status_changed_at=now,
            status_reason="",
            status_reason_code="",
            status_reason_params={},
        )
        activated = grants
        if accepted < len(grants):  # some were revoked meanwhile; only this claim activates
            active = set(
                Grant.objects.filter(pk__in=ids, status=GrantStatus.ACTIVE).values_list(
                    "pk", flat=True
                )
            )
            activated = [grant for grant in grants if grant.pk in active]
        # They have access from now: the history's periods start with the status change.
        grant_periods_open(grants=activated, at=now)
        with audit_events_batched():
            for grant in activated:
                audit_event_record(
                    actor=None,
                    actor_label=ACTOR,
                    action="grant.activated",
                    target=grant,
                    organisation=grant.kommune,
                    before={"status": GrantStatus.PROVISIONING},
                    after={"status": GrantStatus.ACTIVE, "scope": grant.scope},
                )
    return activated


def scope_check(*, requested: str, granted: str) -> None:
    """AuthServerRejected unless the server registered exactly the scopes asked for: one it
    dropped silently would leave a grant active that no token can carry, one it added a client
    that holds more than its grants (fails closed, with the reason)."""
    asked, got = set(requested.split()), set(granted.split())
    if asked != got:
        raise AuthServerRejected(
            str(
                SCOPE_NOT_GRANTED
                % {
                    "missing": " ".join(sorted(asked - got)) or "-",
                    "extra": " ".join(sorted(got - asked)) or "-",
                }
            )
        )


def _register_or_update(state: ClientState, server: AuthServerClient, fence: Fence) -> str:
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
    refused: AuthServerRejected | None = None
    if "scope" in metadata:
        try:
            scope_check(requested=metadata["scope"], granted=result.metadata.get("scope", ""))
        except AuthServerRejected as exc:
            refused = exc
    with transaction.atomic():
        # The client's row before the job's (the fence), as a claim takes them: a claim holding
        # the client while it waits for the job, and this transaction holding the job while it
        # waits for the client, deadlocked.
        if client.client_id != result.client_id:
            OAuthClient.objects.filter(pk=client.pk).update(client_id=result.client_id)
        fence(strict=True)  # the call may have outlasted the lease: written by this claim only
        registration, _ = ClientRegistration.objects.get_or_create(
            client=client,
            defaults={"server_client_id": result.client_id},
        )
        registration.server_client_id = result.client_id
        registration.registration_client_uri = result.registration_client_uri
        if result.registration_access_token:
            registration.registration_access_token = result.registration_access_token
        # The server holds the client either way; a refused scope leaves the hash empty, so the
        # next run sends the metadata again instead of trusting what the server kept.
        registration.metadata_hash = "" if refused else digest
        registration.save()
    state.registration = registration
    if refused is not None:
        raise refused
    return result.client_id


def record(state: ClientState) -> None:
    """The outside world now matches: the closed grants are revoked; those of a client whose
    keys all expired wait as pending, with the reason, for a new key. Run inside the caller's
    transaction, after ``client_sync`` (which activated the new grants)."""
    now = timezone.now()
    # (grant, old status, new status, audit action, reason code and text): a revoked grant keeps
    # the reason it was revoked with; the code is worded in the reader's language when read.
    changes: list[tuple[Grant, str, str, str, str, str]] = [
        (
            g,
            g.status,
            GrantStatus.REVOKED,
            "grant.revoked_everywhere",
            g.status_reason_code,
            g.status_reason,
        )
        for g in state.closing
        if g.status == GrantStatus.REVOKING
    ]
    if state.keys_expired:
        reason = str(KEYS_EXPIRED)
        changes += [
            (g, g.status, GrantStatus.PENDING, "grant.suspended", "keys_expired", reason)
            for g in state.closing
            if g.status in (GrantStatus.ACTIVE, GrantStatus.PROVISIONING)
        ]
    closed = []  # active grants whose keys all expired: their access ends now
    with audit_events_batched():
        for grant, old, new, action, code, reason in changes:
            # A grant whose status changed while this job ran keeps it: its change has a job.
            changed = Grant.objects.filter(pk=grant.pk, status=old).update(
                status=new, status_changed_at=now, status_reason=reason, status_reason_code=code
            )
            if changed and old == GrantStatus.ACTIVE:
                closed.append(grant.pk)
            if changed:
                audit_event_record(
                    actor=None,
                    actor_label=ACTOR,
                    action=action,
                    target=grant,
                    organisation=grant.kommune,
                    before={"status": old},
                    after={"status": new, "scope": grant.scope, "reason": reason},
                )
    grant_periods_close(grant_ids=closed, at=now, end=GrantPeriod.End.KEYS_EXPIRED)
