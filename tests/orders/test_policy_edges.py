"""Round two of least privilege at the policy's edges: a planned EPJ switch reaching its date,
existing access granted on a vendor's word, and a vendor's re-declaration."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from orders import services
from orders.models import AccessRequest, Grant, GrantStatus, ProvisioningJob, Service
from portal.celery import app as celery_app
from tenants import services as tenant_services
from tenants.models import Environment, Product
from tests.conftest import World
from tests.factories import ClientFactory, GrantFactory, ProductFactory, revoke_reason

pytestmark = pytest.mark.django_db


def order(world: World, code: str, access: str = "read") -> Grant:
    item = world.order(f"{code}.{access}").items.get()
    assert item.grant is not None, item.reason_code
    return item.grant


# --- M6: a planned EPJ switch reaching its date ----------------------------------------------


def test_a_planned_switch_from_epic_reaching_its_date_revokes_epic_only_grants(
    world: World,
) -> None:
    epic = ProductFactory(system_type=Product.SystemType.EPJ, is_epic=True)
    dips = ProductFactory(system_type=Product.SystemType.EPJ)
    tenant_services.kommune_epj_set(kommune=world.kommune, product=epic)
    world.kommune.refresh_from_db()
    condition, patient = order(world, "condition"), order(world, "patient")
    day = timezone.localdate() + datetime.timedelta(days=10)
    tenant_services.kommune_epj_set(
        kommune=world.kommune, product=epic, switch_product=dips, switch_date=day
    )
    assert tenant_services.kommune_epj_switches_apply(today=day - datetime.timedelta(days=1)) == 0
    condition.refresh_from_db()
    assert condition.status == GrantStatus.PENDING  # production keeps Epic until the date

    assert tenant_services.kommune_epj_switches_apply(today=day) == 1

    world.kommune.refresh_from_db()
    assert (world.kommune.epj_product, world.kommune.epj_switch_product) == (dips, None)
    assert world.kommune.epj_switch_date is None
    condition.refresh_from_db()
    patient.refresh_from_db()
    assert condition.status == GrantStatus.REVOKING
    assert revoke_reason(condition)
    assert patient.status == GrantStatus.PENDING  # any EPJ will do for patient
    event = AuditEvent.objects.get(action="kommune.epj_switched")
    assert (event.actor_id, event.actor_label) == (None, "system:epj-switch")
    assert event.before["epj_product"] == str(epic.pk)
    assert event.after["epj_product"] == str(dips.pk)
    # Run again (the next beat): nothing left to roll.
    assert tenant_services.kommune_epj_switches_apply(today=day) == 0


def test_beat_rolls_arrived_epj_switches_every_hour() -> None:
    [entry] = [
        e
        for e in celery_app.conf.beat_schedule.values()
        if e["task"] == "tenants.epj_switches_apply"
    ]
    assert float(entry["schedule"]) <= 3600
    celery_app.loader.import_default_modules()  # what a worker does at start: autodiscovery
    assert "tenants.epj_switches_apply" in celery_app.tasks


# --- M8: access granted on a vendor's word before verification existed ----------------------


def test_nhn_lists_unverified_products_holding_live_production_grants(world: World) -> None:
    order(world, "patient")  # a verified product: not listed
    legacy = ProductFactory(vendor=world.vendor, name="Legacy Alarm", verified_at=None)
    in_production = ClientFactory(product=legacy)
    in_test = ClientFactory(product=legacy, environment=Environment.TEST)
    patient, care_plan = Service.objects.get(code="patient"), Service.objects.get(code="care-plan")
    for client, service, status in (
        (in_production, patient, GrantStatus.ACTIVE),
        (in_production, care_plan, GrantStatus.PENDING),
        (in_test, patient, GrantStatus.ACTIVE),  # test grants go by the declaration
    ):
        GrantFactory(
            client=client,
            kommune=world.kommune,
            service=service,
            status=status,
        )
    unused = ProductFactory(vendor=world.vendor, name="Never Used", verified_at=None)

    out = io.StringIO()
    call_command("unverified_products", stdout=out)

    text = out.getvalue()
    assert "Legacy Alarm" in text, text
    [line] = [row for row in text.splitlines() if str(legacy.pk) in row]
    assert "2 live production grants, 1 client, 1 kommune" in line
    assert world.product.name not in text
    assert unused.name not in text
    assert "verify" in text.lower()


def test_with_fail_the_command_exits_non_zero_while_any_is_left(world: World) -> None:
    out = io.StringIO()
    call_command("unverified_products", "--fail", stdout=out)  # none: exit 0
    assert "No unverified product" in out.getvalue()

    legacy = ProductFactory(vendor=world.vendor, verified_at=None)
    patient = Service.objects.get(code="patient")
    GrantFactory(
        client=ClientFactory(product=legacy),
        kommune=world.kommune,
        service=patient,
        status=GrantStatus.ACTIVE,
    )
    with pytest.raises(SystemExit) as exit_:
        call_command("unverified_products", "--fail", stdout=io.StringIO())
    assert exit_.value.code == 1


# --- S10: a second decision on a live grant --------------------------------------------------


def test_a_narrower_approval_of_a_live_grant_takes_the_kommune_s_codes_and_drops_the_delegation(
    world: World,
) -> None:
    patient = Service.objects.get(code="patient")
    second = world.delegation
    second.items.filter(service=patient, access="read").update(service_codes=["RT", "GPS"])
    again = world.order("patient.read", service_codes=("RT", "GPS"))
    live = again.items.get().grant
    assert live is not None
    assert live.delegation == second
    second.items.filter(service=patient).delete()  # the kommune narrows its delegation
    ProvisioningJob.objects.update(status=ProvisioningJob.Status.DONE)
    narrower = world.order("patient.read", service_codes=("RT", "GPS"))
    item = narrower.items.get()
    services.access_request_approve(
        request=narrower,
        actor=world.people["kommune_admin"],
        service_codes={str(item.pk): ["GPS"]},
    )

    item.refresh_from_db()
    assert item.grant_id == live.pk  # one live grant, not two
    live.refresh_from_db()
    assert live.service_codes == ["GPS"]
    assert live.delegation is None  # rests on the admin's approval now
    assert (live.approved_by, live.approved_automatically) == (
        world.people["kommune_admin"],
        False,
    )
    assert ProvisioningJob.objects.filter(
        client=world.client, status=ProvisioningJob.Status.PENDING
    ).exists()  # the gateway must narrow the codes
    assert AuditEvent.objects.filter(action="grant.updated", object_id=str(live.pk)).exists()
    # Revoking the second delegation no longer takes away what the admin approved.
    services.delegation_revoke(delegation=second, actor=world.people["kommune_admin"])
    live.refresh_from_db()
    assert live.status == GrantStatus.PENDING


# --- S11: who approved a kommune's order -----------------------------------------------------


def test_a_kommune_ordered_grant_records_the_kommune_admin_who_ordered_it(world: World) -> None:
    request = world.order("patient.read", initiated_by=AccessRequest.Initiator.KOMMUNE)

    services.access_request_consent(request=request, actor=world.people["vendor_admin"])

    grant = request.items.get().grant
    assert grant is not None
    assert (grant.approved_by, grant.approved_automatically) == (
        world.people["kommune_admin"],
        False,
    )
    event = AuditEvent.objects.get(action="grant.approved", object_id=str(grant.pk))
    assert event.actor_id == world.people["kommune_admin"].pk
