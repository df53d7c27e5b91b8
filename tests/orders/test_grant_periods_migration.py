"""The data migration that rebuilds the periods of access of existing grants from the audit
trail (``orders 0013_fill_grant_periods``): what it rebuilds is what the services now write."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from orders import services
from orders.models import AccessRequest, Grant, GrantPeriod, GrantStatus
from provisioning import runner
from tenants.models import ClientKey
from tests.conftest import World
from tests.factories import GrantFactory
from tests.keys import jwks, rsa_public_jwk
from tests.orders.test_access_history import boundary, provision  # noqa: F401 - a fixture
from tests.provisioning.test_runner_claims import FakeGateway

BEFORE = [("orders", "0012_add_grant_periods")]
FILLED = [("orders", "0013_fill_grant_periods")]
#: The services stamp a period with their clock at the change; its audit event is written a
#: moment later, in the same transaction.
SLACK = datetime.timedelta(seconds=1)


def periods() -> list[tuple[Any, ...]]:
    return [
        (
            p.grant_id,
            p.end,
            p.approved_by_id,
            p.approved_automatically,
            p.delegation_id,
            p.instruction_id,
            p.service_codes,
            p.started_at,
            p.ended_at,
        )
        for p in GrantPeriod.objects.order_by("grant__created_at", "started_at")
    ]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_periods_rebuilt_from_the_audit_trail_are_those_the_services_wrote(
    world: World,
    boundary: FakeGateway,  # noqa: F811 - the fixture imported above
) -> None:
    # A grant whose keys expire and come back, then a new decision on it, then its revocation.
    [grant] = world.vendor_grants("patient.read")
    provision(world.client)
    ClientKey.objects.filter(client=world.client).update(
        expires_at=timezone.now() - datetime.timedelta(minutes=1)
    )
    runner.job_run_now(client=world.client, reason="keys_expired")
    services.client_jwks_rotate(
        client=world.client,
        jwks=jwks(rsa_public_jwk("key-2", seed=1)),
        actor=world.people["vendor_admin"],
    )
    provision(world.client)
    request = world.order("patient.read", initiated_by=AccessRequest.Initiator.KOMMUNE)
    services.access_request_consent(request=request, actor=world.people["vendor_admin"])
    services.grant_revoke(grant=grant, actor=world.people["kommune_admin"])
    # A grant still active, and one never activated.
    [live] = world.vendor_grants("observation.write")
    [never] = world.vendor_grants("care-plan.read")
    provision(world.client)
    services.grant_revoke(grant=never, actor=world.people["kommune_admin"])  # too late: active
    [never] = world.vendor_grants("journaling.write")
    services.grant_revoke(grant=never, actor=world.people["kommune_admin"])
    provision(world.client)
    # A grant made before the history was kept: active, with no event at all.
    silent = GrantFactory(
        client=world.client,
        kommune=world.other_kommune,
        status=GrantStatus.ACTIVE,
        status_changed_at=timezone.now() - datetime.timedelta(days=3),
    )
    written = periods()
    assert [row[1] for row in written if row[0] == grant.pk] == [
        "keys_expired",
        "terms_changed",
        "revoked",
    ]
    assert {row[0] for row in written} == {grant.pk, live.pk, *[g.pk for g in _care_plan()]}
    GrantPeriod.objects.all().delete()

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    executor = MigrationExecutor(connection)
    executor.migrate(FILLED)
    try:
        rebuilt = periods()
        assert [row[:7] for row in rebuilt if row[0] != silent.pk] == [row[:7] for row in written]
        for was, now in zip(written, rebuilt, strict=False):
            assert abs(now[7] - was[7]) < SLACK
            assert (now[8] is None) == (was[8] is None)
            if now[8] is not None:
                assert abs(now[8] - was[8]) < SLACK
        [from_row] = [row for row in rebuilt if row[0] == silent.pk]
        assert from_row[7] == silent.status_changed_at
        assert from_row[8] is None
        assert not GrantPeriod.objects.filter(grant=never).exists()
        # Run again, it adds nothing.
        executor = MigrationExecutor(connection)
        executor.migrate(BEFORE)
        executor = MigrationExecutor(connection)
        executor.migrate(FILLED)
        assert periods() == rebuilt
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def _care_plan() -> list[Grant]:
    return list(Grant.objects.filter(service__code="care-plan"))
