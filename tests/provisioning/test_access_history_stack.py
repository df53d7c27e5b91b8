"""Who had access when, through the real provisioning stack: PostgreSQL, Redis, real Celery
workers, the real oidc-provider and a real HAProxy. The periods start where a real worker made
the grant active, and the history agrees with what the gateway let through."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from orders import services
from orders.models import Grant, GrantPeriod, GrantStatus
from tests.provisioning.stack import Stack, wait_for
from tests.provisioning.test_provisioning import DEADLINE, Vendor, active, fhir, status_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def had_access_at(vendor: Vendor, moment: datetime.datetime) -> list[str]:
    """What the kommune's admin reads in the API: the grants with access at ``moment``."""
    api = APIClient()
    api.force_authenticate(vendor.kommune_admin)
    response = api.get("/api/v1/access-history/", {"service": "patient", "at": moment.isoformat()})
    assert response.status_code == 200, response.content
    return [row["grant"] for row in response.json()["results"]]


def revoked(grant: Grant) -> Any:
    return status_of(grant) == GrantStatus.REVOKED


def test_grant_revoke_and_grant_again_through_real_workers_and_the_gateway(
    stack: Stack,
) -> None:
    stack.start_worker()
    stack.start_close_worker()
    vendor = Vendor()
    before = timezone.now()

    [first] = vendor.order("patient.read")
    token = vendor.token_once_active(stack, first)
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 200
    during_first = timezone.now()

    # The period starts where the worker made the grant active: the same moment as its status
    # change, and its audit event.
    [period] = GrantPeriod.objects.filter(grant=first)
    first.refresh_from_db()
    assert period.started_at == first.status_changed_at
    activated = AuditEvent.objects.get(object_id=str(first.pk), action="grant.activated")
    assert abs(activated.occurred_at - period.started_at) < datetime.timedelta(seconds=1)
    assert before < period.started_at < during_first

    services.grant_revoke(grant=first, actor=vendor.kommune_admin)
    wait_for(lambda: revoked(first), timeout=DEADLINE, what="first grant revoked everywhere")
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 403
    gap = timezone.now()

    [second] = vendor.order("patient.read")
    assert second.pk != first.pk
    token = vendor.token_once_active(stack, second)
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token).status_code == 200
    during_second = timezone.now()

    services.grant_revoke(grant=second, actor=vendor.kommune_admin)
    wait_for(lambda: revoked(second), timeout=DEADLINE, what="second grant revoked everywhere")
    after = timezone.now()

    one, two = str(first.pk), str(second.pk)
    assert had_access_at(vendor, before) == []
    assert had_access_at(vendor, during_first) == [one]
    assert had_access_at(vendor, gap) == []
    assert had_access_at(vendor, during_second) == [two]
    assert had_access_at(vendor, after) == []
    [p1] = GrantPeriod.objects.filter(grant=first)
    [p2] = GrantPeriod.objects.filter(grant=second)
    assert p1.ended_at is not None
    assert p1.ended_at < p2.started_at
    assert had_access_at(vendor, p1.ended_at) == []
    assert had_access_at(vendor, p2.started_at) == [two]
    assert not active(first)
