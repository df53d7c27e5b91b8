"""Who had access when (issue 13, point 2): the answers of ``/api/v1/access-history/`` across
grant -> revoke -> re-grant, and activate -> keys expired -> restored -> vendor suspended ->
lifted -> revoked, at every moment in between and at the boundaries themselves.

Every change goes through the real service functions and the real provisioning runner (its
claim, lease and records, in the database); only the authorization server and the gateway are
fakes, the boundary (``tests/provisioning/test_access_history_stack.py`` runs it for real).
Transactional: the runner's claims compare against the database's clock, which a test's
wrapping transaction would stop.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from orders import services
from orders.models import (
    AccessRequest,
    Grant,
    GrantPeriod,
    GrantStatus,
    ItemStatus,
    ProvisioningJob,
)
from provisioning import runner
from tenants.models import ClientKey, OAuthClient
from tests.conftest import World
from tests.factories import order_place
from tests.keys import jwks, rsa_public_jwk
from tests.provisioning.test_runner_claims import FakeGateway, FakeServer

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

URL = "/api/v1/access-history/"


@pytest.fixture
def boundary(monkeypatch: pytest.MonkeyPatch) -> FakeGateway:
    """The authorization server accepts everything; the gateway records what it is told."""
    gateway = FakeGateway()
    monkeypatch.setattr(runner, "gateway", lambda: gateway)
    monkeypatch.setattr(runner, "AuthServerClient", FakeServer)
    return gateway


def provision(client: OAuthClient) -> None:
    """Run the client's pending jobs, as a worker would."""
    for job_id in ProvisioningJob.objects.filter(
        client=client, status=ProvisioningJob.Status.PENDING
    ).values_list("pk", flat=True):
        runner.job_run(job_id=job_id)


def status(grant: Grant) -> str:
    grant.refresh_from_db()
    return grant.status


def iso(moment: datetime.datetime) -> str:
    return moment.isoformat()


class Auditor:
    """NHN's auditor asking the API."""

    def __init__(self, world: World) -> None:
        self.api = APIClient()
        self.api.force_authenticate(world.people["nhn_auditor"])
        self.world = world

    def ask(self, **params: Any) -> list[dict[str, Any]]:
        query = {"kommune": self.world.kommune.orgnr, "service": "patient", **params}
        response = self.api.get(URL, {k: v for k, v in query.items() if v is not None})
        assert response.status_code == 200, response.content
        assert response.json()["count"] == len(response.json()["results"])
        rows: list[dict[str, Any]] = response.json()["results"]
        return rows

    def at(self, moment: datetime.datetime) -> list[str]:
        """The grants that had access at ``moment``."""
        return [row["grant"] for row in self.ask(at=iso(moment))]

    def during(self, start: datetime.datetime | None, end: datetime.datetime | None) -> list[str]:
        """The grants that had access at some time in ``[start, end)``."""
        return [
            row["grant"]
            for row in self.ask(**{"from": start and iso(start), "to": end and iso(end)})
        ]


def assert_periods_follow_statuses() -> None:
    """The invariant: a grant is active exactly while it has an open period."""
    for grant in Grant.objects.all():
        open_periods = GrantPeriod.objects.filter(grant=grant, ended_at__isnull=True).count()
        assert open_periods == (1 if grant.status == GrantStatus.ACTIVE else 0), grant


def test_grant_revoke_and_grant_again_answer_right_at_every_moment(
    world: World, boundary: FakeGateway
) -> None:
    auditor = Auditor(world)
    before = timezone.now()

    # 1. The vendor orders; the kommune's delegation approves it: the rules decide.
    [first] = world.vendor_grants("patient.read")
    assert status(first) == GrantStatus.PENDING
    pending = timezone.now()
    provision(world.client)
    assert status(first) == GrantStatus.ACTIVE
    during_first = timezone.now()

    # 2. The kommune revokes the delegation, and with it the grant that rested on it.
    services.delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])
    assert status(first) == GrantStatus.REVOKING
    provision(world.client)
    assert status(first) == GrantStatus.REVOKED
    gap = timezone.now()

    # 3. The vendor orders again; now the kommune's admin approves it: a new grant.
    request = world.order("patient.read")
    [item] = request.items.all()
    assert item.status == ItemStatus.AWAITING_KOMMUNE
    services.access_request_approve(request=request, actor=world.people["kommune_admin"])
    item.refresh_from_db()
    second = item.grant
    assert second is not None
    assert second.pk != first.pk
    provision(world.client)
    assert status(second) == GrantStatus.ACTIVE
    during_second = timezone.now()

    # 4. The kommune revokes it.
    services.grant_revoke(grant=second, actor=world.people["kommune_admin"])
    provision(world.client)
    after = timezone.now()
    assert_periods_follow_statuses()

    one, two = str(first.pk), str(second.pk)
    assert auditor.at(before) == []
    assert auditor.at(pending) == []  # approved, not yet active: no access
    assert auditor.at(during_first) == [one]
    assert auditor.at(gap) == []
    assert auditor.at(during_second) == [two]
    assert auditor.at(after) == []
    assert auditor.ask() == []  # no moment: now

    # The boundaries: a period holds at its start and no longer at its end.
    [p1] = GrantPeriod.objects.filter(grant=first)
    [p2] = GrantPeriod.objects.filter(grant=second)
    assert p1.ended_at is not None
    assert p2.ended_at is not None
    assert auditor.at(p1.started_at) == [one]
    assert auditor.at(p1.started_at - datetime.timedelta(microseconds=1)) == []
    assert auditor.at(p1.ended_at - datetime.timedelta(microseconds=1)) == [one]
    assert auditor.at(p1.ended_at) == []
    assert auditor.at(p2.started_at) == [two]
    assert auditor.at(p2.ended_at) == []

    # Periods: each row with the interval it had access in.
    assert auditor.during(before, after) == [one, two]
    assert auditor.during(before, during_first) == [one]
    assert auditor.during(gap, during_second) == [two]
    assert auditor.during(p1.ended_at, p2.started_at) == []  # exactly the gap
    assert auditor.during(p1.ended_at - datetime.timedelta(microseconds=1), p2.started_at) == [one]
    assert auditor.during(during_second, None) == [two]  # open end: until now
    assert auditor.during(None, gap) == [one]  # open start: since the beginning
    assert auditor.during(after, None) == []

    # Who approved each and how, and what it rested on.
    [row_one, row_two] = auditor.ask(**{"from": iso(before), "to": iso(after)})
    assert datetime.datetime.fromisoformat(row_one["started_at"]) == p1.started_at
    assert datetime.datetime.fromisoformat(row_one["ended_at"]) == p1.ended_at
    assert (row_one["approval"], row_one["approved_automatically"]) == ("policy", True)
    assert row_one["delegation"]["id"] == str(world.delegation.pk)
    assert row_one["instruction"]["version"] == world.instruction.version
    assert row_one["ended_by"] == "revoked"
    assert row_one["revoke_reason"]  # the delegation was revoked, in words
    assert row_one["approved_by"] is None
    assert (row_two["approval"], row_two["approved_automatically"]) == ("person", False)
    assert row_two["approved_by"] == world.people["kommune_admin"].username
    assert row_two["delegation"] is None
    assert row_two["instruction"]["version"] == world.instruction.version
    assert (row_two["vendor"], row_two["client"]) == (world.vendor.orgnr, str(world.client.pk))
    assert (row_two["kommune"], row_two["service"], row_two["access"]) == (
        world.kommune.orgnr,
        "patient",
        "read",
    )


def test_keys_expired_restored_suspended_lifted_and_revoked_answer_right_at_every_moment(
    world: World, boundary: FakeGateway
) -> None:
    auditor = Auditor(world)
    operator = world.people["nhn_operator"]

    [grant] = world.vendor_grants("patient.read")
    provision(world.client)
    active = timezone.now()

    # The client's keys all expire: the reconciler's job closes the grant until a new key.
    ClientKey.objects.filter(client=world.client).update(
        expires_at=timezone.now() - datetime.timedelta(minutes=1)
    )
    runner.job_run_now(client=world.client, reason="keys_expired")
    assert status(grant) == GrantStatus.PENDING
    keys_expired = timezone.now()

    # A new key: the same grant opens again, in a period of its own.
    services.client_jwks_rotate(
        client=world.client,
        jwks=jwks(rsa_public_jwk("key-2", seed=1)),
        actor=world.people["vendor_admin"],
    )
    provision(world.client)
    assert status(grant) == GrantStatus.ACTIVE
    restored = timezone.now()

    # NHN suspends the vendor (the grant is revoked) and lifts it (a new grant, restored).
    services.vendor_suspend(vendor=world.vendor, actor=operator, reason="Sikkerhetsavvik")
    provision(world.client)
    assert status(grant) == GrantStatus.REVOKED
    suspended = timezone.now()
    services.vendor_suspension_lift(vendor=world.vendor, actor=operator)
    regranted = Grant.objects.exclude(pk=grant.pk).get(client=world.client)
    provision(world.client)
    assert status(regranted) == GrantStatus.ACTIVE
    lifted = timezone.now()

    services.grant_revoke(grant=regranted, actor=world.people["kommune_admin"])
    provision(world.client)
    after = timezone.now()
    assert_periods_follow_statuses()

    old, new = str(grant.pk), str(regranted.pk)
    assert auditor.at(active) == [old]
    assert auditor.at(keys_expired) == []
    assert auditor.at(restored) == [old]
    assert auditor.at(suspended) == []
    assert auditor.at(lifted) == [new]
    assert auditor.at(after) == []

    first, second = GrantPeriod.objects.filter(grant=grant).order_by("started_at")
    assert (first.end, second.end) == (GrantPeriod.End.KEYS_EXPIRED, GrantPeriod.End.REVOKED)
    assert auditor.at(first.ended_at) == []  # type: ignore[arg-type]
    assert auditor.at(second.started_at) == [old]
    # Over the whole time: each period is a row of its own, with its interval.
    rows = auditor.ask(**{"from": iso(active), "to": iso(after)})
    assert [(row["grant"], row["ended_by"]) for row in rows] == [
        (old, "keys_expired"),
        (old, "revoked"),
        (new, "revoked"),
    ]
    assert rows[1]["revoke_reason"]  # the suspension, in words
    assert rows[0]["ended_at"] is not None
    assert datetime.datetime.fromisoformat(rows[1]["started_at"]) > (
        datetime.datetime.fromisoformat(rows[0]["ended_at"])
    )


def test_a_new_decision_on_an_active_grant_starts_a_period_with_its_terms(
    world: World, boundary: FakeGateway
) -> None:
    """An item for a service the client holds reuses its live grant with the new decision:
    from that moment the history shows the new approver and terms, before it the old."""
    auditor = Auditor(world)
    [grant] = world.vendor_grants("patient.read")
    provision(world.client)
    delegated = timezone.now()

    # The kommune orders the same access for the vendor's client itself; the vendor consents.
    request = world.order("patient.read", initiated_by=AccessRequest.Initiator.KOMMUNE)
    services.access_request_consent(request=request, actor=world.people["vendor_admin"])
    [item] = request.items.all()
    assert item.grant_id == grant.pk
    ordered = timezone.now()
    assert status(grant) == GrantStatus.ACTIVE

    before, after = GrantPeriod.objects.filter(grant=grant).order_by("started_at")
    assert before.end == GrantPeriod.End.TERMS_CHANGED
    assert before.ended_at == after.started_at
    [then] = auditor.ask(at=iso(delegated))
    [now] = auditor.ask(at=iso(ordered))
    [boundary_row] = auditor.ask(at=iso(after.started_at))
    assert then["approval"] == "policy"
    assert then["delegation"] is not None
    assert now["approval"] == "person"
    assert now["delegation"] is None
    assert now["approved_by"] == world.people["kommune_admin"].username
    assert boundary_row["approval"] == "person"  # at the moment of the change: the new terms


def test_a_grant_that_never_became_active_never_had_access(
    world: World, boundary: FakeGateway
) -> None:
    auditor = Auditor(world)
    [grant] = world.vendor_grants("patient.read")
    services.grant_revoke(grant=grant, actor=world.people["kommune_admin"])
    provision(world.client)

    assert status(grant) == GrantStatus.REVOKED
    assert not GrantPeriod.objects.exists()
    assert auditor.during(None, None) == []


def test_answers_narrow_by_vendor_client_service_and_access(
    world: World, boundary: FakeGateway
) -> None:
    auditor = Auditor(world)
    read, write = world.vendor_grants("patient.read,observation.write")
    other = order_place(
        client=world.other_client,
        kommune=world.kommune,
        actor=world.people["other_vendor_admin"],
        items="patient.read",
    )
    provision(world.client)
    now = timezone.now()
    everything = auditor.ask(service=None, at=iso(now))
    assert {row["grant"] for row in everything} == {str(read.pk), str(write.pk)}
    assert other.items.get().status != ItemStatus.APPROVED  # no delegation to the other vendor

    def grants(**params: Any) -> set[str]:
        return {row["grant"] for row in auditor.ask(**{"service": None, "at": iso(now), **params})}

    assert grants(service="observation") == {str(write.pk)}
    assert grants(access="read") == {str(read.pk)}
    assert grants(vendor=world.vendor.orgnr) == {str(read.pk), str(write.pk)}
    assert grants(vendor=world.other_vendor.orgnr) == set()
    assert grants(client=str(world.client.pk)) == {str(read.pk), str(write.pk)}
    assert grants(client=str(world.other_client.pk)) == set()
    world.client.refresh_from_db()
    assert grants(client=world.client.client_id) == {str(read.pk), str(write.pk)}
    assert grants(kommune=world.other_kommune.orgnr) == set()
    # An orgnr may be written in groups, as the pages show it.
    spaced = " ".join([world.kommune.orgnr[:3], world.kommune.orgnr[3:6], world.kommune.orgnr[6:]])
    assert grants(kommune=spaced) == {str(read.pk), str(write.pk)}
