"""Orders of one client at the same moment (issue 14): two for the same item make one grant;
orders for other kommuner do not wait for each other's decisions.

As in ``test_policy_races``: one transaction stays open while another session's order runs, and
PostgreSQL's own view of who waits for whom (``pg_blocking_pids``) is what is checked."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from orders import services
from orders.models import AccessRequest, Grant, ItemStatus
from tests.conftest import World
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
