"""Issue 11, section 2, end to end: when NHN's verification or a kommune's EPJ takes away what a
grant rested on, the re-evaluation revokes it through the outbox, a real Celery worker closes it at
the real HAProxy, and the grant the rules still allow keeps passing."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from orders.models import GrantStatus
from tenants.models import Organisation, Product, Role
from tests.factories import (
    MembershipFactory,
    OrganisationFactory,
    ProductFactory,
    revoke_reason,
    vendor_order,
)
from tests.provisioning.stack import Stack, wait_for
from tests.provisioning.test_provisioning import DEADLINE, Vendor, fhir, status_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_nhn_verifying_an_epj_as_vft_closes_its_write_grant_at_the_gateway(stack: Stack) -> None:
    stack.start_worker()
    stack.start_close_worker()
    vendor = Vendor(system_type=Product.SystemType.EPJ)
    operator = MembershipFactory(
        organisation=OrganisationFactory(kind=Organisation.Kind.OPERATOR),
        role=Role.NHN_OPERATOR,
    ).user
    write, read = vendor_order(
        client=vendor.client,
        kommune=vendor.kommune,
        actor=vendor.admin,
        items="patient.write,observation.read",
    )
    token = vendor.token_once_active(stack, write, read)
    patient = fhir(vendor.kommune, "Patient")
    observation = fhir(vendor.kommune, "Observation/1")
    assert stack.call(patient, token, "POST").status_code == 200
    assert stack.call(observation, token).status_code == 200

    api = APIClient()
    api.force_authenticate(operator)
    verified = api.post(
        f"/api/v1/products/{vendor.client.product_id}/verify/",
        {"system_type": "VFT", "is_epic": False},
        format="json",
    )
    assert verified.status_code == 200, verified.json()

    wait_for(
        lambda: stack.call(patient, token, "POST").status_code == 403,
        timeout=DEADLINE,
        what="the gateway refuses the write NHN's verification no longer allows",
    )
    wait_for(lambda: status_of(write) == GrantStatus.REVOKED, timeout=DEADLINE, what="revoked")
    assert "EPJ" in revoke_reason(write)
    # An EPJ may read observation, a VFT may not (the catalogue): that grant goes too.
    wait_for(lambda: status_of(read) == GrantStatus.REVOKED, timeout=DEADLINE, what="read gone")
    assert stack.call(observation, token).status_code == 403


def test_a_kommune_leaving_epic_closes_epic_only_grants_and_keeps_the_rest(stack: Stack) -> None:
    stack.start_worker()
    stack.start_close_worker()
    vendor = Vendor()  # a verified VFT
    epic = ProductFactory(system_type=Product.SystemType.EPJ, is_epic=True)
    other_epj = ProductFactory(system_type=Product.SystemType.EPJ)
    api = APIClient()
    api.force_authenticate(vendor.kommune_admin)
    epj = f"/api/v1/organizations/{vendor.kommune.orgnr}/epj/"
    assert api.put(epj, {"epj_product": str(epic.pk)}, format="json").status_code == 200
    vendor.kommune.refresh_from_db()
    condition, patient = vendor_order(
        client=vendor.client,
        kommune=vendor.kommune,
        actor=vendor.admin,
        items="condition.read,patient.read",
    )
    token = vendor.token_once_active(stack, condition, patient)
    conditions = fhir(vendor.kommune, "Condition?patient=1")
    patients = fhir(vendor.kommune, "Patient/1")
    assert stack.call(conditions, token).status_code == 200
    assert stack.call(patients, token).status_code == 200

    assert api.put(epj, {"epj_product": str(other_epj.pk)}, format="json").status_code == 200

    wait_for(
        lambda: stack.call(conditions, token).status_code == 403,
        timeout=DEADLINE,
        what="the gateway refuses the Epic-only service",
    )
    wait_for(lambda: status_of(condition) == GrantStatus.REVOKED, timeout=DEADLINE, what="revoked")
    assert "Epic" in revoke_reason(condition)
    assert status_of(patient) == GrantStatus.ACTIVE
    assert stack.call(patients, token).status_code == 200
