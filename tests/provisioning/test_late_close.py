"""A revocation's gateway close that runs late (its worker down or backlogged) never shuts the
same item granted again since, and the reconciler reopens a key the database wants that a late
close shut anyway (issue 11, review round 3), against the real stack."""

from __future__ import annotations

import pytest

from orders import services
from orders.models import Grant, GrantStatus
from provisioning import runner
from provisioning.gateway import MapFileUnwritable
from provisioning.reconcile import reconcile
from tests.provisioning.gateway_fixtures import map_disk_full
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


def test_a_close_of_several_grants_while_the_map_disk_is_full_closes_each_of_them(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revocation of several grants at once (a suspension, a kommune's bulk revoke) while the
    gateway's map files cannot be written (`make chaos`, disk_full): each grant is closed in the
    running gateway at once, and the close is tried again for the files' lines. It used to stop
    at the first grant, whose line could not be written, and leave the others passing for as
    long as the disk was full."""
    worker = stack.start_worker()
    vendor = Vendor()
    grants = vendor.order("patient.read", "care-plan.read")
    token = vendor.token_once_active(stack, *grants)
    paths = [fhir(vendor.kommune, "Patient/1"), fhir(vendor.kommune, "CarePlan/1")]
    assert [stack.call(path, token).status_code for path in paths] == [200, 200]
    stack.kill_worker(worker)  # the client's job would close them too: only the closer here
    for grant in grants:
        services.grant_revoke(grant=grant, actor=vendor.kommune_admin)

    map_disk_full(monkeypatch)
    with pytest.raises(MapFileUnwritable):
        runner.gateway_close(grant_ids=[grant.pk for grant in grants])

    assert [stack.call(path, token).status_code for path in paths] == [403, 403]
    monkeypatch.undo()  # the disk has room again: the retry writes the lines
    assert runner.gateway_close(grant_ids=[grant.pk for grant in grants]) == 2
    assert [stack.call(path, token).status_code for path in paths] == [403, 403]
