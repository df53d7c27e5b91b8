"""The dry run of an order (``access_request_preview``): what the policy would decide for each
kommune and item, through the same path as ``access_request_create``, writing nothing."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from orders import services
from orders.models import (
    AccessRequest,
    AccessRequestItem,
    Grant,
    ItemStatus,
    ProvisioningJob,
    Service,
    ServiceAvailability,
)
from portal.exceptions import Conflict
from tenants.models import Environment, Organisation, Product
from tests.conftest import World
from tests.factories import (
    ClientFactory,
    DelegationFactory,
    InstructionFactory,
    KommuneOrganisationFactory,
    ProductFactory,
)

pytestmark = pytest.mark.django_db

VENDOR = AccessRequest.Initiator.VENDOR


def item(code: str, access: str, codes: tuple[str, ...] = ()) -> services.ItemInput:
    return services.ItemInput(Service.objects.get(code=code), access, service_codes=codes)


def written() -> dict[str, int]:
    return {
        "requests": AccessRequest.objects.count(),
        "items": AccessRequestItem.objects.count(),
        "grants": Grant.objects.count(),
        "jobs": ProvisioningJob.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def as_created(requests: list[AccessRequest]) -> list[tuple[Any, ...]]:
    return [
        (
            request.kommune_id,
            i.service.code,
            i.access,
            i.status,
            i.reason_code,
            i.reason_params,
            tuple(i.grant.service_codes) if i.grant else (),
        )
        for request in requests
        for i in request.ordered_items
    ]


def as_previewed(previews: list[services.ItemPreview]) -> list[tuple[Any, ...]]:
    return [
        (
            p.kommune.pk,
            p.service.code,
            p.access,
            p.status,
            p.decision.reason_code,
            p.decision.reason_params,
            p.decision.service_codes,
        )
        for p in previews
    ]


def mixed_kommuner(world: World) -> list[Organisation]:
    """world.kommune has delegated everything and signed; the others lack one thing each."""
    epic = ProductFactory(system_type=Product.SystemType.EPJ, is_epic=True)
    not_epic = ProductFactory(system_type=Product.SystemType.EPJ)
    undelegated = KommuneOrganisationFactory(epj_product=epic)  # signed, no delegation
    InstructionFactory(kommune=undelegated)
    unsigned = KommuneOrganisationFactory(epj_product=epic)  # delegated, no instruction
    DelegationFactory(kommune=unsigned, vendor=world.vendor)
    on_other_epj = KommuneOrganisationFactory(epj_product=not_epic)
    InstructionFactory(kommune=on_other_epj)
    DelegationFactory(kommune=on_other_epj, vendor=world.vendor)
    world.kommune.epj_product = epic
    world.kommune.save(update_fields=["epj_product"])
    return [world.kommune, undelegated, unsigned, on_other_epj]


def mixed_items() -> list[services.ItemInput]:
    """Allowed; Epic only; not yet open in production; a VFT may not read observation."""
    ServiceAvailability.objects.filter(
        service__code="care-plan", environment=Environment.PRODUCTION
    ).update(available_from=timezone.localdate() + datetime.timedelta(days=30))
    return [
        item("patient", "read", ("RT", "TA")),
        item("condition", "read"),
        item("care-plan", "read"),
        item("observation", "read"),
    ]


def test_the_preview_is_what_the_order_then_decides_item_by_item(world: World) -> None:
    kommuner = mixed_kommuner(world)
    items = mixed_items()
    args: dict[str, Any] = {
        "client": world.client,
        "kommuner": kommuner,
        "items": items,
        "initiated_by": VENDOR,
        "actor": world.people["vendor_admin"],
    }

    previews = services.access_request_preview(**args)
    created = services.access_request_create(**args)

    assert as_previewed(previews) == as_created(created)
    decided = {(p.kommune, p.service.code): (p.status, p.decision.reason_code) for p in previews}
    assert decided[(world.kommune, "patient")] == (ItemStatus.APPROVED, "")
    assert decided[(world.kommune, "condition")] == (ItemStatus.APPROVED, "")
    assert decided[(world.kommune, "care-plan")] == (
        ItemStatus.AWAITING_AVAILABILITY,
        "not_available",
    )
    assert decided[(world.kommune, "observation")] == (ItemStatus.REJECTED, "system_type")
    assert decided[(kommuner[1], "patient")] == (
        ItemStatus.AWAITING_KOMMUNE,
        "delegation_missing",
    )
    assert decided[(kommuner[2], "patient")] == (
        ItemStatus.AWAITING_KOMMUNE,
        "instruction_missing",
    )
    assert decided[(kommuner[3], "condition")] == (ItemStatus.REJECTED, "epj_not_epic")
    # The grant holds the codes the delegation allows of those asked for (none here).
    assert previews[0].decision.service_codes == ()


def test_an_unverified_product_s_production_items_wait_for_nhn_in_the_preview_too(
    world: World,
) -> None:
    product = ProductFactory(vendor=world.vendor, verified_at=None)
    client = ClientFactory(product=product)
    args: dict[str, Any] = {
        "client": client,
        "kommuner": [world.kommune],
        "items": [item("patient", "read")],
        "initiated_by": VENDOR,
        "actor": world.people["vendor_admin"],
    }

    [preview] = services.access_request_preview(**args)

    assert (preview.status, preview.decision.reason_code) == (
        ItemStatus.AWAITING_VERIFICATION,
        "product_unverified",
    )
    assert preview.reason  # worded for the reader
    assert as_previewed([preview]) == as_created(services.access_request_create(**args))


def test_the_preview_writes_nothing(
    world: World, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    kommuner = mixed_kommuner(world)
    before = written()

    with django_capture_on_commit_callbacks() as callbacks:
        services.access_request_preview(
            client=world.client,
            kommuner=kommuner,
            items=mixed_items(),
            initiated_by=VENDOR,
            actor=world.people["vendor_admin"],
        )

    assert written() == before
    assert callbacks == []  # no job sent, no gateway close


def test_the_preview_refuses_what_the_order_refuses(world: World) -> None:
    args: dict[str, Any] = {
        "client": world.client,
        "kommuner": [world.kommune],
        "initiated_by": VENDOR,
        "actor": world.people["vendor_admin"],
    }
    with pytest.raises(ValidationError) as no_items:
        services.access_request_preview(items=[], **args)
    assert "items" in no_items.value.message_dict
    with pytest.raises(ValidationError) as twice:
        services.access_request_preview(
            items=[item("patient", "read"), item("patient", "read")], **args
        )
    assert "items" in twice.value.message_dict
    with pytest.raises(ValidationError) as kommune_twice:
        services.access_request_preview(
            **{**args, "kommuner": [world.kommune, world.kommune]}, items=[item("patient", "read")]
        )
    assert "kommuner" in kommune_twice.value.message_dict
    services.client_remove(client=world.client, actor=world.people["vendor_admin"])
    with pytest.raises(Conflict):
        services.access_request_preview(items=[item("patient", "read")], **args)


def ready(world: World, n: int) -> list[Organisation]:
    """Kommuner of every kind the preview reads: signed and delegated, on an EPJ, with a
    planned switch."""
    epic = ProductFactory(system_type=Product.SystemType.EPJ, is_epic=True)
    kommuner = []
    for i in range(n):
        kommune = KommuneOrganisationFactory(
            epj_product=epic,
            epj_switch_product=epic if i % 2 else None,
            epj_switch_date=timezone.localdate() if i % 2 else None,
        )
        if i % 3:
            InstructionFactory(kommune=kommune)
        if i % 4:
            DelegationFactory(kommune=kommune, vendor=world.vendor)
        kommuner.append(kommune)
    return kommuner


def test_the_preview_s_statements_do_not_grow_with_the_kommuner(
    world: World, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    items = [item("patient", "read"), item("condition", "read"), item("journaling", "write")]
    few, many = ready(world, 3), ready(world, 40)

    def preview(kommuner: list[Organisation]) -> int:
        with CaptureQueriesContext(connection) as captured:
            services.access_request_preview(
                client=world.client,
                kommuner=kommuner,
                items=items,
                initiated_by=VENDOR,
                actor=world.people["vendor_admin"],
            )
        return len(captured)

    baseline = preview(few)
    with django_assert_max_num_queries(baseline):
        previews = services.access_request_preview(
            client=world.client,
            kommuner=many,
            items=items,
            initiated_by=VENDOR,
            actor=world.people["vendor_admin"],
        )
    assert len(previews) == 40 * len(items)
    assert baseline <= 10


def test_every_kommune_that_delegated_all_items_is_found(world: World) -> None:
    patient = Service.objects.get(code="patient")
    partly = KommuneOrganisationFactory()
    DelegationFactory(kommune=partly, vendor=world.vendor, services=[patient])
    revoked = KommuneOrganisationFactory()
    services.delegation_revoke(
        delegation=DelegationFactory(kommune=revoked, vendor=world.vendor),
        actor=world.people["kommune_admin"],
    )
    DelegationFactory(kommune=KommuneOrganisationFactory(), vendor=world.other_vendor)

    both = services.kommuner_delegating(
        vendor=world.vendor, items=[item("patient", "read"), item("care-plan", "read")]
    )
    just_patient = services.kommuner_delegating(
        vendor=world.vendor, items=[item("patient", "read")]
    )

    assert list(both) == [world.kommune]
    assert set(just_patient) == {world.kommune, partly}
    assert not services.kommuner_delegating(vendor=world.vendor, items=[]).exists()
