"""An order decided while NHN's verification or a kommune's EPJ change
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
from orders.models import (
    AccessRequest,
    AccessRequestItem,
    Grant,
    GrantStatus,
    ItemStatus,
    ProvisioningJob,
    Service,
)
from tenants import services as tenant_services
from tenants.models import Product
from tests.conftest import World
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def blocked(pid: int) -> bool:
    """Whether the session ``pid`` waits for a lock another session holds."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0", [pid])
        row = cursor.fetchone()
    return bool(row and row[0])


def in_another_thread(run: Callable[[], Any]) -> Callable[[], Any]:
    """Start ``run`` in a thread with its own database session and wait until that session is
    blocked by a lock, or ``run`` has finished. Returns a function that joins the thread and
    returns ``run``'s result (or raises its exception)."""
    pids: list[int] = []
    started = threading.Event()
    result: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pids.append(int(cursor.fetchone()[0]))
            started.set()
            result.append(run())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)
        finally:
            started.set()
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    assert started.wait(timeout=20), "the thread did not start"
    deadline = time.monotonic() + 20
    while thread.is_alive() and not (pids and blocked(pids[0])):
        assert time.monotonic() < deadline, "the thread neither blocked nor finished"
        time.sleep(0.02)  # polling an observable state, not waiting for time to pass

    def outcome() -> Any:
        thread.join(timeout=30)
        assert not thread.is_alive(), "the thread did not finish"
        if errors:
            raise errors[0]
        return result[0]

    return outcome


def order_during(change: Callable[[], Any], order: Callable[[], AccessRequest]) -> AccessRequest:
    """Run ``change`` in a transaction that stays open until ``order`` (in another thread) is
    blocked by a lock, or has finished; then commit it and return the order."""
    with transaction.atomic():
        change()
        outcome = in_another_thread(order)
    request: AccessRequest = outcome()
    return request


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


def test_an_order_racing_nhn_s_verification_gets_no_grant_the_verified_type_refuses(
    world: World,
) -> None:
    request = order_during(
        lambda: tenant_services.product_verify(
            product=world.product,
            system_type="DHO",
            is_epic=False,
            actor=world.people["nhn_operator"],
        ),
        ask(world, "patient"),
    )

    item = request.items.get()
    assert not world.client.grants.filter(status__in=[GrantStatus.PENDING]).exists(), (
        item.status,
        item.reason_code,
    )
    # It decided by the committed verification: a DHO may not read patient.
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


@pytest.mark.parametrize("action", ["approve", "consent"])
def test_an_approval_racing_nhn_s_verification_neither_deadlocks_nor_keeps_a_refused_grant(
    world: World, action: str
) -> None:
    """The verification locks the product, then (revoking the client's grant) queues a job whose
    foreign key share-locks the client. An approval that locked the client first and then waited
    for the product's share lock made a deadlock, and PostgreSQL aborted one of the two."""
    held = world.order("patient.read")
    assert held.items.get().status == ItemStatus.APPROVED
    ProvisioningJob.objects.update(status=ProvisioningJob.Status.DONE)  # a worker ran it
    if action == "approve":
        world.delegation.items.filter(service__code="care-plan").delete()
    [waiting] = services.access_request_create(
        client=world.client,
        kommuner=[world.kommune],
        items=[services.ItemInput(service=Service.objects.get(code="care-plan"), access="read")],
        initiated_by=(
            AccessRequest.Initiator.VENDOR
            if action == "approve"
            else AccessRequest.Initiator.KOMMUNE
        ),
        actor=world.people["kommune_admin" if action == "approve" else "vendor_admin"],
    )
    assert waiting.items.get().status in (ItemStatus.AWAITING_KOMMUNE, ItemStatus.AWAITING_VENDOR)

    def decide() -> AccessRequest:
        if action == "approve":
            return services.access_request_approve(
                request=waiting, actor=world.people["kommune_admin"]
            )
        return services.access_request_consent(request=waiting, actor=world.people["vendor_admin"])

    with transaction.atomic():
        Product.objects.select_for_update().get(pk=world.product.pk)
        outcome = in_another_thread(decide)
        tenant_services.product_verify(
            product=world.product,
            system_type="DHO",
            is_epic=False,
            actor=world.people["nhn_operator"],
        )
    outcome()

    assert held.items.get().grant.status == GrantStatus.REVOKING  # type: ignore[union-attr]
    item = waiting.items.get()
    # It decided by the committed verification: a DHO may not read care-plan.
    assert (item.status, item.reason_code) == (ItemStatus.REJECTED, "system_type")


def test_an_approval_racing_the_revocation_of_the_grant_it_reuses_makes_a_new_one(
    world: World,
) -> None:
    """The revocation locks the live grant, then (queueing a job) key-share-locks the client.
    An approval that reuses that grant holds the client's lock and waits for the grant: its
    client lock must not block the job's key share, or the two deadlock."""
    patient = Service.objects.get(code="patient")
    first = world.order("patient.read", service_codes=("RT", "GPS"))
    live = first.items.get().grant
    assert live is not None
    # The same item, waiting for a kommune admin (as it would without the delegation).
    waiting = AccessRequest.objects.create(
        client=world.client,
        kommune=world.kommune,
        initiated_by=AccessRequest.Initiator.VENDOR,
        requested_by=world.people["vendor_admin"],
    )
    item = AccessRequestItem.objects.create(
        request=waiting,
        service=patient,
        access="read",
        service_codes=["RT", "GPS"],
        status=ItemStatus.AWAITING_KOMMUNE,
        reason_code="delegation_missing",
    )
    ProvisioningJob.objects.update(status=ProvisioningJob.Status.DONE)  # a worker ran them

    def approve() -> AccessRequest:
        return services.access_request_approve(
            request=waiting,
            actor=world.people["kommune_admin"],
            service_codes={str(item.pk): ["GPS"]},
        )

    with transaction.atomic():
        Grant.objects.select_for_update().get(pk=live.pk)
        outcome = in_another_thread(approve)
        services.delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])
    outcome()

    live.refresh_from_db()
    assert live.status == GrantStatus.REVOKING
    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED
    assert item.grant is not None
    assert item.grant.pk != live.pk
    assert (item.grant.status, item.grant.service_codes) == (GrantStatus.PENDING, ["GPS"])
