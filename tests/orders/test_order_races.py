"""Orders of one client at the same moment (issue 14): two for the same item make one grant;
orders for other kommuner do not wait for each other's decisions.

As in ``test_policy_races``: one transaction stays open while another session's order runs, and
PostgreSQL's own view of who waits for whom (``pg_blocking_pids``) is what is checked."""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from orders import services
from orders.models import AccessRequest, Grant, ItemStatus, Service, ServiceAvailability
from tenants.models import Environment
from tests.conftest import World
from tests.factories import InstructionFactory
from tests.orders.test_policy_races import blocked, in_another_thread

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_two_orders_of_the_same_item_at_the_same_moment_make_one_grant(world: World) -> None:
    with transaction.atomic():
        first = world.order("patient.read")
        # The second waits for the first's decision on the item, then reuses its grant.
        outcome = in_another_thread(lambda: world.order("patient.read"))
    second: AccessRequest = outcome()

    [item] = second.items.all()
    assert item.status == ItemStatus.APPROVED
    assert item.grant_id == first.items.get().grant_id
    assert Grant.objects.filter(client=world.client).count() == 1


def test_an_order_does_not_wait_for_the_same_client_s_decisions_in_another_kommune(
    world: World,
) -> None:
    request = world.order("patient.read")
    finished = threading.Event()
    pids: list[int] = []

    def order_elsewhere() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pids.append(int(cursor.fetchone()[0]))
            world.order("patient.read", kommune=world.other_kommune)
            finished.set()
        finally:
            connection.close()

    with transaction.atomic():
        # A decision on the client's item in the world's kommune, in flight (an approval's
        # locks: the client's row FOR NO KEY UPDATE and the item's decisions).
        services._decider_locks(request)
        thread = threading.Thread(target=order_elsewhere)
        thread.start()
        deadline = time.monotonic() + 20
        while not finished.is_set() and not (pids and blocked(pids[0])):
            assert time.monotonic() < deadline, "the order neither blocked nor finished"
            time.sleep(0.02)  # polling an observable state, not waiting for time to pass
        waited = not finished.is_set()
    thread.join(timeout=30)
    assert not waited, "the order for another kommune waited for this one's decision"
    assert AccessRequest.objects.filter(client=world.client).count() == 2


def test_the_day_a_service_opens_an_order_and_the_periodic_release_make_one_grant(
    world: World, people: dict[str, Any]
) -> None:
    """The periodic release decides an item that waited for the service to open while the
    vendor orders the same item again: the order waits for the release's decision and reuses
    its grant (it used to insert a second one into the unique index and answer 500)."""
    care_plan = Service.objects.get(code="care-plan")
    services.service_availability_set(
        service=care_plan,
        environment=Environment.PRODUCTION,
        available_from=timezone.localdate() + datetime.timedelta(days=1),
        actor=people["nhn_operator"],
    )
    waiting = world.order("care-plan.read").items.get()
    assert waiting.status == ItemStatus.AWAITING_AVAILABILITY
    # The day has come: what the periodic release finds on the morning it opens.
    ServiceAvailability.objects.filter(service=care_plan).update(
        available_from=timezone.localdate()
    )

    with transaction.atomic():
        assert services.items_release_available() == 1
        outcome = in_another_thread(lambda: world.order("care-plan.read"))
    second: AccessRequest = outcome()

    waiting.refresh_from_db()
    [item] = second.items.all()
    assert item.status == ItemStatus.APPROVED
    assert item.grant_id == waiting.grant_id is not None
    assert Grant.objects.filter(client=world.client, service=care_plan).count() == 1


def test_an_order_placed_while_its_kommune_delegates_the_item_is_decided_on_the_delegation(
    world: World,
) -> None:
    """A kommune delegates a service to the vendor while the vendor orders it there: the order
    waits for the delegation and is approved on it. Before, each missed the other: the order
    read no delegation, and the delegation's re-decision did not see the order's item, which
    went on waiting for the kommune although a delegation covered it."""
    InstructionFactory(kommune=world.other_kommune)
    patient = Service.objects.get(code="patient")

    with transaction.atomic():
        services.delegation_create(
            kommune=world.other_kommune,
            vendor=world.vendor,
            items=[services.DelegationItemInput(service=patient, access="read")],
            valid_from=None,
            valid_until=None,
            actor=world.people["other_kommune_admin"],
        )
        outcome = in_another_thread(
            lambda: world.order("patient.read", kommune=world.other_kommune)
        )
    request: AccessRequest = outcome()

    [item] = request.items.all()
    assert item.status == ItemStatus.APPROVED


def test_an_order_in_flight_and_nhn_opening_its_service_do_not_deadlock(
    world: World, people: dict[str, Any]
) -> None:
    """NHN opens a service while an order of it is being decided: the opening waits for the
    order's decisions, and the order's rows, which refer to the service, do not wait for the
    opening's lock on the service (FOR UPDATE made the two wait for each other)."""
    care_plan = Service.objects.get(code="care-plan")
    later = timezone.localdate() + datetime.timedelta(days=1)
    services.service_availability_set(
        service=care_plan,
        environment=Environment.PRODUCTION,
        available_from=later,
        actor=people["nhn_operator"],
    )
    first = world.order("care-plan.read").items.get()

    with transaction.atomic():
        # An order's decisions in flight for the client in the kommune.
        services._grant_decisions_lock([(world.client.pk, world.kommune.pk)])
        opening = in_another_thread(
            lambda: services.service_availability_set(
                service=care_plan,
                environment=Environment.PRODUCTION,
                available_from=timezone.localdate(),
                actor=people["nhn_operator"],
            )
        )
        second = world.order("care-plan.read").items.get()
    change: services.AvailabilityChange = opening()

    assert change.released == 2
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == ItemStatus.APPROVED
    assert first.grant_id == second.grant_id is not None
