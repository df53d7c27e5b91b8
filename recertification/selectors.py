"""Reads of recertification: when each vendor's access in a kommune lapses.

The clock counts days in the portal's time zone. A grant's clock starts on the day it was
approved (``Grant.created_at``) or on the day its kommune last confirmed its vendor, whichever is
later, and the grant lapses ``RECERTIFICATION_MONTHS`` months after that day: on that day the
daily check revokes it. A vendor's access in a kommune is due on the day its first grant lapses;
confirming it starts every one of its grants' clocks again.
"""

from __future__ import annotations

import calendar
import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from orders.models import Grant, GrantQuerySet
from recertification.models import Recertification
from tenants.models import Membership, Organisation, Role


def months_later(day: datetime.date, months: int) -> datetime.date:
    """The same day ``months`` later (months earlier when negative), or the month's last day
    when it is shorter (31 January + 1 month is 28 or 29 February)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return datetime.date(year, month + 1, min(day.day, last))


def local_day(moment: datetime.datetime) -> datetime.date:
    return timezone.localdate(moment)


def lapses_on(
    approved_at: datetime.datetime,
    confirmed_at: datetime.datetime | None,
    *,
    months: int | None = None,
) -> datetime.date:
    """The day a grant approved at ``approved_at`` lapses, its kommune having last confirmed its
    vendor at ``confirmed_at`` (None: never)."""
    start = approved_at if confirmed_at is None else max(approved_at, confirmed_at)
    return months_later(
        local_day(start), settings.RECERTIFICATION_MONTHS if months is None else months
    )


# --- Who sees and who confirms ----------------------------------------------------------------


def recertification_kommuner(user: Any) -> QuerySet[Organisation]:
    """The kommuner whose recertification ``user`` may read: their own (admins and readers);
    every kommune for NHN staff. Vendors read none: it is the kommune's decision."""
    roles = Membership.objects.roles_of(user)
    kommuner = Organisation.objects.kommuner()
    if roles.nhn_staff:
        return kommuner
    own = [
        organisation_id
        for organisation_id, held in roles.by_organisation.items()
        if held & {Role.KOMMUNE_ADMIN, Role.KOMMUNE_READER}
    ]
    return kommuner.filter(pk__in=own)


def may_confirm(user: Any, kommune: Organisation) -> bool:
    """Only the kommune's own admins confirm (not NHN: the consent is the kommune's)."""
    return Role.KOMMUNE_ADMIN in Membership.objects.roles_of(user).in_(kommune)


# --- What is due when -------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantDue:
    grant: Grant
    lapses_on: datetime.date


@dataclass(frozen=True)
class VendorDue:
    """One vendor's live access in one kommune, and when it must be confirmed again."""

    kommune: Organisation
    vendor: Organisation
    confirmed_at: datetime.datetime | None
    confirmed_by: Any  # User | None
    grants: list[GrantDue]
    today: datetime.date

    @property
    def lapses_on(self) -> datetime.date:
        """The day its first grant lapses unless the kommune confirms the vendor before."""
        return min(due.lapses_on for due in self.grants)

    @property
    def days_left(self) -> int:
        return (self.lapses_on - self.today).days

    @property
    def state(self) -> str:
        """``lapsed`` (due today or before: the next check revokes it), ``due`` (within the
        first reminder's days) or ``current``."""
        if self.days_left <= 0:
            return "lapsed"
        reminders = settings.RECERTIFICATION_REMINDER_DAYS
        if reminders and self.days_left <= max(reminders):
            return "due"
        return "current"

    @property
    def confirmed_by_name(self) -> str:
        person = self.confirmed_by
        if person is None:
            return ""
        return str(person.get_full_name() or person.get_username())


Pair = tuple[Any, Any]  # (kommune id, vendor id)


@dataclass(frozen=True)
class PairDue:
    """A kommune and vendor with live grants, and the day the first of them lapses: what the
    lists sort and page by before the grants of a page are read."""

    kommune_id: Any
    vendor_id: Any
    lapses_on: datetime.date
    grants: int


def pairs_due(
    grants: GrantQuerySet, *, today: datetime.date, until: datetime.date | None = None
) -> list[PairDue]:
    """Each kommune and vendor among the live ``grants``, soonest due first; only those due by
    ``until`` when given. One grouped query and one for the confirmations."""
    grouped = (
        grants.live()
        .order_by()
        .values("kommune_id", "client__vendor_id", "kommune__name", "client__vendor__name")
        .annotate(first=Min("created_at"), count=Count("pk"))
    )
    if until is not None:
        # The first grant's approval bounds the day from below (a confirmation only moves it
        # later), so this keeps every pair that can be due by ``until``: with days to spare for
        # the months' uneven lengths (31 January + 1 month is 28 February), then exactly below.
        bound = months_later(until, -settings.RECERTIFICATION_MONTHS) + datetime.timedelta(4)
        grouped = grouped.filter(
            first__lt=timezone.make_aware(datetime.datetime.combine(bound, datetime.time.min))
        )
    rows = list(grouped)
    confirmed = confirmations((row["kommune_id"], row["client__vendor_id"]) for row in rows)
    found: list[tuple[tuple[str, str], PairDue]] = []
    for row in rows:
        pair = (row["kommune_id"], row["client__vendor_id"])
        record = confirmed.get(pair)
        day = lapses_on(row["first"], record.confirmed_at if record is not None else None)
        if until is None or day <= until:
            names = (row["kommune__name"], row["client__vendor__name"])
            found.append((names, PairDue(pair[0], pair[1], day, row["count"])))
    # Soonest first; on the same day by kommune, then vendor, by name.
    found.sort(key=lambda named: (named[1].lapses_on, *named[0], str(named[1].kommune_id)))
    return [due for _names, due in found]


def confirmations(pairs: Iterable[Pair]) -> dict[Pair, Recertification]:
    """The recertification rows of these kommuner and vendors, by pair."""
    wanted = set(pairs)
    if not wanted:
        return {}
    kommune_ids = {kommune for kommune, _vendor in wanted}
    vendor_ids = {vendor for _kommune, vendor in wanted}
    rows = Recertification.objects.filter(
        kommune_id__in=kommune_ids, vendor_id__in=vendor_ids
    ).select_related("confirmed_by")
    return {
        (row.kommune_id, row.vendor_id): row
        for row in rows
        if (row.kommune_id, row.vendor_id) in wanted
    }


def vendors_due(
    grants: GrantQuerySet, pairs: Sequence[PairDue], *, today: datetime.date
) -> list[VendorDue]:
    """The pairs with their live grants among ``grants``, each grant's lapse day, in the order
    of ``pairs``."""
    if not pairs:
        return []
    match = Q()
    for pair in pairs:
        match |= Q(kommune_id=pair.kommune_id, client__vendor_id=pair.vendor_id)
    rows = (
        grants.live()
        .filter(match)
        .select_related("kommune", "client__vendor", "service")
        .order_by("service__position", "access", "client__name", "pk")
    )
    by_pair: dict[Pair, list[Grant]] = {}
    for grant in rows:
        by_pair.setdefault((grant.kommune_id, grant.client.vendor_id), []).append(grant)
    confirmed = confirmations(by_pair)
    result = []
    for pair in pairs:
        held = by_pair.get((pair.kommune_id, pair.vendor_id))
        if not held:  # revoked since the pairs were read
            continue
        record = confirmed.get((pair.kommune_id, pair.vendor_id))
        at = record.confirmed_at if record is not None else None
        result.append(
            VendorDue(
                kommune=held[0].kommune,
                vendor=held[0].client.vendor,
                confirmed_at=at,
                confirmed_by=record.confirmed_by if record is not None else None,
                grants=[GrantDue(grant, lapses_on(grant.created_at, at)) for grant in held],
                today=today,
            )
        )
    return result


def vendor_due(
    *, kommune: Organisation, vendor: Organisation, today: datetime.date
) -> VendorDue | None:
    """One vendor's live access in one kommune (None when it holds none)."""
    grants = Grant.objects.filter(kommune=kommune, client__vendor=vendor)
    found = vendors_due(grants, [PairDue(kommune.pk, vendor.pk, today, 0)], today=today)
    return found[0] if found else None
