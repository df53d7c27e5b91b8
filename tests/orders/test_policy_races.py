"""An order decided while NHN's verification, the vendor's declaration or a kommune's EPJ change
is in flight: either the change waits for the order and re-evaluates its grants, or the order
waits for the change and decides by what it committed. Never a grant the rules no longer allow.

Each test holds the change's transaction open, starts the order in another thread, waits until
PostgreSQL shows that order waiting for a lock (an observable outcome, not a sleep), commits the
change, and checks what the order decided."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from orders import services
from orders.models import AccessRequest, GrantStatus, ItemStatus, Service
from tenants import services as tenant_services
from tenants.models import Product
from tests.conftest import World
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        # Inside a transaction PostgreSQL keeps the first snapshot of its statistics views.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def order_during(change: Callable[[], Any], order: Callable[[], AccessRequest]) -> AccessRequest:
    """Run ``change`` in a transaction that stays open until ``order`` (in another thread) is
    blocked, or has finished; then commit it and return the order."""
    result: list[AccessRequest] = []
    errors: list[BaseException] = []

    def run_order() -> None:
        try:
            result.append(order())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run_order)
    with transaction.atomic():
        change()
        thread.start()
        deadline = time.monotonic() + 20
        while thread.is_alive() and not waiting_for_a_lock():
            assert time.monotonic() < deadline, "the order neither blocked nor finished"
            time.sleep(0.02)  # polling an observable state, not waiting for time to pass
    thread.join(timeout=30)
    if errors:
        raise errors[0]
    return result[0]


def ask(world: World, code: str) -> Callable[[], AccessRequest]:
    def order() -> AccessRequest:
        [request] = services.access_request_create(
            client=world.client,
            kommuner=[world.kommune],
            items=[services.ItemInput(service=Service.objects.get(code=code), access="read")],
            initiated_by=AccessRequest.Initiator.VENDOR,
            actor=world.people["vendor_admin"],
        )
        return request

    return order


def test_an_order_racing_the_vendor_s_re_declaration_gets_no_grant_nhn_has_not_verified(
    world: World,
) -> None:
    request = order_during(
        lambda: tenant_services.product_declare(
            product=world.product, system_type="DHO", actor=world.people["vendor_admin"]
        ),
        ask(world, "patient"),
    )

    item = request.items.get()
    assert not world.client.grants.filter(status__in=[GrantStatus.PENDING]).exists(), (
        item.status,
        item.reason_code,
    )
    # It decided by the committed declaration: a DHO may not read patient.
    assert (item.status, item.reason_code) == (ItemStatus.REJECTED, "system_type")


def test_an_order_racing_a_kommune_leaving_epic_gets_no_epic_only_grant(world: World) -> None:
    epic = ProductFactory(system_type=Product.SystemType.EPJ, is_epic=True)
    other = ProductFactory(system_type=Product.SystemType.EPJ)
    tenant_services.kommune_epj_set(kommune=world.kommune, product=epic)
    world.kommune.refresh_from_db()

    request = order_during(
        lambda: tenant_services.kommune_epj_set(kommune=world.kommune, product=other),
        ask(world, "condition"),
    )

    item = request.items.get()
    live = world.client.grants.filter(status=GrantStatus.PENDING, service__code="condition")
    assert not live.exists(), (item.status, item.reason_code)
    assert item.status == ItemStatus.REJECTED
    assert item.reason_code == "epj_not_epic"
