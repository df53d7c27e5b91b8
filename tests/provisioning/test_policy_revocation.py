"""Issue 11, section 2, end to end: when NHN's verification or a kommune's EPJ takes away what a
grant rested on, the re-evaluation revokes it through the outbox, a real Celery worker closes it at
the real HAProxy, and the grant the rules still allow keeps passing."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from orders import services
from orders.models import AccessRequest, Grant, GrantStatus, Service
from tenants.models import Organisation, Product, Role
from tests.factories import (
    ClientFactory,
    DelegationFactory,
    InstructionFactory,
    KommuneOrganisationFactory,
    MembershipFactory,
    OrganisationFactory,
    ProductFactory,
    revoke_reason,
)
from tests.keys import rsa_private_key
from tests.provisioning.stack import Stack, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

DEADLINE = 30.0


def status_of(grant: Grant) -> str:
    grant.refresh_from_db()
    return grant.status


def test_nhn_verifying_an_epj_as_vft_closes_its_write_grant_at_the_gateway(stack: Stack) -> None:
    stack.start_worker()
    stack.start_close_worker()
    kommune = KommuneOrganisationFactory()
    vendor = OrganisationFactory(kind=Organisation.Kind.VENDOR)
    operator = MembershipFactory(
        organisation=OrganisationFactory(kind=Organisation.Kind.OPERATOR),
        role=Role.NHN_OPERATOR,
    ).user
    admin = MembershipFactory(organisation=vendor, role=Role.VENDOR_ADMIN).user
    product = ProductFactory(vendor=vendor, system_type=Product.SystemType.EPJ)
    client = ClientFactory(product=product)
    InstructionFactory(kommune=kommune)
    DelegationFactory(kommune=kommune, vendor=vendor)
    key = rsa_private_key(0)
    [request] = services.access_request_create(
        client=client,
        kommuner=[kommune],
        items=[
            services.ItemInput(service=Service.objects.get(code="patient"), access="write"),
            services.ItemInput(service=Service.objects.get(code="observation"), access="read"),
        ],
        initiated_by=AccessRequest.Initiator.VENDOR,
        actor=admin,
    )
    write, read = (request.items.get(service__code=c).grant for c in ("patient", "observation"))
    assert write is not None
    assert read is not None
    wait_for(
        lambda: status_of(write) == status_of(read) == GrantStatus.ACTIVE,
        timeout=DEADLINE,
        what="both grants active",
    )
    client.refresh_from_db()
    token = stack.access_token(client.client_id, key)
    patient = f"/{kommune.orgnr}/fhir/Patient"
    observation = f"/{kommune.orgnr}/fhir/Observation/1"
    assert stack.call(patient, token, "POST").status_code == 200
    assert stack.call(observation, token).status_code == 200

    api = APIClient()
    api.force_authenticate(operator)
    verified = api.post(
        f"/api/v1/products/{product.pk}/verify/",
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
    kommune = KommuneOrganisationFactory()
    kommune_admin = MembershipFactory(organisation=kommune, role=Role.KOMMUNE_ADMIN).user
    epic = ProductFactory(system_type=Product.SystemType.EPJ, is_epic=True)
    other_epj = ProductFactory(system_type=Product.SystemType.EPJ)
    api = APIClient()
    api.force_authenticate(kommune_admin)
    epj = f"/api/v1/organizations/{kommune.orgnr}/epj/"
    assert api.put(epj, {"epj_product": str(epic.pk)}, format="json").status_code == 200
    kommune.refresh_from_db()
    vendor = OrganisationFactory(kind=Organisation.Kind.VENDOR)
    admin = MembershipFactory(organisation=vendor, role=Role.VENDOR_ADMIN).user
    client = ClientFactory(product=ProductFactory(vendor=vendor))  # a verified VFT
    InstructionFactory(kommune=kommune)
    DelegationFactory(kommune=kommune, vendor=vendor)
    key = rsa_private_key(0)
    [request] = services.access_request_create(
        client=client,
        kommuner=[kommune],
        items=[
            services.ItemInput(service=Service.objects.get(code="condition"), access="read"),
            services.ItemInput(service=Service.objects.get(code="patient"), access="read"),
        ],
        initiated_by=AccessRequest.Initiator.VENDOR,
        actor=admin,
    )
    condition, patient = (
        request.items.get(service__code=c).grant for c in ("condition", "patient")
    )
    assert condition is not None
    assert patient is not None
    wait_for(
        lambda: status_of(condition) == status_of(patient) == GrantStatus.ACTIVE,
        timeout=DEADLINE,
        what="both grants active",
    )
    client.refresh_from_db()
    token = stack.access_token(client.client_id, key)
    conditions = f"/{kommune.orgnr}/fhir/Condition?patient=1"
    patients = f"/{kommune.orgnr}/fhir/Patient/1"
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
