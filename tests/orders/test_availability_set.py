"""service_availability_set: NHN moves the day a service opens, and the orders waiting for it
follow at once (or on the day, through the periodic release)."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditEvent
from orders import services
from orders.models import GrantStatus, ItemStatus, Service, ServiceAvailability
from tenants.models import Environment
from tests.conftest import World

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
LATER = TODAY + datetime.timedelta(days=30)


def day_set(
    service: Service, day: datetime.date | None, actor: User
) -> services.AvailabilityChange:
    return services.service_availability_set(
        service=service, environment=Environment.PRODUCTION, available_from=day, actor=actor
    )


def test_a_later_day_keeps_new_orders_waiting_with_that_day_in_their_reason(
    world: World, people: dict[str, User]
) -> None:
    care_plan = Service.objects.get(code="care-plan")
    change = day_set(care_plan, LATER, people["nhn_operator"])
    assert (change.released, change.waiting_orders) == (0, 0)

    item = world.order("care-plan.read").items.get()
    assert item.status == ItemStatus.AWAITING_AVAILABILITY
    assert item.reason_params["date"] == LATER.isoformat()

    event = AuditEvent.objects.get(action="service.availability_set")
    assert event.after == {
        "service": "care-plan",
        "environment": "production",
        "available_from": LATER.isoformat(),
    }
    assert event.actor == people["nhn_operator"]


def test_moving_the_day_to_today_grants_the_waiting_items_at_once(
    world: World, people: dict[str, User]
) -> None:
    care_plan = Service.objects.get(code="care-plan")
    day_set(care_plan, LATER, people["nhn_operator"])
    item = world.order("care-plan.read").items.get()

    change = day_set(care_plan, TODAY, people["nhn_operator"])

    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED
    assert item.grant is not None
    assert item.grant.status == GrantStatus.PENDING
    assert (change.released, change.waiting_orders) == (1, 0)


def test_another_later_day_rewrites_the_reason_and_the_periodic_release_waits_for_it(
    world: World, people: dict[str, User]
) -> None:
    care_plan = Service.objects.get(code="care-plan")
    day_set(care_plan, LATER, people["nhn_operator"])
    item = world.order("care-plan.read").items.get()
    even_later = LATER + datetime.timedelta(days=10)

    change = day_set(care_plan, even_later, people["nhn_operator"])

    item.refresh_from_db()
    assert item.status == ItemStatus.AWAITING_AVAILABILITY
    assert item.reason_params["date"] == even_later.isoformat()
    assert change.waiting_orders == 1
    assert services.items_release_available() == 0


def test_clearing_the_day_closes_the_service_for_new_orders_but_takes_no_grant_away(
    world: World, people: dict[str, User]
) -> None:
    [grant] = world.vendor_grants("patient.read")
    patient = Service.objects.get(code="patient")

    change = day_set(patient, None, people["nhn_operator"])

    assert change.available_from is None
    assert not ServiceAvailability.objects.filter(
        service=patient, environment=Environment.PRODUCTION
    ).exists()
    grant.refresh_from_db()
    assert grant.status == GrantStatus.PENDING  # as it was: availability never revokes
    item = world.order("patient.read").items.get()  # ordered again: it waits now
    assert (item.status, item.reason_code) == (ItemStatus.AWAITING_AVAILABILITY, "not_scheduled")


def test_the_other_environment_is_left_alone(world: World, people: dict[str, User]) -> None:
    care_plan = Service.objects.get(code="care-plan")
    day_set(care_plan, LATER, people["nhn_operator"])
    assert care_plan.available_from(Environment.TEST) is not None
    test_day = ServiceAvailability.objects.get(service=care_plan, environment=Environment.TEST)
    assert test_day.available_from <= TODAY


def test_setting_the_same_day_again_records_nothing_new(people: dict[str, User]) -> None:
    patient = Service.objects.get(code="patient")
    day = patient.available_from(Environment.PRODUCTION)
    day_set(patient, day, people["nhn_operator"])
    assert not AuditEvent.objects.filter(action="service.availability_set").exists()


def test_an_unknown_environment_is_refused(people: dict[str, User]) -> None:
    with pytest.raises(ValidationError) as refused:
        services.service_availability_set(
            service=Service.objects.get(code="patient"),
            environment="staging",
            available_from=TODAY,
            actor=people["nhn_operator"],
        )
    assert "environment" in refused.value.message_dict
