"""An order reads its kommuner's policy inputs in four statements, however many kommuner it
names: their instructions in force and the services these cover, their delegations in force and
the items of these. An order's time is mostly
Django building statements (docs/benchmarks.md), so each one saved counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders import services
from orders.models import ItemStatus, Service
from tests.conftest import World
from tests.factories import DelegationFactory, InstructionFactory, KommuneOrganisationFactory
from tests.orders.test_query_counts import item

pytestmark = pytest.mark.django_db


def reading(captured: CaptureQueriesContext, table: str) -> int:
    return sum(f'"{table}' in query["sql"] for query in captured)


def test_all_kommuner_s_instructions_and_delegations_are_two_statements_each(world: World) -> None:
    kommuner = [world.kommune, KommuneOrganisationFactory(), KommuneOrganisationFactory()]
    for kommune in kommuner[1:]:
        DelegationFactory(kommune=kommune, vendor=world.vendor)
        DelegationFactory(kommune=kommune, vendor=world.vendor)  # two: the older one is used
        InstructionFactory(kommune=kommune, signed_by=world.people["kommune_admin"])

    with CaptureQueriesContext(connection) as captured:
        requests = services.access_request_create(
            client=world.client,
            kommuner=kommuner,
            items=[item("patient", "read"), item("episode-of-care", "read")],
            initiated_by="vendor",
            actor=world.people["vendor_admin"],
        )

    assert reading(captured, "orders_instruction") == 2
    assert reading(captured, "orders_delegation") == 2
    assert {i.status for r in requests for i in r.ordered_items} == {ItemStatus.APPROVED}


def test_an_instruction_that_does_not_cover_the_service_leaves_the_item_waiting(
    world: World,
) -> None:
    kommune = KommuneOrganisationFactory()
    DelegationFactory(kommune=kommune, vendor=world.vendor)
    InstructionFactory(
        kommune=kommune,
        signed_by=world.people["kommune_admin"],
        services=Service.objects.filter(code="care-plan"),
    )

    [request] = services.access_request_create(
        client=world.client,
        kommuner=[kommune],
        items=[item("patient", "read"), item("care-plan", "read")],
        initiated_by="vendor",
        actor=world.people["vendor_admin"],
    )

    decided = {i.service.code: (i.status, i.reason_code) for i in request.ordered_items}
    assert decided["patient"] == (ItemStatus.AWAITING_KOMMUNE, "instruction_missing")
    assert decided["care-plan"] == (ItemStatus.APPROVED, "")


def test_the_oldest_delegation_in_force_covering_the_service_is_the_one_used(
    world: World,
) -> None:
    kommune = KommuneOrganisationFactory()
    InstructionFactory(kommune=kommune, signed_by=world.people["kommune_admin"])
    older = DelegationFactory(kommune=kommune, vendor=world.vendor)
    DelegationFactory(kommune=kommune, vendor=world.vendor)

    [request] = services.access_request_create(
        client=world.client,
        kommuner=[kommune],
        items=[item("patient", "read")],
        initiated_by="vendor",
        actor=world.people["vendor_admin"],
    )

    [approved] = request.ordered_items
    assert approved.grant is not None
    assert approved.grant.delegation_id == older.pk
