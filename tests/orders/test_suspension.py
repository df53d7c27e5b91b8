"""NHN suspends a vendor: every live grant of its clients closes through provisioning, the
policy refuses its clients new access, and lifting the suspension restores exactly the grants it
closed, decided again by the policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from celery import current_app
from django.core.exceptions import ValidationError
from django.utils import translation
from rest_framework.test import APIClient

from audit.models import AuditEvent
from orders import policy, services
from orders.models import (
    AccessRequest,
    Grant,
    GrantStatus,
    ItemStatus,
    ProvisioningJob,
    Service,
    SuspendedGrant,
    Suspension,
)
from tenants.models import Environment, Organisation
from tests.conftest import World
from tests.factories import ClientFactory, GrantFactory, revoke_reason, vendor_order

pytestmark = pytest.mark.django_db


def jobs_done(world: World) -> None:
    """The jobs of the orders ran: a change after this needs a job of its own."""
    ProvisioningJob.objects.update(status=ProvisioningJob.Status.DONE)


def suspend(world: World, reason: str = "Avtalebrudd") -> Suspension:
    return services.vendor_suspend(
        vendor=world.vendor, actor=world.people["nhn_operator"], reason=reason
    )


def lift(world: World) -> Suspension | None:
    return services.vendor_suspension_lift(vendor=world.vendor, actor=world.people["nhn_operator"])


def live(world: World, client: Any = None) -> list[Grant]:
    return list(
        Grant.objects.live()
        .filter(client=client or world.client)
        .select_related("service")
        .order_by("service__position", "access")
    )


def test_suspending_closes_every_live_grant_of_the_vendors_clients_through_provisioning(
    world: World, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    patient, observation = world.vendor_grants("patient.read,observation.write")
    test_client = ClientFactory(product=world.product, environment=Environment.TEST)
    [in_test] = vendor_order(
        client=test_client,
        kommune=world.kommune,
        actor=world.people["vendor_admin"],
        items="patient.read",
    )
    others = GrantFactory(client=world.other_client, kommune=world.kommune)
    jobs_done(world)

    with (
        mock.patch.object(current_app, "send_task") as send_task,
        django_capture_on_commit_callbacks(execute=True),
    ):
        suspension = suspend(world)
        send_task.assert_not_called()  # nothing leaves before COMMIT

    for grant in (patient, observation, in_test):
        grant.refresh_from_db()
        assert grant.status == GrantStatus.REVOKING
        assert grant.revoke_reason_code == "vendor_suspended"
        assert world.vendor.name in revoke_reason(grant)
        assert "Avtalebrudd" in revoke_reason(grant)
    others.refresh_from_db()
    assert others.status == GrantStatus.ACTIVE
    assert set(suspension.closed.values_list("grant_id", flat=True)) == {
        patient.pk,
        observation.pk,
        in_test.pk,
    }
    # The same path a revocation takes: the gateway closes them at once, and each client's job
    # narrows its scope at the authorization server.
    sent = {(c.args[0], tuple(c.kwargs["args"][0])) for c in send_task.call_args_list}
    closes = [ids for name, ids in sent if name == services.GATEWAY_CLOSE_TASK]
    assert sorted(id for ids in closes for id in ids) == sorted(
        str(g.pk) for g in (patient, observation, in_test)
    )
    pending = ProvisioningJob.objects.filter(status=ProvisioningJob.Status.PENDING)
    assert {job.client_id for job in pending} == {world.client.pk, in_test.client_id}
    assert {job.reason for job in pending} == {"grant.revoked"}
    world.vendor.refresh_from_db()
    assert world.vendor.suspended_at is not None


def test_a_suspended_vendors_new_order_is_rejected_with_its_reason_in_either_language(
    world: World,
) -> None:
    suspend(world)

    item = world.order("patient.read").items.get()

    assert item.status == ItemStatus.REJECTED
    assert item.reason_code == "vendor_suspended"
    assert item.grant is None
    with translation.override("nb"):
        assert "suspendert" in policy.reason_text(item.reason_code, item.reason_params)
    with translation.override("en"):
        text = policy.reason_text(item.reason_code, item.reason_params)
    assert world.vendor.name in text
    assert "suspended" in text
    assert not Grant.objects.live().filter(client=world.client).exists()


def test_the_orders_dry_run_says_the_same_before_anything_is_sent(world: World) -> None:
    suspend(world)

    [preview] = services.access_request_preview(
        client=world.client,
        kommuner=[world.kommune],
        items=[services.ItemInput(service=Service.objects.get(code="patient"), access="read")],
        initiated_by=AccessRequest.Initiator.VENDOR,
        actor=world.people["vendor_admin"],
    )

    assert preview.status == ItemStatus.REJECTED
    assert preview.decision.reason_code == "vendor_suspended"
    assert world.vendor.name in preview.reason


def test_the_api_refuses_a_suspended_vendors_order_the_same_way(world: World) -> None:
    suspend(world)
    api = APIClient()
    api.force_authenticate(world.people["vendor_admin"])

    response = api.post(
        "/api/v1/access-requests/",
        {
            "client": str(world.client.pk),
            "kommune": world.kommune.orgnr,
            "items": [{"service": "patient", "access": "read"}],
        },
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 201, response.content
    [item] = response.json()["items"]
    assert item["status"] == "rejected"
    assert "suspended by NHN" in item["reason"]
    assert world.vendor.name in item["reason"]


def test_an_item_waiting_for_the_kommune_is_rejected_if_approved_while_suspended(
    world: World,
) -> None:
    services.delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])
    request = world.order("patient.read")
    assert request.items.get().status == ItemStatus.AWAITING_KOMMUNE
    suspend(world)

    services.access_request_approve(request=request, actor=world.people["kommune_admin"])

    item = request.items.get()
    assert (item.status, item.reason_code) == (ItemStatus.REJECTED, "vendor_suspended")
    assert not Grant.objects.live().filter(client=world.client).exists()


def test_lifting_restores_exactly_the_grants_the_suspension_closed(world: World) -> None:
    patient, observation, care_plan = world.vendor_grants(
        "patient.read,observation.write,care-plan.read"
    )
    services.grant_revoke(grant=care_plan, actor=world.people["kommune_admin"])
    others = GrantFactory(client=world.other_client, kommune=world.kommune)
    suspension = suspend(world)
    Grant.objects.filter(status=GrantStatus.REVOKING).update(status=GrantStatus.REVOKED)
    jobs_done(world)

    lifted = lift(world)

    assert lifted is not None
    assert lifted.pk == suspension.pk
    restored = live(world)
    assert [(g.service.code, g.access) for g in restored] == [
        ("patient", "read"),
        ("observation", "write"),
    ]
    assert all(g.status == GrantStatus.PENDING for g in restored)
    assert {g.pk for g in restored}.isdisjoint({patient.pk, observation.pk})
    # Not the grant the kommune had revoked before: the suspension did not close it.
    care_plan.refresh_from_db()
    assert care_plan.status == GrantStatus.REVOKED
    assert not Grant.objects.live().filter(service__code="care-plan").exists()
    others.refresh_from_db()
    assert others.status == GrantStatus.ACTIVE
    # Provisioned again: a job for the client.
    job = ProvisioningJob.objects.get(status=ProvisioningJob.Status.PENDING)
    assert job.client_id == world.client.pk
    rows = {row.grant_id: row for row in SuspendedGrant.objects.filter(suspension=suspension)}
    assert rows[patient.pk].restored_grant_id in {g.pk for g in restored}
    assert rows[observation.pk].restored_grant_id in {g.pk for g in restored}
    world.vendor.refresh_from_db()
    assert world.vendor.suspended_at is None
    assert world.order("episode-of-care.read").items.get().status == ItemStatus.APPROVED


def test_the_orders_items_name_the_grants_that_restore_theirs(world: World) -> None:
    request = world.order("patient.read")
    suspend(world)
    lift(world)

    item = request.items.get()
    [restored] = live(world)
    assert item.grant_id == restored.pk
    assert item.status == ItemStatus.APPROVED


def test_a_grant_no_order_made_is_restored_on_its_own_terms(world: World) -> None:
    seeded = GrantFactory(
        client=world.client, kommune=world.kommune, service_codes=["RT"], status=GrantStatus.ACTIVE
    )
    suspend(world)

    lift(world)

    [restored] = live(world)
    assert restored.pk != seeded.pk
    assert (restored.service, restored.access) == (seeded.service, seeded.access)
    assert restored.delegation == world.delegation  # decided again: the delegation covers it
    assert restored.instruction == world.instruction


def test_lifting_decides_each_closed_grant_again_and_says_why_one_is_not_restored(
    world: World,
) -> None:
    [patient] = world.vendor_grants("patient.read")
    removed_client = ClientFactory(product=world.product)
    [gone] = vendor_order(
        client=removed_client,
        kommune=world.kommune,
        actor=world.people["vendor_admin"],
        items="patient.read",
    )
    suspension = suspend(world)
    # Meanwhile the kommune withdraws its delegation and the vendor removes a client.
    services.delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])
    services.client_remove(client=removed_client, actor=world.people["vendor_admin"])

    lift(world)

    assert not Grant.objects.live().filter(client__vendor=world.vendor).exists()
    rows = {row.grant_id: row for row in SuspendedGrant.objects.filter(suspension=suspension)}
    assert rows[patient.pk].restored_grant is None
    assert rows[patient.pk].not_restored_code == "delegation_missing"
    assert rows[gone.pk].not_restored_code == "client_removed"


def test_suspending_and_lifting_are_idempotent(world: World) -> None:
    [patient] = world.vendor_grants("patient.read")
    first = suspend(world)
    again = suspend(world, reason="Another reason")

    assert again.pk == first.pk
    assert again.reason == "Avtalebrudd"
    assert Suspension.objects.count() == 1
    assert AuditEvent.objects.filter(action="vendor.suspended").count() == 1
    assert AuditEvent.objects.filter(action="grant.revoked").count() == 1

    assert lift(world) is not None
    assert lift(world) is None
    assert len(live(world)) == 1
    assert AuditEvent.objects.filter(action="vendor.suspension_lifted").count() == 1


def test_suspending_and_lifting_are_audited_with_before_and_after(world: World) -> None:
    world.vendor_grants("patient.read")
    suspend(world)
    lift(world)

    suspended = AuditEvent.objects.get(action="vendor.suspended")
    assert suspended.actor == world.people["nhn_operator"]
    assert suspended.organisation_orgnr == world.vendor.orgnr
    assert suspended.object_id == str(world.vendor.pk)
    assert suspended.before == {"suspended": False}
    assert suspended.after is not None
    assert suspended.after["suspended"] is True
    assert suspended.after["reason"] == "Avtalebrudd"
    assert suspended.after["grants_closed"] == 1
    assert suspended.after["kommuner"] == [world.kommune.orgnr]
    lifted = AuditEvent.objects.get(action="vendor.suspension_lifted")
    assert lifted.before is not None
    assert lifted.before["suspended"] is True
    assert lifted.after == {
        "suspended": False,
        "suspension": suspended.after["suspension"],
        "grants_restored": 1,
        "grants_not_restored": 0,
    }
    assert AuditEvent.objects.filter(action="grant.restored").count() == 1


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_suspension_needs_a_reason_and_changes_nothing_without_one(
    world: World, reason: str
) -> None:
    [patient] = world.vendor_grants("patient.read")

    with pytest.raises(ValidationError) as raised:
        suspend(world, reason=reason)

    assert "reason" in raised.value.message_dict
    patient.refresh_from_db()
    assert patient.status == GrantStatus.PENDING
    assert not Suspension.objects.exists()
    world.vendor.refresh_from_db()
    assert world.vendor.suspended_at is None


def test_only_a_vendor_is_suspended(world: World) -> None:
    with pytest.raises(ValidationError) as raised:
        services.vendor_suspend(
            vendor=world.kommune, actor=world.people["nhn_operator"], reason="x"
        )
    assert "vendor" in raised.value.message_dict
    assert not Suspension.objects.exists()


def test_the_preview_names_the_clients_grants_and_kommuner_a_suspension_closes(
    world: World,
) -> None:
    world.vendor_grants("patient.read,observation.write")
    world.order("patient.read", kommune=world.other_kommune)  # waits: no delegation there
    GrantFactory(client=world.other_client, kommune=world.kommune)

    preview = services.vendor_suspension_preview(vendor=world.vendor)

    assert preview.grants == 2
    assert [(c.client, c.grants) for c in preview.clients] == [(world.client, 2)]
    assert [(k.kommune, k.grants) for k in preview.kommuner] == [(world.kommune, 2)]


@pytest.mark.parametrize(
    ("who", "expected"),
    [("nhn_operator", 200), ("nhn_auditor", 403), ("vendor_admin", 403), ("kommune_admin", 404)],
)
def test_the_api_suspends_and_lifts_for_nhn_operators_only(
    world: World, who: str, expected: int
) -> None:
    api = APIClient()
    api.force_authenticate(world.people[who])
    url = f"/api/v1/organizations/{world.vendor.orgnr}/"

    suspended = api.post(f"{url}suspend/", {"reason": "Avtalebrudd"}, format="json")

    assert suspended.status_code == expected, suspended.content
    assert Suspension.objects.exists() is (expected == 200)
    lifted = api.post(f"{url}lift-suspension/")
    assert lifted.status_code == expected
    if expected == 200:
        assert suspended.json()["suspended_at"] is not None
        assert lifted.json()["suspended_at"] is None


def test_the_api_answers_a_suspension_without_a_reason_with_a_field_error(world: World) -> None:
    api = APIClient()
    api.force_authenticate(world.people["nhn_operator"])
    response = api.post(f"/api/v1/organizations/{world.vendor.orgnr}/suspend/", {}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()
    assert not Organisation.objects.filter(suspended_at__isnull=False).exists()
