"""A revocation's gateway close that runs late (its worker down or backlogged) never shuts the
same item granted again since, and the reconciler reopens a key the database wants that a late
close shut anyway (issue 11, review round 3), against the real stack."""

from __future__ import annotations

import pytest

from orders import services
from orders.models import Grant, GrantStatus
from provisioning import runner
from provisioning.reconcile import reconcile
from tests.provisioning.stack import Stack, wait_for
from tests.provisioning.test_provisioning import DEADLINE, Vendor, fhir, status_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def regranted(stack: Stack) -> tuple[Vendor, Grant, Grant, str, str]:
    """Patient read granted, revoked (closed by the client's job), and granted again: the same
    gateway key, open for the new grant."""
    stack.start_worker()
    vendor = Vendor()
    [first] = vendor.order("patient.read")
    token = vendor.token_once_active(stack, first)
    path = fhir(vendor.kommune, "Patient/1")
    services.grant_revoke(grant=first, actor=vendor.kommune_admin)
    wait_for(lambda: status_of(first) == GrantStatus.REVOKED, timeout=DEADLINE, what="revoked")
    [second] = vendor.order("patient.read")
    token = vendor.token_once_active(stack, second)
    wait_for(lambda: stack.call(path, token).status_code == 200, timeout=DEADLINE, what="open")
    return vendor, first, second, path, token


def test_a_late_close_of_a_revoked_grant_leaves_the_same_item_granted_again_open(
    stack: Stack,
) -> None:
    _, first, _, path, token = regranted(stack)

    closed = runner.gateway_close(grant_ids=[first.pk])  # the first revocation's close, late

    assert closed == 0
    assert stack.call(path, token).status_code == 200


def test_the_reconciler_reopens_a_key_the_database_wants_that_a_close_shut(stack: Stack) -> None:
    vendor, _, second, path, token = regranted(stack)
    # A close that raced the new grant's opening: the key is in the revoked map.
    registration = vendor.client.registration
    stack.gateway.remove(
        runner.entry_for(
            second, environment=vendor.client.environment, client_id=registration.server_client_id
        )
    )
    assert stack.call(path, token).status_code == 403

    report = reconcile()

    assert "reconcile.gateway_reopened" in report.heals
    assert stack.call(path, token).status_code == 200
    assert reconcile().heals == []  # healed once, not on every run
