"""A vendor's suspension for real: PostgreSQL, the broker, real Celery workers (jobs and
gateway closes), the oidc-provider and HAProxy on loopback. The gateway refuses the suspended
vendor's calls within seconds, and lets them through again once the suspension is lifted."""

from __future__ import annotations

import pytest

from orders import services
from orders.models import Grant, GrantStatus
from tenants.models import Role
from tests.factories import MembershipFactory, OrganisationFactory
from tests.provisioning.stack import Stack, wait_for
from tests.provisioning.test_provisioning import DEADLINE, Vendor, active, fhir, status_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

#: Revocation must take effect at the gateway "within seconds" (DESIGN.md, section 6).
WITHIN_SECONDS = 10.0


def test_a_suspended_vendor_is_refused_at_the_gateway_and_lifting_lets_it_through_again(
    stack: Stack,
) -> None:
    stack.start_worker()
    stack.start_close_worker()
    vendor = Vendor()
    operator = MembershipFactory(
        organisation=OrganisationFactory(kind="operator"), role=Role.NHN_OPERATOR
    ).user
    [grant] = vendor.order("patient.read")
    token = vendor.token_once_active(stack, grant)
    path = fhir(vendor.kommune, "Patient/1")
    assert stack.call(path, token).status_code == 200

    services.vendor_suspend(vendor=vendor.vendor, actor=operator, reason="Avtalebrudd")

    wait_for(
        lambda: stack.call(path, token).status_code == 403,
        timeout=WITHIN_SECONDS,
        what="the gateway refuses the suspended vendor",
    )
    wait_for(lambda: status_of(grant) == GrantStatus.REVOKED, timeout=DEADLINE, what="revoked")
    # A new order is refused, so nothing opens again while it is suspended.
    assert vendor.order("patient.read") == []

    services.vendor_suspension_lift(vendor=vendor.vendor, actor=operator)

    [restored] = Grant.objects.live().filter(client=vendor.client)
    assert restored.pk != grant.pk
    wait_for(lambda: active(restored), timeout=DEADLINE, what="restored grant active")
    fresh = stack.access_token(vendor.client_id(), vendor.key)
    wait_for(
        lambda: stack.call(path, fresh).status_code == 200,
        timeout=WITHIN_SECONDS,
        what="the gateway lets the restored grant through",
    )
