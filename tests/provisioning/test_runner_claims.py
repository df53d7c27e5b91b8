"""What a claim may write, and when a job ends: the writes made during a claim are fenced by its
lease, a scope the authorization server does not grant as asked fails closed, and a job whose
attempts are used up fails when it is claimed again. The authorization server and the gateway
are fakes (the boundary); the database, its locks and the claim are real. The real
oidc-provider cannot serve the scope case: it refuses a scope outside its list with 400
``invalid_client_metadata`` instead of dropping it (``test_a_refused_grant_fails_closed...``)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

import pytest
from django.utils import timezone

from orders.models import Grant, GrantStatus, ProvisioningJob, Service
from provisioning import runner
from provisioning.authserver import AuthServerRejected, Registration, client_metadata
from provisioning.gateway import Entry
from provisioning.models import ClientRegistration
from tests.conftest import World
from tests.factories import GrantFactory

pytestmark = pytest.mark.django_db


def grant_of(world: World, status: str = GrantStatus.ACTIVE, code: str = "patient") -> Grant:
    """A read grant of the world's client, made directly rather than ordered."""
    service = Service.objects.get(code=code)
    return GrantFactory(
        client=world.client,
        kommune=world.kommune,
        service=service,
        status=status,
    )


def _job(world: World, reason: str = "grant.approved", **fields: Any) -> ProvisioningJob:
    return ProvisioningJob.objects.create(client=world.client, reason=reason, **fields)


def _take_over(job: ProvisioningJob) -> None:
    """The lease runs out while this worker waits, and another worker claims the job."""
    ProvisioningJob.objects.filter(pk=job.pk).update(
        lease_expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    assert runner.job_claim(job_id=job.pk) is not None


class FakeGateway:
    def __init__(self) -> None:
        self.upserted: list[Entry] = []
        self.removed: list[Entry] = []
        self.behind: dict[str, str] = {}  # every gateway answered

    def upsert(self, entry: Entry) -> None:
        self.upserted.append(entry)

    def remove(self, entry: Entry) -> None:
        self.removed.append(entry)

    def remove_all(self, entries: Iterable[Entry]) -> None:
        self.removed += entries


class FakeServer:
    """Accepts every registration; ``during`` runs while the call is under way; ``granted``
    replaces the scope the server answers with."""

    def __init__(self, during: Any = None, granted: str | None = None) -> None:
        self.during = during or (lambda: None)
        self.granted = granted
        self.calls: list[str] = []

    def _answer(self, metadata: dict[str, Any]) -> Registration:
        self.during()
        body = {**metadata, "client_id": "as-client-1"}
        if self.granted is not None:
            body["scope"] = self.granted
        return Registration("as-client-1", "http://as/reg/as-client-1", "rat", body)

    def register(self, metadata: dict[str, Any]) -> Registration:
        self.calls.append("register")
        return self._answer(metadata)

    def update(self, uri: str, token: str, client_id: str, metadata: dict[str, Any]) -> Any:
        self.calls.append("update")
        return self._answer(metadata)

    def delete(self, uri: str, token: str) -> None:
        self.calls.append("delete")
        self.during()


@pytest.fixture
def gw(monkeypatch: pytest.MonkeyPatch) -> FakeGateway:
    fake = FakeGateway()
    monkeypatch.setattr(runner, "gateway", lambda: fake)
    return fake


def _claim(job: ProvisioningJob) -> tuple[ProvisioningJob, runner.ClientState]:
    claimed = runner.job_claim(job_id=job.pk)
    assert claimed is not None
    return claimed


# --- S2: the writes of a claim are fenced -------------------------------------------------------


def test_a_claim_that_lost_its_lease_during_the_registration_call_does_not_write_it(
    world: World, gw: FakeGateway
) -> None:
    grant = grant_of(world, GrantStatus.PENDING)
    job, state = _claim(_job(world))
    server = FakeServer(during=lambda: _take_over(job))

    with pytest.raises(runner.LeaseLost):
        runner.client_sync(
            client_id=world.client.pk, authserver=server, state=state, fence=runner._Fence(job)
        )

    assert server.calls == ["register"]
    assert not ClientRegistration.objects.filter(client=world.client).exists()
    world.client.refresh_from_db()
    assert world.client.client_id != "as-client-1"
    grant.refresh_from_db()
    assert grant.status == GrantStatus.PROVISIONING
    assert gw.upserted == []


def test_a_claim_that_lost_its_lease_during_the_delete_call_keeps_the_registration(
    world: World, gw: FakeGateway
) -> None:
    ClientRegistration.objects.create(
        client=world.client,
        server_client_id="as-client-1",
        registration_client_uri="http://as/reg/as-client-1",
        registration_access_token="rat",
        metadata_hash="x",
    )
    world.client.removed_at = timezone.now()
    world.client.save(update_fields=["removed_at"])
    job, state = _claim(_job(world, reason="client.removed"))
    server = FakeServer(during=lambda: _take_over(job))

    with pytest.raises(runner.LeaseLost):
        runner.client_sync(
            client_id=world.client.pk, authserver=server, state=state, fence=runner._Fence(job)
        )

    # The claim that holds the job now deletes it (the call is idempotent).
    assert ClientRegistration.objects.filter(client=world.client).exists()


def test_a_retry_that_lost_its_lease_does_not_reopen_the_active_grants(
    world: World, gw: FakeGateway
) -> None:
    grant_of(world, GrantStatus.ACTIVE)
    job, state = _claim(_job(world, attempts=1))  # a retry: it opens the active grants again
    assert state.reopen
    metadata = client_metadata(
        software_id=str(world.client.pk),
        name=world.client.name,
        jwks={"keys": state.keys},
        scopes=state.scopes,
    )
    state.registration = ClientRegistration.objects.create(
        client=world.client,
        server_client_id="as-client-1",
        registration_client_uri="http://as/reg/as-client-1",
        registration_access_token="rat",
        metadata_hash=runner.metadata_hash(metadata),  # up to date: no call to the server
    )
    _take_over(job)

    with pytest.raises(runner.LeaseLost):
        runner.client_sync(
            client_id=world.client.pk,
            authserver=FakeServer(),
            state=state,
            fence=runner._Fence(job),
        )

    assert gw.upserted == []


# --- S4: a scope the server does not grant as asked fails closed --------------------------------


def test_a_scope_the_authorization_server_dropped_fails_the_job_and_its_grants_closed(
    world: World, gw: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    active = grant_of(world, GrantStatus.ACTIVE, code="patient")
    new = grant_of(world, GrantStatus.PENDING, code="observation")
    job = _job(world)
    server = FakeServer(granted=active.scope)  # answers without the new grant's scope
    monkeypatch.setattr(runner, "AuthServerClient", lambda: server)

    outcome = runner.job_run(job_id=job.pk)

    assert outcome.status == "failed"
    job.refresh_from_db()
    assert job.status == ProvisioningJob.Status.FAILED
    assert new.scope in job.last_error
    new.refresh_from_db()
    assert new.status == GrantStatus.FAILED
    assert all(entry.service != "observation" for entry in gw.upserted)
    # The server has the client: its registration is kept, marked out of date so the next run
    # sends the metadata again rather than trusting it.
    registration = ClientRegistration.objects.get(client=world.client)
    assert registration.metadata_hash == ""


def test_the_scope_check_compares_sets_not_strings() -> None:
    runner.scope_check(requested="b a", granted="a b")
    with pytest.raises(AuthServerRejected, match="c"):
        runner.scope_check(requested="a c", granted="a")
    with pytest.raises(AuthServerRejected):
        runner.scope_check(requested="a", granted="a extra")


# --- S8: every job ends --------------------------------------------------------------------------


def test_a_job_killed_in_its_last_attempt_fails_when_it_is_claimed_again(
    world: World, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PROVISIONING_MAX_ATTEMPTS = 3
    grant = grant_of(world, GrantStatus.PROVISIONING)
    # The worker of its third attempt was killed (time limit, out of memory): the sweeper made
    # it pending again.
    job = _job(world, attempts=3, last_error="AuthServerUnavailable: no answer")
    synced: list[object] = []
    monkeypatch.setattr(runner, "client_sync", lambda **kwargs: synced.append(kwargs))

    outcome = runner.job_run(job_id=job.pk)

    assert outcome.status == "failed"
    assert synced == []
    job.refresh_from_db()
    assert (job.status, job.attempts) == (ProvisioningJob.Status.FAILED, 3)
    assert job.lease_expires_at is None
    assert "3" in job.last_error
    grant.refresh_from_db()
    assert grant.status == GrantStatus.FAILED


def test_an_exception_while_the_claim_reads_the_state_counts_as_an_attempt(
    world: World, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PROVISIONING_MAX_ATTEMPTS = 2
    grant_of(world, GrantStatus.PENDING)
    job = _job(world)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("a row the state read cannot take")

    monkeypatch.setattr(runner, "_state_of", broken)

    first = runner.job_run(job_id=job.pk)

    assert first.status == "retry"
    job.refresh_from_db()
    assert (job.status, job.attempts) == (ProvisioningJob.Status.PENDING, 1)
    assert "ValueError" in job.last_error
    ProvisioningJob.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())

    last = runner.job_run(job_id=job.pk)

    assert last.status == "failed"
    job.refresh_from_db()
    assert (job.status, job.attempts) == (ProvisioningJob.Status.FAILED, 2)
    assert "ValueError" in job.last_error
