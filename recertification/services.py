"""Writes of recertification: a kommune admin confirms a vendor's access again, and the daily
check revokes what lapsed and reminds the kommune's admins before it does.

Both go through the one revocation path of the orders app (``orders.services.grants_revoke``):
the grants are revoked with their reason in the same transaction, the gateway closes them after
COMMIT and a provisioning job per client narrows the scope at the authorization server.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import audit_event_record
from notifications.models import Notice
from notifications.services import notifications_batched, notify
from orders.models import Grant
from orders.services import grants_revoke
from recertification.models import Recertification
from recertification.selectors import lapses_on as grant_lapses_on
from recertification.selectors import local_day, may_confirm, months_later, pairs_due
from tenants.models import Organisation, Role

if TYPE_CHECKING:
    from django.contrib.auth.models import User

#: Who the audit trail names for what the daily check does.
SYSTEM_LABEL = "system:recertification"
#: At most this many accesses are listed in a notification; the rest are counted.
ITEMS_LISTED = 10


def _person(user: User) -> str:
    return user.get_full_name() or user.get_username()


def _locked(kommune: Organisation, vendor: Organisation) -> Recertification:
    """The kommune's recertification of the vendor, made if missing, locked until COMMIT: a
    confirmation and a lapse of the same pair wait for each other, so a lapse never revokes
    what a confirmation that committed first had confirmed."""
    Recertification.objects.bulk_create(
        [Recertification(kommune=kommune, vendor=vendor)], ignore_conflicts=True
    )
    return (
        Recertification.objects.select_for_update(of=("self",))
        .select_related("confirmed_by")
        .get(kommune=kommune, vendor=vendor)
    )


def _snapshot(row: Recertification) -> dict[str, Any]:
    return {
        "vendor": row.vendor.orgnr,
        "confirmed_at": row.confirmed_at.isoformat() if row.confirmed_at else None,
        "confirmed_by": _person(row.confirmed_by) if row.confirmed_by else None,
    }


def _items(grants: list[Grant]) -> list[dict[str, Any]]:
    """The accesses as the notification templates list them (``emails/_items.txt``)."""
    return [
        {
            "service": {"nb": grant.service.name_nb, "en": grant.service.name_en},
            "access": grant.access,
        }
        for grant in grants[:ITEMS_LISTED]
    ]


# --- Confirming -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Confirmed:
    recertification: Recertification
    confirmed: list[Grant]
    revoked: list[Grant]
    #: The day the confirmed access lapses next, unless confirmed again before.
    lapses_on: datetime.date

    @property
    def confirmed_ids(self) -> list[Any]:
        return [grant.pk for grant in self.confirmed]

    @property
    def revoked_ids(self) -> list[Any]:
        return [grant.pk for grant in self.revoked]


@transaction.atomic
def recertification_confirm(
    *,
    kommune: Organisation,
    vendor: Organisation,
    actor: User,
    not_confirmed: Collection[Any] = (),
    now: datetime.datetime | None = None,
) -> Confirmed:
    """A kommune admin confirms that ``vendor`` keeps its live access in ``kommune``: every one
    of its grants there starts its clock again. The grants named in ``not_confirmed`` (ids) are
    revoked instead, with that reason. PermissionDenied for anyone but the kommune's admins;
    ValidationError when the vendor holds no live access there, or ``not_confirmed`` names a
    grant that is not one of them. ``now`` is for tests that move the clock."""
    if not may_confirm(actor, kommune):
        raise PermissionDenied(
            _("Only an administrator of %(kommune)s confirms its vendors' access.")
            % {"kommune": kommune.name}
        )
    moment = now or timezone.now()
    row = _locked(kommune, vendor)
    live = list(
        Grant.objects.live()
        .filter(kommune=kommune, client__vendor=vendor)
        .select_related("service")
        .order_by("pk")
    )
    if not live:
        raise ValidationError(
            {
                "vendor": _("%(vendor)s has no access in %(kommune)s to confirm.")
                % {"vendor": vendor.name, "kommune": kommune.name}
            }
        )
    declined = {str(pk) for pk in not_confirmed}
    unknown = declined - {str(grant.pk) for grant in live}
    if unknown:
        raise ValidationError(
            {
                "not_confirmed": _(
                    "Some of the chosen accesses are not live accesses of %(vendor)s in "
                    "%(kommune)s. Reload the page."
                )
                % {"vendor": vendor.name, "kommune": kommune.name}
            }
        )
    before = _snapshot(row)
    row.confirmed_at = moment
    row.confirmed_by = actor
    row.save(update_fields=["confirmed_at", "confirmed_by"])
    kept = [grant for grant in live if str(grant.pk) not in declined]
    next_lapse = months_later(local_day(moment), settings.RECERTIFICATION_MONTHS)
    audit_event_record(
        actor=actor,
        action="recertification.confirmed",
        target=row,
        organisation=kommune,
        before=before,
        after={
            **_snapshot(row),
            "confirmed": [str(grant.pk) for grant in kept],
            "not_confirmed": sorted(declined),
            "lapses_on": next_lapse.isoformat(),
        },
    )
    revoked: list[Grant] = []
    if declined:
        revoked = grants_revoke(
            Grant.objects.filter(pk__in=[grant.pk for grant in live if str(grant.pk) in declined]),
            actor=actor,
            code="recertification_declined",
            params={"person": _person(actor), "kommune": kommune.name, "vendor": vendor.name},
        )
    return Confirmed(recertification=row, confirmed=kept, revoked=revoked, lapses_on=next_lapse)


# --- The daily check --------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """What one check did: vendors whose access lapsed (somewhere), grants revoked, reminders
    written."""

    lapsed_vendors: int = 0
    lapsed_grants: int = 0
    reminders: int = 0


def recertifications_check(*, now: datetime.datetime | None = None) -> Checked:
    """Revoke the grants whose recertification lapsed (``now``'s day is their lapse day or
    later) and remind the kommune's admins of the vendors due within the reminder days
    (``RECERTIFICATION_REMINDER_DAYS``), each reminder once per lapse day. Idempotent: run again
    it finds nothing more to do. Run by beat; tests pass a later ``now`` to move the clock."""
    moment = now or timezone.now()
    today = local_day(moment)
    vendors = grants = 0
    for pair in pairs_due(Grant.objects.all(), today=today, until=today):
        revoked = _pair_lapse(kommune_id=pair.kommune_id, vendor_id=pair.vendor_id, today=today)
        if revoked:
            vendors += 1
            grants += revoked
    return Checked(lapsed_vendors=vendors, lapsed_grants=grants, reminders=_remind(today=today))


@transaction.atomic
def _pair_lapse(*, kommune_id: Any, vendor_id: Any, today: datetime.date) -> int:
    """Revoke the vendor's grants in the kommune that lapsed by ``today``, in a transaction of
    their own; tell the vendor's admins. Returns how many it revoked."""
    kommune = Organisation.objects.get(pk=kommune_id)
    vendor = Organisation.objects.get(pk=vendor_id)
    row = _locked(kommune, vendor)  # read again under the lock: a confirmation may have come
    live = (
        Grant.objects.live()
        .filter(kommune=kommune, client__vendor=vendor)
        .select_related("service")
        .order_by("service__position", "access", "pk")
    )
    lapsing = [
        grant for grant in live if grant_lapses_on(grant.created_at, row.confirmed_at) <= today
    ]
    if not lapsing:
        return 0
    revoked = grants_revoke(
        Grant.objects.filter(pk__in=[grant.pk for grant in lapsing]),
        actor=None,
        code="recertification_lapsed",
        params={"kommune": kommune.name, "vendor": vendor.name},
    )
    if not revoked:
        return 0
    ids = {grant.pk for grant in revoked}
    lapsed = [grant for grant in lapsing if grant.pk in ids]
    audit_event_record(
        actor=None,
        actor_label=SYSTEM_LABEL,
        action="recertification.lapsed",
        target=row,
        organisation=kommune,
        after={
            **_snapshot(row),
            "lapsed_on": today.isoformat(),
            "grants": [str(grant.pk) for grant in lapsed],
        },
    )
    notify(
        kind="recertification_lapsed",
        organisation=vendor,
        roles=[Role.VENDOR_ADMIN],
        params={
            "kommune": kommune.name,
            "vendor": vendor.name,
            "total": len(lapsed),
            "items": _items(lapsed),
            "more": max(0, len(lapsed) - ITEMS_LISTED),
        },
        link="orders:dashboard",
    )
    return len(lapsed)


def reminder_key(*, kommune_id: Any, vendor_id: Any, lapses_on: datetime.date, days: int) -> str:
    """A reminder is sent once per vendor, kommune, lapse day and reminder: a confirmation
    moves the lapse day, and the reminders of the next period are new."""
    return f"recertification:{kommune_id}:{vendor_id}:{lapses_on.isoformat()}:{days}"


def _remind(*, today: datetime.date) -> int:
    """Remind the kommune's admins of each vendor whose access lapses within the reminder days:
    the reminder of the fewest days that still lies ahead (a check that first sees a vendor 5
    days before sends the 7-day reminder only). Returns how many were written."""
    days = settings.RECERTIFICATION_REMINDER_DAYS
    if not days:
        return 0
    due = [
        pair
        for pair in pairs_due(
            Grant.objects.all(), today=today, until=today + datetime.timedelta(max(days))
        )
        if pair.lapses_on > today
    ]
    if not due:
        return 0
    keys = {}
    for pair in due:
        left = (pair.lapses_on - today).days
        reminder = min(day for day in days if left <= day)
        keys[pair] = reminder_key(
            kommune_id=pair.kommune_id,
            vendor_id=pair.vendor_id,
            lapses_on=pair.lapses_on,
            days=reminder,
        )
    sent = set(Notice.objects.filter(once__in=keys.values()).values_list("once", flat=True))
    todo = [pair for pair in due if keys[pair] not in sent]
    if not todo:
        return 0
    organisations = Organisation.objects.in_bulk(
        {pair.kommune_id for pair in todo} | {pair.vendor_id for pair in todo}
    )
    with transaction.atomic(), notifications_batched():
        for pair in todo:
            kommune, vendor = organisations[pair.kommune_id], organisations[pair.vendor_id]
            notify(
                kind="recertification_due",
                organisation=kommune,
                roles=[Role.KOMMUNE_ADMIN],
                params={
                    "kommune": kommune.name,
                    "vendor": vendor.name,
                    "date": pair.lapses_on.isoformat(),
                    "days": (pair.lapses_on - today).days,
                    "grants": pair.grants,
                    "months": settings.RECERTIFICATION_MONTHS,
                },
                link="recertification:page",
                once=keys[pair],
            )
    return Notice.objects.filter(once__in=[keys[pair] for pair in todo]).count()
