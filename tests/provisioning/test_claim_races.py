"""A worker's claim racing a revocation of the grant it is about to provision.

The claim reads the client's changing grants, then moves the pending ones to ``provisioning``. A
revocation that commits in between must not be overwritten: the grant would be activated and
opened at the gateway although it was revoked, and the revocation's own job would find nothing
left to close. The claim holds the grants it read until it commits, so the revocation waits for
it and then revokes the grant being provisioned; and neither waits for the other in a cycle (the
revocation locks the grant before the audit chain, and the claim now does too).

Like tests/orders/test_policy_races.py: the revocation runs in another thread with its own
database session, and the test waits until PostgreSQL shows it blocked, or it has finished."""

from __future__ import annotations

from typing import Any

import pytest

from orders import services
from orders.models import Grant, GrantStatus, ItemStatus, ProvisioningJob
from provisioning import runner
from tests.conftest import World
from tests.orders.test_policy_races import in_another_thread

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_revocation_committed_while_a_claim_reads_its_grant_is_not_overwritten(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = world.order("patient.read")
    item = order.items.get()
    assert item.status == ItemStatus.APPROVED
    assert item.grant is not None
    grant = item.grant
    assert grant.status == GrantStatus.PENDING
    job = ProvisioningJob.objects.get(client=world.client, status=ProvisioningJob.Status.PENDING)

    moves = runner._grants_move
    outcomes: list[Any] = []

    def revoke() -> Grant:
        return services.grant_revoke(
            grant=Grant.objects.get(pk=grant.pk), actor=world.people["nhn_operator"]
        )

    def revoke_meanwhile(grants: list[Grant], *args: Any, **kwargs: Any) -> None:
        # The claim has read the grant as pending; the revocation runs now, to its end or
        # until it waits for the claim.
        if not outcomes:
            outcomes.append(in_another_thread(revoke))
        moves(grants, *args, **kwargs)

    monkeypatch.setattr(runner, "_grants_move", revoke_meanwhile)
    claimed = runner.job_claim(job_id=job.pk)
    assert claimed is not None
    revoked = outcomes[0]()  # the revocation's thread, joined: it must not have failed either

    grant.refresh_from_db()
    assert revoked.pk == grant.pk
    assert grant.status == GrantStatus.REVOKING
    assert grant.revoked_at is not None
    # What the claim read is what it moved: the grant was still pending when it read it.
    _, state = claimed
    assert [g.pk for g in state.new] == [grant.pk]
    # Its activation, after the authorization server accepted the scope, leaves it revoking.
    assert runner._grants_accept(state.new, runner._no_fence) == []
    grant.refresh_from_db()
    assert grant.status == GrantStatus.REVOKING
