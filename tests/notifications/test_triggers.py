"""Who hears of what (issue 13, point 7): kommune admins of orders that wait for them; vendors'
admins of decisions, provisioning failures and suspension; NHN operators of failed jobs and
reconciler heals. One notice per order and decision, never one per item."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from notifications.models import Notice, Notification
from orders import services
from orders.models import Access, AccessRequest, ItemStatus, ProvisioningJob, Service
from provisioning import runner
from provisioning.reconcile import Report, _heals_notify
from tenants.models import Organisation, Role
from tests.conftest import World
from tests.factories import (
    DelegationFactory,
    InstructionFactory,
    KommuneOrganisationFactory,
    MembershipFactory,
)

pytestmark = pytest.mark.django_db


def told(person: User, kind: str | None = None) -> list[Notification]:
    mine = Notification.objects.filter(recipient=person).select_related("notice")
    if kind is not None:
        mine = mine.filter(notice__kind=kind)
    return list(mine.order_by("created_at"))


def _items(*codes: str) -> list[services.ItemInput]:
    return [
        services.ItemInput(Service.objects.get(code=code.split(".")[0]), code.split(".")[1])
        for code in codes
    ]


def test_an_order_for_many_kommuner_tells_each_kommunes_admins_once_and_the_vendor_nothing(
    world: World,
) -> None:
    kommuner = [KommuneOrganisationFactory() for _ in range(5)]
    admins = [MembershipFactory(organisation=k, role=Role.KOMMUNE_ADMIN).user for k in kommuner]
    for kommune in kommuner:
        InstructionFactory(kommune=kommune)
    delegated = kommuner[0]
    DelegationFactory(kommune=delegated, vendor=world.vendor)

    requests = services.access_request_create(
        client=world.client,
        kommuner=kommuner,
        items=_items("patient.read", "care-plan.read", "observation.write"),
        initiated_by=AccessRequest.Initiator.VENDOR,
        actor=world.people["vendor_admin"],
    )

    assert told(admins[0]) == []  # its delegation decided it: nothing waits for it
    for admin, request in zip(admins[1:], requests[1:], strict=True):
        [notification] = told(admin, "request_waiting")
        params = notification.notice.params
        assert params["vendor"] == world.vendor.name
        assert params["total"] == 3
        assert len(params["items"]) == 3
        assert {i["access"] for i in params["items"]} == {"read", "write"}
        assert notification.link.endswith(f"/approvals/{request.pk}/")
    assert Notice.objects.count() == 4
    assert told(world.people["vendor_admin"]) == []
    assert told(world.people["kommune_admin"]) == []


def test_a_kommunes_order_for_a_vendors_client_asks_the_vendors_admins_to_consent(
    world: World,
) -> None:
    request = world.order("patient.read", initiated_by=AccessRequest.Initiator.KOMMUNE)

    [notification] = told(world.people["vendor_admin"], "consent_waiting")
    assert notification.notice.params["kommune"] == world.kommune.name
    assert notification.link.endswith(f"/orders/{request.pk}/")
    assert told(world.people["vendor_developer"]) == []


def test_the_vendors_admins_hear_of_a_kommune_admins_decisions_once_per_decision(
    world: World,
) -> None:
    services.delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])
    order = world.order("patient.read,care-plan.read,episode-of-care.read")
    items = {i.service.code: i for i in order.items.select_related("service")}
    assert all(i.status == ItemStatus.AWAITING_KOMMUNE for i in items.values())
    [waiting] = told(world.people["kommune_admin"], "request_waiting")
    assert waiting.notice.params["total"] == 3

    services.access_request_approve(
        request=order,
        actor=world.people["kommune_admin"],
        item_ids=[items["patient"].pk, items["care-plan"].pk],
    )
    services.access_request_reject(
        request=order, actor=world.people["kommune_admin"], reason="We do not need it"
    )

    approved, rejected = told(world.people["vendor_admin"], "request_decided")
    assert [i["service"]["nb"] for i in approved.notice.params["approved"]] == [
        items["patient"].service.name_nb,
        items["care-plan"].service.name_nb,
    ]
    assert approved.notice.params["rejected"] == []
    assert [i["service"]["en"] for i in rejected.notice.params["rejected"]] == [
        items["episode-of-care"].service.name_en
    ]
    assert rejected.notice.params["reason"] == "We do not need it"
    assert approved.link.endswith(f"/orders/{order.pk}/")


def test_items_the_rules_decide_later_are_told_to_the_vendor_in_one_notice(world: World) -> None:
    services.delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])
    world.order("patient.read,care-plan.read")
    world.order("episode-of-care.read")

    services.delegation_create(
        kommune=world.kommune,
        vendor=world.vendor,
        items=[
            services.DelegationItemInput(Service.objects.get(code=code), Access.READ)
            for code in ("patient", "care-plan", "episode-of-care")
        ],
        valid_from=None,
        valid_until=None,
        actor=world.people["kommune_admin"],
    )

    [notification] = told(world.people["vendor_admin"], "items_decided")
    assert notification.notice.params["approved"] == 3
    assert {i["kommune"] for i in notification.notice.params["approved_items"]} == {
        world.kommune.name
    }


def test_suspension_and_its_lifting_are_told_to_the_vendors_admins(
    world: World, people: dict[str, User]
) -> None:
    world.vendor_grants("patient.read")

    services.vendor_suspend(vendor=world.vendor, actor=people["nhn_operator"], reason="Unpaid")
    services.vendor_suspension_lift(vendor=world.vendor, actor=people["nhn_operator"])

    [suspended] = told(people["vendor_admin"], "vendor_suspended")
    assert suspended.notice.params == {"vendor": world.vendor.name, "reason": "Unpaid", "grants": 1}
    [lifted] = told(people["vendor_admin"], "vendor_suspension_lifted")
    assert lifted.notice.params["restored"] == 1
    assert told(people["other_vendor_admin"]) == []


def test_a_failed_job_is_told_to_the_vendors_admins_and_nhns_operators(
    world: World, people: dict[str, User]
) -> None:
    job = ProvisioningJob.objects.create(
        client=world.client,
        reason="grant.approved",
        status=ProvisioningJob.Status.RUNNING,
        attempts=3,
        lease_token=uuid.uuid4(),
    )
    job = ProvisioningJob.objects.select_related("client__vendor").get(pk=job.pk)

    runner._fail(job, "HTTP 400: invalid_client_metadata")

    [vendor_told] = told(people["vendor_admin"], "provisioning_failed")
    assert vendor_told.notice.params["error"] == "HTTP 400: invalid_client_metadata"
    assert vendor_told.link.endswith(f"/clients/{world.client.pk}/")
    [nhn_told] = told(people["nhn_operator"], "job_failed")
    assert nhn_told.notice.params["attempts"] == 3
    assert nhn_told.link.endswith(f"/jobs/{job.pk}/")
    assert told(people["nhn_auditor"]) == []
    assert told(people["kommune_admin"]) == []


def test_a_reconciler_run_that_healed_is_told_to_nhns_operators_once(
    people: dict[str, User], nhn: Organisation
) -> None:
    report = Report(heals=["reconcile.gateway_grants", "reconcile.registration"] * 2)

    _heals_notify(report)

    [notification] = told(people["nhn_operator"], "reconciler_healed")
    params = notification.notice.params
    assert params["total"] == 4
    assert [(h["action"], h["count"]) for h in params["heals"]] == [
        ("reconcile.gateway_grants", 2),
        ("reconcile.registration", 2),
    ]
    assert params["heals"][0]["label"]["en"] == "Gateway's grants repaired"
    assert notification.link == f"/o/{nhn.orgnr}/audit/"


def test_a_heal_that_recurs_is_told_once_an_hour_and_a_new_kind_at_once(
    people: dict[str, User], nhn: Organisation, settings: Any
) -> None:
    """A gateway that keeps drifting is healed every 10 s; its operators hear of each kind of
    heal once per ``RECONCILER_HEAL_NOTIFY_SECONDS``, and of a kind they have not heard of at
    once."""
    settings.RECONCILER_HEAL_NOTIFY_SECONDS = 3600

    _heals_notify(Report(heals=["reconcile.gateway_grants"] * 3))
    _heals_notify(Report(heals=["reconcile.gateway_grants"]))
    _heals_notify(Report(heals=["reconcile.gateway_grants", "reconcile.registration"]))

    notices = [n.notice.params for n in told(people["nhn_operator"], "reconciler_healed")]
    assert sorted((p["total"], [h["action"] for h in p["heals"]]) for p in notices) == [
        (1, ["reconcile.registration"]),
        (3, ["reconcile.gateway_grants"]),
    ]

    # An hour on, the recurring kind is told again.
    Notice.objects.filter(kind="reconciler_healed").update(
        created_at=timezone.now() - datetime.timedelta(seconds=3601)
    )
    _heals_notify(Report(heals=["reconcile.gateway_grants"]))
    assert len(told(people["nhn_operator"], "reconciler_healed")) == 3


def test_what_the_notice_says_is_written_in_the_causes_transaction(world: World) -> None:
    def suspend_then_fail() -> None:
        with transaction.atomic():
            services.vendor_suspend(
                vendor=world.vendor, actor=world.people["nhn_operator"], reason="Unpaid"
            )
            assert told(world.people["vendor_admin"], "vendor_suspended")
            raise RuntimeError("the change is rolled back")

    with pytest.raises(RuntimeError):
        suspend_then_fail()

    assert told(world.people["vendor_admin"]) == []
