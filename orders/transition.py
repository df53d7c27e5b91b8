"""The EPJ transition register: per kommune its EPJ, whether it uses VKP today, the EPJ switch it
has agreed with its vendor, NHN's recommended path (``tenants.transition.epj_path``), and the risk
of losing VKP functionality at the switch.

The risk, from the webinar ("kommuner that have VKP and take a new EPJ into use lose VKP
functionality for a while, until the information services are available and the EPJ vendors use
them"), read precisely from the data:

- **At risk** are the kommuner that use VKP today (``uses_vkp`` is true) and have a planned switch,
  while at least one service they rely on is not active for them.
- **Relied on**: the services the kommune has asked for in production: an item of a delegation
  not revoked and not ended (one starting later counts), an order item of a production client not
  rejected or withdrawn, or a live production grant. A kommune that has asked for nothing yet
  relies on every service its new EPJ can use (VKP's functionality is what the services replace):
  the services for any EPJ, and the Epic-only ones when NHN has verified the new EPJ as Epic. An
  Epic-only service is never relied on when the new EPJ is not verified as Epic: it could not be
  active after the switch anyway.
- **Active for it**: at least one active grant of the service in the kommune, for a production
  client (the same measure as "onboarded" in the national overview). The test environment does not
  count: the loss of functionality is in production.
- Of the services not active, those that do not open in production by the switch date (no date,
  or a later one) **open after the switch**: they cannot be active in time whatever the kommune and
  its vendors do.

The register is at most one row per kommune of the country (357), so rows are computed in memory
and filtered, sorted and paged there; the queries are the same however many rows there are.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Q, QuerySet

from orders.models import (
    LIVE_GRANT_STATUSES,
    AccessRequestItem,
    DelegationItem,
    Grant,
    GrantStatus,
    ItemStatus,
    Service,
    ServiceAvailability,
)
from portal.exports import csv_cell
from tenants.models import Environment, Organisation
from tenants.transition import EpjPath, epj_path

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

PRODUCTION = Environment.PRODUCTION
PATH_COLOURS = {
    EpjPath.NEW_SERVICES: "success",
    EpjPath.INTEGRATE_VKP: "info",
    EpjPath.CONSIDER_VKP: "warning",
    EpjPath.VKP_UNKNOWN: "neutral",
    EpjPath.NO_SWITCH: "neutral",
}


@dataclass(frozen=True)
class RiskService:
    """A service as the risk needs it. Plain values, as the register's rows: models with their
    availabilities prefetched refer to each other, which leaves every page of the list to the
    cyclic garbage collector (``tests/portal/test_page_release.py``)."""

    pk: uuid.UUID
    code: str
    name: str
    epic_only: bool
    #: The day it opens in production; None while no day is set.
    opens: datetime.date | None


@dataclass(frozen=True)
class Risk:
    """What a VKP kommune with a planned switch relies on, and what of it is not active yet."""

    relied_on: tuple[RiskService, ...]
    not_active: tuple[RiskService, ...]
    opens_after_switch: tuple[RiskService, ...]
    #: The kommune has asked for nothing: ``relied_on`` is what its new EPJ can use.
    assumed: bool

    @property
    def at_risk(self) -> bool:
        return bool(self.not_active)


@dataclass(frozen=True)
class Epj:
    """A kommune's current or planned EPJ product, as the register shows it."""

    id: uuid.UUID
    name: str
    system_type: str
    is_epic: bool
    #: What the policy counts in production: NHN has verified it as Epic.
    verified_epic: bool
    vendor_orgnr: str
    vendor_name: str


@dataclass(frozen=True)
class RegisterRow:
    """One kommune of the register. Plain values, not models: the register reads every kommune
    at once, and building 357 organisations with their register entry and two products (and
    their vendors) cost ten times the query."""

    pk: uuid.UUID
    orgnr: str
    name: str
    number: str
    county_number: str
    county: str
    epj: Epj | None
    switch_to: Epj | None
    switch_date: datetime.date | None
    uses_vkp: bool | None
    path: EpjPath
    #: None when the risk does not apply: the kommune does not use VKP, or plans no switch.
    risk: Risk | None = None

    @property
    def at_risk(self) -> bool:
        return self.risk is not None and self.risk.at_risk

    @property
    def path_colour(self) -> str:
        """The path's Designsystemet tag colour (beside its words, never instead of them)."""
        return PATH_COLOURS[self.path]

    def codes(self, part: str) -> list[str]:
        """The codes of the risk's ``relied_on``, ``not_active`` or ``opens_after_switch``."""
        return [s.code for s in getattr(self.risk, part, ())] if self.risk else []


# --- Reading --------------------------------------------------------------------------------------

#: What the register reads of a kommune's current and planned EPJ (``Epj``'s fields, in order).
EPJ_FIELDS = (
    "id",
    "name",
    "system_type",
    "is_epic",
    "verified_at",
    "verified_is_epic",
    "vendor__orgnr",
    "vendor__name",
)
KOMMUNE_FIELDS = (
    "pk",
    "orgnr",
    "name",
    "kommune__number",
    "kommune__county_number",
    "kommune__county_name",
    "epj_switch_date",
    "uses_vkp",
)


def register_kommuner(user: User | AnonymousUser) -> QuerySet[Organisation]:
    """The kommuner whose rows ``user`` may read: every kommune for NHN staff, the kommune's own
    for its members, none for anyone else."""
    return Organisation.objects.visible_to(user).kommuner().order_by("name")


def _epj(values: tuple[Any, ...]) -> Epj | None:
    pk, name, system_type, is_epic, verified_at, verified_is_epic, orgnr, vendor = values
    if pk is None:
        return None
    return Epj(
        id=pk,
        name=name,
        system_type=system_type,
        is_epic=is_epic,
        verified_epic=verified_at is not None and verified_is_epic,
        vendor_orgnr=orgnr,
        vendor_name=vendor,
    )


def register_rows(kommuner: QuerySet[Organisation], *, on: datetime.date) -> list[RegisterRow]:
    """The register's rows for ``kommuner``, their risk as of the day ``on``."""
    fields = [
        *KOMMUNE_FIELDS,
        *(f"epj_product__{f}" for f in EPJ_FIELDS),
        *(f"epj_switch_product__{f}" for f in EPJ_FIELDS),
    ]
    rows = []
    for values in kommuner.values_list(*fields):
        pk, orgnr, name, number, county_number, county, switch_date, uses_vkp = values[:8]
        rows.append(
            RegisterRow(
                pk=pk,
                orgnr=orgnr,
                name=name,
                number=number or "",
                county_number=county_number or "",
                county=county or "",
                epj=_epj(values[8:16]),
                switch_to=_epj(values[16:24]),
                switch_date=switch_date,
                uses_vkp=uses_vkp,
                path=epj_path(switch_date=switch_date, uses_vkp=uses_vkp),
            )
        )
    candidates = [r for r in rows if r.uses_vkp and r.switch_date is not None]
    risks = _risks(candidates, on=on) if candidates else {}
    return [dataclasses.replace(r, risk=risks[r.pk]) if r.pk in risks else r for r in rows]


def _risks(kommuner: list[RegisterRow], *, on: datetime.date) -> dict[Any, Risk]:
    """Each kommune's risk (see the module's docstring), in five queries for all of them."""
    ids = [k.pk for k in kommuner]
    opens = dict(
        ServiceAvailability.objects.filter(environment=PRODUCTION).values_list(
            "service_id", "available_from"
        )
    )
    services = [
        RiskService(
            pk=s.pk,
            code=s.code,
            name=s.name,
            epic_only=s.epj_requirement == Service.EpjRequirement.EPIC,
            opens=opens.get(s.pk),
        )
        for s in Service.objects.order_by("position", "code")
    ]
    # ``order_by()`` everywhere: a model's default ordering would join the DISTINCT with its
    # column (a grant's created_at) and return every row instead of the pairs.
    grants = set(
        Grant.objects.filter(
            kommune_id__in=ids, status__in=LIVE_GRANT_STATUSES, client__environment=PRODUCTION
        )
        .order_by()
        .values_list("kommune_id", "service_id", "status")
        .distinct()
    )
    active = {(k, s) for k, s, status in grants if status == GrantStatus.ACTIVE}
    asked: set[tuple[Any, Any]] = {(k, s) for k, s, _status in grants}
    asked |= set(
        DelegationItem.objects.filter(
            Q(delegation__valid_until__isnull=True) | Q(delegation__valid_until__gte=on),
            delegation__kommune_id__in=ids,
            delegation__revoked_at__isnull=True,
        )
        .order_by()
        .values_list("delegation__kommune_id", "service_id")
        .distinct()
    )
    asked |= set(
        AccessRequestItem.objects.filter(
            request__kommune_id__in=ids, request__client__environment=PRODUCTION
        )
        .exclude(status__in=(ItemStatus.REJECTED, ItemStatus.WITHDRAWN))
        .order_by()
        .values_list("request__kommune_id", "service_id")
        .distinct()
    )
    risks = {}
    for kommune in kommuner:
        switch_date = kommune.switch_date
        assert switch_date is not None  # noqa: S101 - only kommuner with a switch come here
        epic = kommune.switch_to is not None and kommune.switch_to.verified_epic
        usable = [s for s in services if not s.epic_only or epic]
        asked_for = [s for s in usable if (kommune.pk, s.pk) in asked]
        relied_on = asked_for or usable
        not_active = [s for s in relied_on if (kommune.pk, s.pk) not in active]
        risks[kommune.pk] = Risk(
            relied_on=tuple(relied_on),
            not_active=tuple(not_active),
            opens_after_switch=tuple(
                s for s in not_active if s.opens is None or s.opens > switch_date
            ),
            assumed=not asked_for,
        )
    return risks


# --- Filtering and sorting ------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterFilters:
    """The register's filters; empty values filter nothing."""

    q: str = ""
    county: str = ""
    #: A product's id, or ``NO_EPJ`` for kommuner that have not recorded one.
    epj: str = ""
    path: str = ""
    #: ``yes``, ``no`` or ``unknown``.
    vkp: str = ""
    risk: bool = False

    def keep(self, row: RegisterRow) -> bool:
        if self.q:
            needle = self.q.strip().lower().replace(" ", "")
            if not (
                needle in row.name.lower().replace(" ", "") or needle in (row.orgnr, row.number)
            ):
                return False
        if self.county and row.county_number != self.county:
            return False
        if self.epj == NO_EPJ and row.epj is not None:
            return False
        if self.epj not in ("", NO_EPJ) and (row.epj is None or str(row.epj.id) != self.epj):
            return False
        if self.path and row.path != self.path:
            return False
        if self.vkp and VKP_ANSWER[row.uses_vkp] != self.vkp:
            return False
        return not self.risk or row.at_risk


#: The ``epj`` filter's value for "no EPJ recorded".
NO_EPJ = "none"
#: The ``vkp`` filter's value for each answer.
VKP_ANSWER: dict[bool | None, str] = {True: "yes", False: "no", None: "unknown"}

_PATH_ORDER = {path: i for i, path in enumerate(EpjPath)}

#: The register's sorts: a key of the row per column (None sorts last either way).
SORTS: dict[str, Any] = {
    "kommune": lambda r: r.name.lower(),
    "number": lambda r: r.number or None,
    "county": lambda r: r.county or None,
    "epj": lambda r: r.epj.name.lower() if r.epj else None,
    "vkp": lambda r: None if r.uses_vkp is None else not r.uses_vkp,
    "switch": lambda r: r.switch_date,
    "path": lambda r: _PATH_ORDER[r.path],
    "risk": lambda r: -len(r.risk.not_active) if r.risk else None,
}
DEFAULT_SORT = "switch"


def rows_sorted(rows: list[RegisterRow], sort: str) -> list[RegisterRow]:
    """``rows`` by ``sort`` (a key of ``SORTS``, ``-`` for descending), then by name; rows
    without a value come last in both directions. ValueError for an unknown sort."""
    key = SORTS.get(sort.removeprefix("-"))
    if key is None:
        raise ValueError(sort)
    by_name = sorted(rows, key=lambda r: (r.name.lower(), r.orgnr))
    valued = [r for r in by_name if key(r) is not None]
    unvalued = [r for r in by_name if key(r) is None]
    return sorted(valued, key=key, reverse=sort.startswith("-")) + unvalued


# --- CSV ------------------------------------------------------------------------------------------

CSV_COLUMNS = [
    "kommunenummer",
    "kommune",
    "orgnr",
    "fylke",
    "epj_product",
    "epj_vendor",
    "uses_vkp",
    "switch_product",
    "switch_date",
    "path",
    "path_label",
    "at_risk",
    "relied_on",
    "not_active",
    "opens_after_switch",
]


def csv_records(rows: Iterable[RegisterRow]) -> Iterator[list[str]]:
    """The header, then one record per row: codes and ISO dates, with the path in words too."""
    yield list(CSV_COLUMNS)
    for row in rows:
        epj, switch = row.epj, row.switch_to
        yield [
            csv_cell(value)
            for value in (
                row.number,
                row.name,
                row.orgnr,
                row.county,
                epj.name if epj else "",
                epj.vendor_name if epj else "",
                {True: "yes", False: "no", None: ""}[row.uses_vkp],
                switch.name if switch else "",
                row.switch_date.isoformat() if row.switch_date else "",
                row.path.value,
                row.path.label,
                ("yes" if row.at_risk else "no") if row.risk else "",
                " ".join(row.codes("relied_on")),
                " ".join(row.codes("not_active")),
                " ".join(row.codes("opens_after_switch")),
            )
        ]
