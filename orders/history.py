"""Who had access when: the question the API (``/api/v1/access-history/``), the pages and their
CSV export all ask through ``access_history``.

A grant *had access* from the moment it became active (the authorization server accepted its
scope, and the gateway lets it through from then on) until the moment it stopped being active
(its revocation was decided, or the client's keys all expired): the half-open interval
``[started_at, ended_at)`` of a ``GrantPeriod``. At the very moment a period ends the grant no
longer has access; at the moment it starts it has. The gateway follows each change within
seconds (the revocation's own figure is ``make bench``'s ``revocation_p95_s``).

The periods are written by the functions that change a grant's status, in their transaction
(``orders.services.grant_periods_open``/``grant_periods_close``), and were rebuilt from the
audit trail for the grants that existed before (``orders 0013_fill_grant_periods``). So the
answer comes from the history, not from the grants' current status: a grant revoked and granted
again is two grants, each with its own periods, and a grant whose keys expired and came back
has a gap between two periods.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from orders.models import Delegation, Grant, GrantPeriod, Instruction
from orders.policy import grant_reason_text
from portal.exports import csv_cell

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


@dataclass(frozen=True)
class HistoryQuery:
    """What is asked: a moment (``at``) or a period (``start``, ``end``: either may be open),
    narrowed to a kommune, a vendor, a client (its id or its client_id), a service or an
    access. Neither a moment nor a period: now. Ids, not rows: a question holds no model
    instance, so none is kept alive by what asked it (a form's reference cycles)."""

    kommune_id: uuid.UUID | None = None
    vendor_id: uuid.UUID | None = None
    client: uuid.UUID | str | None = None
    service_id: uuid.UUID | None = None
    access: str = ""
    at: datetime.datetime | None = None
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None

    @property
    def is_range(self) -> bool:
        return self.at is None and (self.start is not None or self.end is not None)

    def moment(self) -> datetime.datetime:
        """The moment asked about, for a question that asks no period."""
        return self.at or timezone.now()


#: The columns a row of the history shows: the period's own, and those of its kommune, vendor,
#: client and service.
_SHOWN = (
    *(f.name for f in GrantPeriod._meta.concrete_fields),
    "kommune__orgnr",
    "kommune__name",
    "vendor__orgnr",
    "vendor__name",
    "client__name",
    "client__client_id",
    "client__environment",
    "service__code",
    "service__position",
    "service__name_nb",
    "service__name_en",
)
_REVOCATION = ("id", "revoke_reason", "revoke_reason_code", "revoke_reason_params")
_INSTRUCTION = ("id", "kommune_id", "version", "signed_at", "signed_by_name")
_DELEGATION = ("id", "valid_from", "valid_until", "revoked_at")


def access_history(*, user: User | AnonymousUser, query: HistoryQuery) -> QuerySet[GrantPeriod]:
    """The periods of access the user may see that answer ``query``: those that held access at
    its moment, or at any moment of its period (each with its own interval). NHN staff see
    every kommune, a kommune's members their kommune, a vendor's its clients; anyone else
    nothing. Unordered: the caller sorts."""
    periods = GrantPeriod.objects.visible_to(user)
    if query.is_range:
        periods = periods.overlapping(query.start, query.end)
    else:
        periods = periods.at(query.moment())
    if query.kommune_id is not None:
        periods = periods.filter(kommune_id=query.kommune_id)
    if query.vendor_id is not None:
        periods = periods.filter(vendor_id=query.vendor_id)
    if isinstance(query.client, uuid.UUID):
        periods = periods.filter(client_id=query.client)
    elif query.client:
        periods = periods.filter(client__client_id=query.client)
    if query.service_id is not None:
        periods = periods.filter(service_id=query.service_id)
    if query.access:
        periods = periods.filter(access=query.access)
    # Joined: what every row shows, and only that (a page of a kommune's history is a hundred
    # rows of five models each: their unused columns cost more to read than the query).
    # The rest comes in a query each for the whole page: joined too, the statement's planning
    # (nine tables) cost more than running it.
    return (
        periods.select_related("kommune", "vendor", "client", "service")
        .only(*_SHOWN)
        .prefetch_related(
            Prefetch("grant", Grant.objects.only(*_REVOCATION)),
            Prefetch("instruction", Instruction.objects.only(*_INSTRUCTION)),
            Prefetch("delegation", Delegation.objects.only(*_DELEGATION)),
            "approved_by",
        )
    )


# --- CSV ----------------------------------------------------------------------------------------

#: Rows read from the database at a time while a CSV streams: memory stays flat however long.
CSV_CHUNK = 2000


def _iso(value: datetime.datetime | datetime.date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).isoformat()
    return value.isoformat()


def person_name(user: Any) -> str:
    """A person as the history shows them: their name, else their login."""
    if user is None:
        return ""
    return str(user.get_full_name() or user.get_username())


def revoke_reason(period: GrantPeriod) -> str:
    """Why a period its revocation ended was revoked, in the reader's language."""
    if period.end != GrantPeriod.End.REVOKED:
        return ""
    grant = period.grant
    return grant_reason_text(
        grant.revoke_reason_code, grant.revoke_reason_params, grant.revoke_reason
    )


def csv_header() -> list[str]:
    return [
        "kommune",
        "kommune_name",
        "vendor",
        "vendor_name",
        "client",
        "client_name",
        "client_id",
        "environment",
        "service",
        "access",
        "scope",
        "service_codes",
        "started_at",
        "ended_at",
        "ended_by",
        "revoke_reason",
        "approval",
        "approved_by",
        "instruction_version",
        "instruction_signed_at",
        "delegation",
        "delegation_valid_from",
        "delegation_valid_until",
        "grant",
    ]


def csv_row(period: GrantPeriod) -> list[str]:
    instruction, delegation = period.instruction, period.delegation
    return [
        csv_cell(value)
        for value in (
            period.kommune.orgnr,
            period.kommune.name,
            period.vendor.orgnr,
            period.vendor.name,
            period.client_id,
            period.client.name,
            period.client.client_id,
            period.client.environment,
            period.service.code,
            period.access,
            period.scope,
            " ".join(period.service_codes),
            _iso(period.started_at),
            _iso(period.ended_at),
            period.end,
            revoke_reason(period),
            period.approval,
            person_name(period.approved_by),
            instruction.version if instruction else "",
            _iso(instruction.signed_at) if instruction else "",
            delegation.pk if delegation else "",
            _iso(delegation.valid_from) if delegation else "",
            _iso(delegation.valid_until) if delegation else "",
            period.grant_id,
        )
    ]


def csv_records(periods: QuerySet[GrantPeriod]) -> Iterator[list[str]]:
    """The header, then the periods' rows, read in chunks: for a streaming download
    (``portal.exports.csv_streaming_response``), whose memory does not grow with the rows."""
    yield csv_header()
    rows: Iterable[GrantPeriod] = periods.iterator(chunk_size=CSV_CHUNK)
    for period in rows:
        yield csv_row(period)


def csv_filename(query: HistoryQuery, scope: str = "") -> str:
    """``access-history[-<scope>]-<moment or period>.csv``, in the portal's time zone."""
    stamp = "%Y%m%dT%H%M"
    if query.is_range:
        start = timezone.localtime(query.start).strftime(stamp) if query.start else "start"
        end = timezone.localtime(query.end).strftime(stamp) if query.end else "now"
        when = f"{start}-{end}"
    else:
        when = timezone.localtime(query.moment()).strftime(stamp)
    parts = ["access-history", scope, when]
    return "-".join(part for part in parts if part) + ".csv"


def describe(query: HistoryQuery) -> str:
    """The question in words, for the page's heading of the results."""
    if not query.is_range:
        return _("Access at %(moment)s") % {"moment": _when(query.moment())}
    if query.start is not None and query.end is not None:
        return _("Access at some time from %(start)s to %(end)s") % {
            "start": _when(query.start),
            "end": _when(query.end),
        }
    if query.start is not None:
        return _("Access at some time since %(start)s") % {"start": _when(query.start)}
    return _("Access at some time before %(end)s") % {"end": _when(query.end or query.moment())}


def _when(moment: datetime.datetime) -> str:
    local = timezone.localtime(moment)
    return f"{date_format(local, 'DATE_FORMAT')} {local:%H:%M}"
