"""A lapsed recertification for real: PostgreSQL, the broker, real Celery workers (the check
task, jobs and gateway closes), the oidc-provider and HAProxy on loopback. The check runs in
the worker, told a later ``now``; the gateway then refuses the lapsed vendor's calls in that
kommune, while the kommune that confirmed the vendor keeps its access."""

from __future__ import annotations

import datetime

import pytest

from audit.models import AuditEvent
from orders.models import GrantStatus
from portal import celery_app
from recertification import services
from tests.factories import DelegationFactory, InstructionFactory, MembershipFactory
from tests.provisioning.stack import Stack, wait_for
from tests.provisioning.test_provisioning import DEADLINE, Vendor, fhir, status_of
from tests.recertification.conftest import at, lapse_day

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

#: Revocation must take effect at the gateway "within seconds" (DESIGN.md, section 6).
WITHIN_SECONDS = 10.0


def test_a_lapsed_recertification_ends_with_the_gateway_answering_403(stack: Stack) -> None:
    stack.start_worker()
    stack.start_close_worker()
    vendor = Vendor()
    confirming = vendor.other_kommune
    InstructionFactory(kommune=confirming)
    DelegationFactory(kommune=confirming, vendor=vendor.vendor)
    confirmer = MembershipFactory(organisation=confirming, role="kommune_admin").user
    [lapsing] = vendor.order("patient.read")
    [kept] = vendor.order("patient.read", kommune=confirming)
    token = vendor.token_once_active(stack, lapsing, kept)
    lapsing_path = fhir(vendor.kommune, "Patient/1")
    kept_path = fhir(confirming, "Patient/1")
    assert stack.call(lapsing_path, token).status_code == 200
    assert stack.call(kept_path, token).status_code == 200
    day = lapse_day(lapsing)
    services.recertification_confirm(
        kommune=confirming,
        vendor=vendor.vendor,
        actor=confirmer,
        now=at(day - datetime.timedelta(days=3)),
    )

    celery_app.send_task("recertification.check", kwargs={"now": at(day).isoformat()})

    wait_for(
        lambda: stack.call(lapsing_path, token).status_code == 403,
        timeout=WITHIN_SECONDS,
        what="the gateway refuses the lapsed access",
    )
    wait_for(lambda: status_of(lapsing) == GrantStatus.REVOKED, timeout=DEADLINE, what="revoked")
    lapsing.refresh_from_db()
    assert lapsing.revoke_reason_code == "recertification_lapsed"
    [lapse] = AuditEvent.objects.filter(action="recertification.lapsed")
    assert lapse.organisation_orgnr == vendor.kommune.orgnr
    assert lapse.after is not None
    assert lapse.after["grants"] == [str(lapsing.pk)]
    # The confirmed kommune's access goes on, at the gateway and in the database.
    assert stack.call(kept_path, token).status_code == 200
    assert status_of(kept) == GrantStatus.ACTIVE
    fresh = stack.access_token(vendor.client_id(), vendor.key)
    assert stack.call(lapsing_path, fresh).status_code == 403
    assert stack.call(kept_path, fresh).status_code == 200
