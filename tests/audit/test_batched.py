"""Events recorded in an ``audit_events_batched`` block are written by one INSERT at its end."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from audit.services import audit_event_record, audit_events_batched
from orders import services
from orders.models import Grant
from tests.conftest import World
from tests.orders.test_query_counts import approvable, ready_kommuner

pytestmark = pytest.mark.django_db


def inserts(captured: CaptureQueriesContext) -> int:
    return sum(q["sql"].startswith('INSERT INTO "audit_auditevent"') for q in captured)


def record(action: str) -> None:
    audit_event_record(actor=None, action=action, object_type="test", object_id=action)


def test_a_block_writes_its_events_at_its_end_in_one_insert_in_their_order() -> None:
    with CaptureQueriesContext(connection) as captured, audit_events_batched():
        for action in ("first", "second", "third"):
            record(action)
        assert not AuditEvent.objects.exists()

    assert inserts(captured) == 1
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "first",
        "second",
        "third",
    ]


def test_an_inner_block_leaves_the_writing_to_the_outer_one() -> None:
    with CaptureQueriesContext(connection) as captured, audit_events_batched():
        record("outer")
        with audit_events_batched():
            record("inner")
        assert not AuditEvent.objects.exists()

    assert inserts(captured) == 1
    assert AuditEvent.objects.count() == 2


def fail_in_a_batch() -> None:
    with transaction.atomic(), audit_events_batched():
        record("lost")
        raise RuntimeError


def test_a_block_that_fails_writes_nothing() -> None:
    with pytest.raises(RuntimeError):
        fail_in_a_batch()

    assert not AuditEvent.objects.exists()
    record("after")  # no batch is left behind: written at once
    assert AuditEvent.objects.count() == 1


def test_an_order_for_many_kommuner_writes_its_audit_trail_in_one_insert(world: World) -> None:
    kommuner = ready_kommuner(world, 5)
    items = approvable()

    with CaptureQueriesContext(connection) as captured:
        services.access_request_create(
            client=world.client,
            kommuner=kommuner,
            items=items,
            initiated_by="vendor",
            actor=world.people["vendor_admin"],
        )

    assert inserts(captured) == 1
    granted = Grant.objects.filter(kommune__in=kommuner).count()
    assert granted == len(kommuner) * len(items)
    actions = AuditEvent.objects.values_list("action", flat=True)
    assert sorted(set(actions)) == ["access_request.created", "grant.approved"]
    assert len(actions) == len(kommuner) + granted
