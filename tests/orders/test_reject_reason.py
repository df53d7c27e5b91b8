"""A kommune admin's rejection carries their reason to the vendor, through the API and the pages
(both call ``access_request_reject``); a delegation's revocation previews what it closes."""

from __future__ import annotations

import pytest
from django.utils import translation
from rest_framework.test import APIClient

from orders import services
from orders.models import GrantStatus, ItemStatus, Service
from orders.policy import reason_text
from tests.conftest import World
from tests.factories import GrantFactory

pytestmark = pytest.mark.django_db


def test_a_rejection_with_a_reason_shows_the_reason_to_the_vendor(world: World) -> None:
    services.delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])
    order = world.order("patient.read")
    admin = APIClient()
    admin.force_authenticate(world.people["kommune_admin"])

    response = admin.post(
        f"/api/v1/access-requests/{order.pk}/reject/",
        {"reason": "Vi bruker ikke dette produktet lenger."},
        format="json",
    )

    assert response.status_code == 200, response.json()
    item = order.items.get()
    assert item.status == ItemStatus.REJECTED
    assert item.reason_code == "rejected_by_kommune_because"
    with translation.override("en"):
        text = reason_text(item.reason_code, item.reason_params)
    assert text.endswith(f"for {world.kommune.name}: Vi bruker ikke dette produktet lenger.")


def test_a_rejection_without_a_reason_reads_as_before(world: World) -> None:
    services.delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])
    order = world.order("patient.read")

    services.access_request_reject(request=order, actor=world.people["kommune_admin"], reason=" ")

    assert order.items.get().reason_code == "rejected_by_kommune"


def test_the_preview_of_a_delegations_revocation_is_what_it_closes(world: World) -> None:
    resting = GrantFactory(client=world.client, kommune=world.kommune, delegation=world.delegation)
    condition = Service.objects.get(code="condition")
    GrantFactory(client=world.client, kommune=world.kommune, service=condition)
    closed = GrantFactory(
        client=world.client,
        kommune=world.kommune,
        delegation=world.delegation,
        service=resting.service,
        access="write",
        status=GrantStatus.REVOKED,
    )

    preview = set(services.delegation_revoke_closes(delegation=world.delegation))
    services.delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])

    assert preview == {resting}
    resting.refresh_from_db()
    closed.refresh_from_db()
    assert resting.status == GrantStatus.REVOKING
    assert closed.status == GrantStatus.REVOKED
