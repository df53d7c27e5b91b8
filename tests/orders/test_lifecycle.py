"""What happens after an order: revocation, expiry, new instruction versions, opening dates,
approvals, rejections, withdrawals, key rotation and removal of clients."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from orders import services
from orders.models import (
    AccessRequest,
    AccessRequestItem,
    Grant,
    GrantStatus,
    Instruction,
    ItemStatus,
    ProvisioningJob,
    Service,
    ServiceAvailability,
)
from tests.conftest import World
from tests.factories import api_session, revoke_reason
from tests.keys import ec_public_jwk, jwks, rsa_public_jwk

pytestmark = pytest.mark.django_db


def order(world: World, *codes_access: str, kommune: Any = None) -> AccessRequest:
    """A vendor-initiated request of world.client for e.g. "patient.read"."""
    return world.order(",".join(codes_access), kommune=kommune)


def as_(world: World, who: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(world.people[who])
    return client


def test_an_approved_item_becomes_a_pending_grant_with_a_waiting_job(world: World) -> None:
    request = order(world, "patient.read")
    item = request.items.get()
    assert item.status == ItemStatus.APPROVED
    grant = item.grant
    assert grant is not None
    assert (grant.status, grant.scope) == (GrantStatus.PENDING, "nhn:ksp/patient.read")
    assert grant.instruction == world.instruction
    assert grant.delegation == world.delegation
    job = ProvisioningJob.objects.get(client=world.client)
    assert job.status == ProvisioningJob.Status.PENDING
    assert AuditEvent.objects.filter(action="grant.approved", object_id=str(grant.pk)).exists()


def test_the_same_item_requested_twice_makes_one_grant(world: World) -> None:
    first = order(world, "patient.read").items.get()
    second = order(world, "patient.read").items.get()
    assert second.status == ItemStatus.APPROVED
    assert first.grant_id == second.grant_id
    assert Grant.objects.filter(client=world.client).count() == 1
    # Changes for one client ride on one pending job: the worker reads the latest state.
    assert ProvisioningJob.objects.filter(client=world.client, status="pending").count() == 1


def test_revoking_a_delegation_revokes_the_grants_resting_on_it(world: World) -> None:
    grant = order(world, "patient.read").items.get().grant
    kommune_order = world.order("care-plan.read", initiated_by=AccessRequest.Initiator.KOMMUNE)
    services.access_request_consent(request=kommune_order, actor=world.people["vendor_admin"])
    kommune_asked = kommune_order.items.get().grant
    assert grant is not None
    assert kommune_asked is not None
    assert kommune_asked.delegation is None

    response = as_(world, "kommune_admin").post(
        f"/api/v1/delegations/{world.delegation.pk}/revoke/"
    )

    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    grant.refresh_from_db()
    assert grant.status == GrantStatus.REVOKING
    assert "Delegeringen" in revoke_reason(grant)
    kommune_asked.refresh_from_db()
    assert kommune_asked.status == GrantStatus.PENDING  # it did not rest on the delegation


def test_a_revoked_delegation_cannot_be_revoked_again_nor_used(world: World) -> None:
    admin = as_(world, "kommune_admin")
    admin.post(f"/api/v1/delegations/{world.delegation.pk}/revoke/")

    again = admin.post(f"/api/v1/delegations/{world.delegation.pk}/revoke/")
    assert again.status_code == 409
    assert "already revoked" in again.json()["detail"] or "allerede" in again.json()["detail"]

    item = order(world, "patient.read").items.get()
    assert item.status == ItemStatus.AWAITING_KOMMUNE
    assert item.reason_code == "delegation_missing"


def test_an_expired_delegation_revokes_its_grants_when_the_task_runs(world: World) -> None:
    grant = order(world, "patient.read").items.get().grant
    assert grant is not None
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    type(world.delegation).objects.filter(pk=world.delegation.pk).update(
        valid_from=yesterday - datetime.timedelta(days=30), valid_until=yesterday
    )

    assert services.delegations_expire() == 1
    assert services.delegations_expire() == 0  # once

    grant.refresh_from_db()
    assert grant.status == GrantStatus.REVOKING
    assert "expired" in revoke_reason(grant) or "utløp" in revoke_reason(grant)
    assert AuditEvent.objects.filter(action="delegation.expired").count() == 1


def test_a_new_instruction_version_that_drops_a_service_revokes_its_production_grants(
    world: World,
) -> None:
    patient = order(world, "patient.read").items.get().grant
    observation = order(world, "observation.write").items.get().grant
    assert patient is not None
    assert observation is not None
    new = services.instruction_create(
        kommune=world.kommune,
        actor=world.people["kommune_admin"],
        services=list(Service.objects.exclude(code="patient")),
        data={
            "subject_matter": "x",
            "duration": "y",
            "nature_and_purpose": "z",
            "personal_data_categories": ["helse"],
            "data_subject_categories": ["pasienter"],
            "retention": "r",
            "contact_name": "Kari",
            "contact_email": "kari@k.example",
        },
    )

    services.instruction_sign(instruction=new, actor=world.people["kommune_admin"])

    patient.refresh_from_db()
    observation.refresh_from_db()
    assert patient.status == GrantStatus.REVOKING
    assert observation.status == GrantStatus.PENDING
    assert observation.instruction == world.instruction  # keeps the version it was approved under
    world.instruction.refresh_from_db()
    assert world.instruction.status == "superseded"
    assert Instruction.objects.current_for(world.kommune) == new


def test_signing_an_instruction_releases_items_that_waited_for_it(world: World) -> None:
    Instruction.objects.filter(pk=world.instruction.pk).update(signed_at=None, signed_by=None)
    item = order(world, "patient.read").items.get()
    assert item.reason_code == "instruction_missing"

    services.instruction_sign(instruction=world.instruction, actor=world.people["kommune_admin"])

    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED
    assert item.grant is not None


def test_signing_twice_is_a_conflict_and_a_signed_instruction_is_immutable(world: World) -> None:
    admin = api_session(world.people["kommune_admin"])
    url = f"/api/v1/instructions/{world.instruction.pk}/"

    sign = admin.post(f"{url}sign/")
    edit = admin.patch(url, {"retention": "for ever"}, format="json")

    assert sign.status_code == 409
    assert edit.status_code == 409
    world.instruction.refresh_from_db()
    assert world.instruction.retention != "for ever"


def test_items_waiting_for_a_service_to_open_are_granted_by_the_periodic_task(
    world: World,
) -> None:
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    ServiceAvailability.objects.filter(service__code="care-plan").update(available_from=tomorrow)
    item = order(world, "care-plan.read").items.get()
    assert item.status == ItemStatus.AWAITING_AVAILABILITY

    assert services.items_release_available() == 0
    ServiceAvailability.objects.filter(service__code="care-plan").update(
        available_from=timezone.localdate()
    )
    assert services.items_release_available() == 1

    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED


def test_a_kommune_admin_approves_or_rejects_waiting_items_one_by_one(world: World) -> None:
    world.delegation.items.all().delete()
    request = order(world, "patient.read", "care-plan.read")
    patient, care_plan = (request.items.get(service__code=c) for c in ("patient", "care-plan"))
    admin = as_(world, "kommune_admin")

    approved = admin.post(
        f"/api/v1/access-requests/{request.pk}/approve/",
        {"items": [str(patient.pk)]},
        format="json",
    )
    rejected = admin.post(
        f"/api/v1/access-requests/{request.pk}/reject/",
        {"items": [str(care_plan.pk)]},
        format="json",
    )

    assert approved.status_code == 200, approved.json()
    assert rejected.status_code == 200, rejected.json()
    statuses = {i["service"]: i["status"] for i in rejected.json()["items"]}
    assert statuses == {"patient": "approved", "care-plan": "rejected"}
    reason = next(i["reason"] for i in rejected.json()["items"] if i["service"] == "care-plan")
    assert world.kommune.name in reason
    # Approving what no longer waits is a conflict; nothing changes.
    again = admin.post(
        f"/api/v1/access-requests/{request.pk}/approve/",
        {"items": [str(care_plan.pk)]},
        format="json",
    )
    assert again.status_code == 409
    care_plan.refresh_from_db()
    assert care_plan.status == ItemStatus.REJECTED


def test_the_requester_withdraws_what_still_waits(world: World) -> None:
    world.delegation.items.all().delete()
    request = order(world, "patient.read")

    response = as_(world, "vendor_admin").post(f"/api/v1/access-requests/{request.pk}/withdraw/")

    assert response.status_code == 200
    item = response.json()["items"][0]
    assert item["status"] == "withdrawn"
    assert item["reason"]


def test_a_kommune_admin_revokes_a_grant_and_a_second_revoke_is_a_conflict(world: World) -> None:
    grant = order(world, "patient.read").items.get().grant
    assert grant is not None
    admin = as_(world, "kommune_admin")

    first = admin.post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "Avtalen er sagt opp"})
    second = admin.post(f"/api/v1/grants/{grant.pk}/revoke/", {})

    assert first.status_code == 200
    assert first.json()["status"] == "revoking"
    assert first.json()["revoke_reason"] == "Avtalen er sagt opp"
    assert second.status_code == 409
    event = AuditEvent.objects.get(action="grant.revoked", object_id=str(grant.pk))
    assert event.before is not None
    assert event.after is not None
    assert (event.before["status"], event.after["status"]) == ("pending", "revoking")
    assert event.actor == world.people["kommune_admin"]


def test_grants_are_filtered_by_kommune_client_service_and_status(world: World) -> None:
    order(world, "patient.read", "observation.write")
    api = as_(world, "vendor_admin")

    def count(**params: str) -> int:
        return len(api.get("/api/v1/grants/", params).json()["results"])

    assert count() == 2
    assert count(kommune=world.kommune.orgnr) == 2
    assert count(kommune=world.other_kommune.orgnr) == 0
    assert count(service="patient") == 1
    assert count(status="pending") == 2
    assert count(status="active") == 0
    assert count(client=str(world.client.pk)) == 2
    assert api.get("/api/v1/grants/", {"client": "not-a-uuid"}).status_code == 400


def test_key_rotation_replaces_the_set_and_keeps_at_least_one_key(world: World) -> None:
    api = as_(world, "vendor_admin")
    url = f"/api/v1/clients/{world.client.pk}/jwks/"
    expiry = int((timezone.now() + datetime.timedelta(days=30)).timestamp())

    rotated = api.put(
        url, jwks(rsa_public_jwk("old", exp=expiry), ec_public_jwk("new")), format="json"
    )
    emptied = api.put(url, {"keys": []}, format="json")

    assert rotated.status_code == 200, rotated.json()
    keys = {k["kid"]: k for k in rotated.json()["keys"]}
    assert set(keys) == {"old", "new"}
    assert keys["old"]["expires_at"] is not None
    assert keys["new"]["jwk"]["kty"] == "EC"
    assert emptied.status_code == 400
    assert set(world.client.keys.values_list("kid", flat=True)) == {"old", "new"}
    assert (
        ProvisioningJob.objects.filter(client=world.client, reason="client.registered").exists()
        is False
    )
    assert ProvisioningJob.objects.filter(client=world.client, status="pending").count() == 1


def test_removing_a_client_revokes_its_grants_and_withdraws_its_waiting_items(
    world: World,
) -> None:
    grant = order(world, "patient.read").items.get().grant
    world.delegation.items.all().delete()
    waiting = order(world, "care-plan.read").items.get()
    assert grant is not None

    response = as_(world, "vendor_admin").delete(f"/api/v1/clients/{world.client.pk}/")

    assert response.status_code == 204
    grant.refresh_from_db()
    waiting.refresh_from_db()
    assert grant.status == GrantStatus.REVOKING
    assert waiting.status == ItemStatus.WITHDRAWN
    world.client.refresh_from_db()
    assert world.client.removed_at is not None
    later = as_(world, "vendor_admin").post(
        "/api/v1/access-requests/",
        {
            "client": str(world.client.pk),
            "kommune": world.kommune.orgnr,
            "items": [{"service": "patient", "access": "read"}],
        },
        format="json",
    )
    assert later.status_code == 404


def test_a_vendor_orders_for_many_kommuner_in_one_call(world: World) -> None:
    from tests.factories import DelegationFactory, InstructionFactory

    for kommune in (world.other_kommune,):
        InstructionFactory(kommune=kommune)
        DelegationFactory(kommune=kommune, vendor=world.vendor)

    response = as_(world, "vendor_admin").post(
        "/api/v1/access-requests/",
        {
            "client": str(world.client.pk),
            "kommuner": [world.kommune.orgnr, world.other_kommune.orgnr],
            "items": [{"service": "patient", "access": "read"}],
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert isinstance(response.json(), list)
    assert {r["kommune"] for r in response.json()} == {
        world.kommune.orgnr,
        world.other_kommune.orgnr,
    }
    assert {r["items"][0]["status"] for r in response.json()} == {"approved"}
    assert AccessRequestItem.objects.filter(status="approved").count() == 2
