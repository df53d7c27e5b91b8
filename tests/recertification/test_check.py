"""The daily check revokes what its kommune did not confirm again in time, and reminds the
kommune's admins 30 and 7 days before, once each; a kommune admin's confirmation starts every
clock of the vendor's grants there again. Time moves by the ``now`` each call is given."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone, translation

from audit.models import AuditEvent
from notifications.models import Notification
from orders.models import Grant, GrantStatus, ProvisioningJob
from recertification import services
from recertification.models import Recertification
from recertification.selectors import months_later, pairs_due, vendor_due
from tests.conftest import World
from tests.factories import GrantFactory, MembershipFactory, revoke_reason
from tests.recertification.conftest import at, days_before, lapse_day

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


def check(when: datetime.datetime) -> services.Checked:
    return services.recertifications_check(now=when)


def live(grant: Grant) -> bool:
    grant.refresh_from_db()
    return grant.status in (GrantStatus.PENDING, GrantStatus.ACTIVE)


def reminders(user: object) -> list[Notification]:
    return list(
        Notification.objects.filter(recipient=user, notice__kind="recertification_due")
        .select_related("notice")
        .order_by("created_at")
    )


def test_the_grants_lapse_on_their_day_revoked_through_provisioning_with_the_reason(
    world: World,
) -> None:
    grants = world.vendor_grants("patient.read,observation.write")
    day = lapse_day(grants[0])
    assert day == months_later(timezone.localdate(grants[0].created_at), 12)

    assert check(days_before(day, 1)).lapsed_grants == 0  # (the 7-day reminder goes out)
    assert all(live(grant) for grant in grants)

    done = check(at(day, hour=0))

    assert done == services.Checked(lapsed_vendors=1, lapsed_grants=2)
    for grant in grants:
        grant.refresh_from_db()
        assert grant.status == GrantStatus.REVOKING
        assert grant.revoke_reason_code == "recertification_lapsed"
        assert grant.revoked_by is None
        with translation.override("en"):
            assert revoke_reason(grant) == (
                f"{world.kommune.name} did not confirm the access of {world.vendor.name} "
                "again in time, so it lapsed."
            )
        with translation.override("nb"):
            assert world.vendor.name in revoke_reason(grant)
            assert "bekreftet" in revoke_reason(grant)
    assert ProvisioningJob.objects.filter(
        client=world.client, status=ProvisioningJob.Status.PENDING
    ).exists()
    [lapse] = AuditEvent.objects.filter(action="recertification.lapsed")
    assert lapse.actor_label == "system:recertification"
    assert lapse.organisation_orgnr == world.kommune.orgnr
    assert lapse.after is not None
    assert sorted(lapse.after["grants"]) == sorted(str(grant.pk) for grant in grants)
    assert lapse.after["vendor"] == world.vendor.orgnr
    assert AuditEvent.objects.filter(action="grant.revoked").count() == 2
    [told] = Notification.objects.filter(notice__kind="recertification_lapsed")
    assert told.recipient == world.people["vendor_admin"]
    assert told.notice.params["total"] == 2

    # Idempotent: the next run, the same day or later, finds nothing more to do.
    assert check(at(day, hour=13)) == services.Checked()
    assert check(at(day + DAY)) == services.Checked()
    assert AuditEvent.objects.filter(action="recertification.lapsed").count() == 1
    assert Notification.objects.filter(notice__kind="recertification_lapsed").count() == 1


def test_only_the_grants_whose_day_came_lapse(world: World) -> None:
    [old] = world.vendor_grants("patient.read")
    Grant.objects.filter(pk=old.pk).update(created_at=old.created_at - datetime.timedelta(90))
    [new] = world.vendor_grants("observation.write")
    other = GrantFactory(client=world.other_client, kommune=world.other_kommune)

    done = check(at(lapse_day(old)))

    assert done.lapsed_grants == 1
    assert not live(old)
    assert live(new)
    assert live(other)
    due = vendor_due(kommune=world.kommune, vendor=world.vendor, today=lapse_day(old))
    assert due is not None
    assert due.lapses_on == lapse_day(new)


def test_confirming_starts_the_clock_of_every_grant_of_the_vendor_again(world: World) -> None:
    [older] = world.vendor_grants("patient.read")
    Grant.objects.filter(pk=older.pk).update(created_at=older.created_at - datetime.timedelta(150))
    [newer] = world.vendor_grants("observation.write")
    day = lapse_day(older)
    confirmed_on = day - datetime.timedelta(days=10)

    outcome = services.recertification_confirm(
        kommune=world.kommune,
        vendor=world.vendor,
        actor=world.people["kommune_admin"],
        now=at(confirmed_on),
    )

    next_day = months_later(confirmed_on, 12)
    assert outcome.lapses_on == next_day
    assert {grant.pk for grant in outcome.confirmed} == {older.pk, newer.pk}
    assert outcome.revoked == []
    due = vendor_due(kommune=world.kommune, vendor=world.vendor, today=confirmed_on)
    assert due is not None
    assert due.confirmed_by == world.people["kommune_admin"]
    assert [grant.lapses_on for grant in due.grants] == [next_day, next_day]
    assert check(at(day)) == services.Checked()  # the old day passes: nothing lapses
    assert check(at(next_day - DAY)).lapsed_grants == 0
    assert live(older)
    assert live(newer)
    assert check(at(next_day)).lapsed_grants == 2
    [event] = AuditEvent.objects.filter(action="recertification.confirmed")
    assert event.actor == world.people["kommune_admin"]
    assert event.organisation_orgnr == world.kommune.orgnr
    assert event.before is not None
    assert event.after is not None
    assert event.before["confirmed_at"] is None
    assert event.after["lapses_on"] == next_day.isoformat()
    assert sorted(event.after["confirmed"]) == sorted([str(older.pk), str(newer.pk)])


def test_grants_left_out_of_a_confirmation_are_revoked_with_who_left_them_out(
    world: World,
) -> None:
    kept, left_out = world.vendor_grants("patient.read,observation.write")

    outcome = services.recertification_confirm(
        kommune=world.kommune,
        vendor=world.vendor,
        actor=world.people["kommune_admin"],
        not_confirmed=[str(left_out.pk)],
    )

    assert [grant.pk for grant in outcome.confirmed] == [kept.pk]
    assert [grant.pk for grant in outcome.revoked] == [left_out.pk]
    assert live(kept)
    left_out.refresh_from_db()
    assert left_out.status == GrantStatus.REVOKING
    assert left_out.revoke_reason_code == "recertification_declined"
    assert left_out.revoked_by == world.people["kommune_admin"]
    person = world.people["kommune_admin"].get_full_name() or world.people["kommune_admin"].username
    with translation.override("en"):
        assert revoke_reason(left_out).startswith(f"Not confirmed again by {person}")
    [event] = AuditEvent.objects.filter(action="recertification.confirmed")
    assert event.after is not None
    assert event.after["not_confirmed"] == [str(left_out.pk)]


@pytest.mark.parametrize("who", ["kommune_reader", "other_kommune_admin", "nhn_operator"])
def test_only_an_admin_of_the_kommune_confirms(world: World, who: str) -> None:
    [grant] = world.vendor_grants("patient.read")

    with pytest.raises(PermissionDenied):
        services.recertification_confirm(
            kommune=world.kommune, vendor=world.vendor, actor=world.people[who]
        )

    assert not Recertification.objects.filter(confirmed_at__isnull=False).exists()
    assert not AuditEvent.objects.filter(action="recertification.confirmed").exists()


def test_a_confirmation_of_nothing_or_of_someone_elses_grant_is_refused(world: World) -> None:
    [grant] = world.vendor_grants("patient.read")
    admin = world.people["kommune_admin"]

    with pytest.raises(ValidationError) as nothing:
        services.recertification_confirm(
            kommune=world.kommune, vendor=world.other_vendor, actor=admin, not_confirmed=[]
        )
    assert "vendor" in nothing.value.message_dict
    foreign = GrantFactory(client=world.other_client, kommune=world.kommune)
    with pytest.raises(ValidationError) as elsewhere:
        services.recertification_confirm(
            kommune=world.kommune,
            vendor=world.vendor,
            actor=admin,
            not_confirmed=[str(foreign.pk)],
        )
    assert "not_confirmed" in elsewhere.value.message_dict

    assert live(grant)
    assert not Recertification.objects.filter(confirmed_at__isnull=False).exists()
    assert not AuditEvent.objects.filter(action="recertification.confirmed").exists()


def test_the_kommunes_admins_are_reminded_30_and_7_days_before_once_each(world: World) -> None:
    [grant] = world.vendor_grants("patient.read")
    second_admin = MembershipFactory(organisation=world.kommune, role="kommune_admin").user
    day = lapse_day(grant)

    assert check(days_before(day, 31)).reminders == 0
    assert check(days_before(day, 30)).reminders == 1
    assert check(days_before(day, 30)).reminders == 0
    assert check(days_before(day, 20)).reminders == 0
    assert check(days_before(day, 7)).reminders == 1
    assert check(days_before(day, 6)).reminders == 0
    assert check(days_before(day, 1)).reminders == 0

    for admin in (world.people["kommune_admin"], second_admin):
        got = reminders(admin)
        assert [n.notice.params["days"] for n in got] == [30, 7]
        assert {n.notice.params["date"] for n in got} == {day.isoformat()}
        assert all(n.notice.params["vendor"] == world.vendor.name for n in got)
        assert all(n.link == f"/o/{world.kommune.orgnr}/recertification/" for n in got)
    for nobody in ("kommune_reader", "other_kommune_admin", "vendor_admin", "nhn_operator"):
        assert reminders(world.people[nobody]) == []


def test_a_check_that_first_sees_a_vendor_late_sends_only_the_nearest_reminder(
    world: World,
) -> None:
    [grant] = world.vendor_grants("patient.read")
    day = lapse_day(grant)

    assert check(days_before(day, 5)).reminders == 1
    assert check(days_before(day, 4)).reminders == 0

    [reminder] = reminders(world.people["kommune_admin"])
    assert reminder.notice.params["days"] == 5
    assert reminder.notice.once is not None
    assert reminder.notice.once.endswith(":7")


def test_a_confirmation_moves_the_reminders_to_its_next_period(world: World) -> None:
    [grant] = world.vendor_grants("patient.read")
    day = lapse_day(grant)
    assert check(days_before(day, 30)).reminders == 1
    confirmed_on = day - datetime.timedelta(days=20)
    services.recertification_confirm(
        kommune=world.kommune,
        vendor=world.vendor,
        actor=world.people["kommune_admin"],
        now=at(confirmed_on),
    )
    next_day = months_later(confirmed_on, 12)

    assert check(days_before(day, 7)).reminders == 0
    assert check(at(day)) == services.Checked()
    assert check(days_before(next_day, 30)).reminders == 1
    assert check(days_before(next_day, 7)).reminders == 1

    dates = [n.notice.params["date"] for n in reminders(world.people["kommune_admin"])]
    assert dates == [day.isoformat(), next_day.isoformat(), next_day.isoformat()]


def test_a_confirmation_that_commits_before_the_lapse_is_read_by_it(world: World) -> None:
    """The check lists what is due, then lapses each vendor under the lock of its
    recertification, reading the confirmation again: one that came in between wins."""
    [grant] = world.vendor_grants("patient.read")
    day = lapse_day(grant)
    [pair] = pairs_due(Grant.objects.all(), today=day, until=day)
    services.recertification_confirm(
        kommune=world.kommune,
        vendor=world.vendor,
        actor=world.people["kommune_admin"],
        now=at(day, hour=0),
    )

    revoked = services._pair_lapse(kommune_id=pair.kommune_id, vendor_id=pair.vendor_id, today=day)

    assert revoked == 0
    assert live(grant)
