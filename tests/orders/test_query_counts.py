"""Every list endpoint of the API runs the same number of SQL queries for 10 rows as for 200.

Each case makes a few rows, counts the queries of one ``GET ...?limit=500``, makes many more rows
and counts again: the counts must be equal, so nothing is loaded row by row (no N+1). The
persona-scoped cases show the same for the lists a vendor or kommune admin sees, and that the
answer holds only their rows. ``/api/v1/services/`` is left out: unpaginated, nine rows, fixed.
"""

from __future__ import annotations

import datetime
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from orders import services
from orders.models import Grant, ProvisioningJob, Service
from portal.urls import router
from recertification.models import Recertification
from tenants.models import ROLES_BY_KIND, ClientKey, Environment, Organisation, Product
from tests.conftest import World
from tests.factories import (
    ClientFactory,
    DelegationFactory,
    GrantFactory,
    InstructionFactory,
    KommuneOrganisationFactory,
    MembershipFactory,
    OrganisationFactory,
    ProductFactory,
)
from tests.keys import rsa_public_jwk

pytestmark = pytest.mark.django_db

FEW, MANY = 10, 200
UNCOUNTED = {"services"}  # unpaginated and fixed at nine rows


# --- Counting -----------------------------------------------------------------------------------


def normalised(sql: str) -> str:
    """The query's shape: literals blanked, so the same query for another row compares equal and
    a prefetch's IN list counts once whatever its length."""
    sql = re.sub(r"'(?:[^']|'')*'(?:::\w+)?", "?", sql)
    sql = re.sub(r"(?<![\w.\"])-?\d+(?:\.\d+)?(?![\w\"])", "?", sql)
    return re.sub(r"\(\s*\?(?:\s*,\s*\?)*\s*\)", "(?...)", sql)


@dataclass
class Listing:
    queries: list[str]
    rows: list[dict[str, Any]]


def listing(api: APIClient, path: str) -> Listing:
    with CaptureQueriesContext(connection) as context:
        response = api.get(path, {"limit": 500})
    assert response.status_code == 200, response.content
    return Listing([q["sql"] for q in context.captured_queries], response.json()["results"])


def repeated(few: Listing, many: Listing) -> str:
    """The queries the long list ran more often than the short one, for the failure message."""
    extra = Counter(normalised(q) for q in many.queries) - Counter(
        normalised(q) for q in few.queries
    )
    if not extra:
        return "(no query ran more often; the short list ran more)"
    return "\n".join(f"+{count}x {sql}" for sql, count in extra.most_common())


# --- Rows ---------------------------------------------------------------------------------------


def new_kommuner(n: int) -> list[Organisation]:
    return [KommuneOrganisationFactory() for _ in range(n)]


def item(code: str, access: str) -> services.ItemInput:
    return services.ItemInput(service=Service.objects.get(code=code), access=access)


def add_organisations(world: World, n: int) -> None:
    """Vendors and kommuner; some kommuner with an EPJ and a planned switch (related rows)."""
    epj = ProductFactory(system_type=Product.SystemType.EPJ, is_epic=True)
    switch = ProductFactory(vendor=epj.vendor, system_type=Product.SystemType.EPJ)
    for i in range(n):
        if i % 2:
            OrganisationFactory()
        elif i % 4:
            KommuneOrganisationFactory()
        else:
            KommuneOrganisationFactory(
                epj_product=epj,
                epj_switch_product=switch,
                epj_switch_date=datetime.date(2027, 1, 1),
            )


def add_epj_plans(world: World, n: int) -> None:
    """Kommuner that use VKP and plan a switch, so the register works out each one's risk; one
    in two with an active grant (a service relied on and active)."""
    epj = ProductFactory(system_type=Product.SystemType.EPJ)
    for i, kommune in enumerate(new_kommuner(n)):
        Organisation.objects.filter(pk=kommune.pk).update(
            epj_product=epj,
            epj_switch_product=epj,
            epj_switch_date=datetime.date(2026, 10, 1),
            uses_vkp=True,
        )
        if i % 2:
            GrantFactory(client=world.client, kommune=kommune)


def add_memberships(world: World, n: int) -> None:
    """Five people per organisation (vendors and kommuner in turn), one an open invitation."""
    for start in range(0, n, 5):
        organisation = KommuneOrganisationFactory() if start % 10 else OrganisationFactory()
        roles = ROLES_BY_KIND[organisation.kind]
        for i in range(min(5, n - start)):
            if i == 4:
                MembershipFactory(
                    organisation=organisation,
                    role=roles[1],
                    user=None,
                    email=f"invitee-{organisation.orgnr}@example.test",
                )
            else:
                MembershipFactory(organisation=organisation, role=roles[i % 2])


def add_products(world: World, n: int) -> None:
    vendors = [OrganisationFactory() for _ in range(max(1, n // 20))]
    kinds = [Product.SystemType.VFT, Product.SystemType.EPJ]
    for i in range(n):
        ProductFactory(vendor=vendors[i % len(vendors)], system_type=kinds[i % 2])


def add_clients(world: World, n: int) -> None:
    """Clients of several products; a third have two keys and a third three."""
    products = [ProductFactory() for _ in range(max(1, n // 20))]
    more_keys = []
    for i in range(n):
        client = ClientFactory(
            product=products[i % len(products)],
            environment=Environment.TEST if i % 2 else Environment.PRODUCTION,
        )
        for extra in range(2, 2 + i % 3):
            kid = f"key-{extra}"
            more_keys.append(
                ClientKey(client=client, kid=kid, kty="RSA", alg="RS256", jwk=rsa_public_jwk(kid))
            )
    ClientKey.objects.bulk_create(more_keys)


def add_instructions(world: World, n: int) -> None:
    """Two versions per kommune; every other one covers part of the catalogue only."""
    some = list(Service.objects.order_by("position")[:3])
    kommuner = new_kommuner((n + 1) // 2)
    signer = world.people["kommune_admin"]
    for i in range(n):
        if i % 2:
            InstructionFactory(kommune=kommuner[i // 2], signed_by=signer, services=some)
        else:
            InstructionFactory(kommune=kommuner[i // 2], signed_by=signer)


def add_delegations(world: World, n: int) -> None:
    """Each kommune delegates to five vendors; every other delegation covers one service."""
    vendors = [OrganisationFactory() for _ in range(5)]
    kommuner = new_kommuner((n + 4) // 5)
    patient = [Service.objects.get(code="patient")]
    for i in range(n):
        if i % 2:
            DelegationFactory(kommune=kommuner[i // 5], vendor=vendors[i % 5], services=patient)
        else:
            DelegationFactory(kommune=kommuner[i // 5], vendor=vendors[i % 5])


def add_access_requests(world: World, n: int) -> None:
    """One request of world.client per new kommune, two items each (waiting for the kommune)."""
    services.access_request_create(
        client=world.client,
        kommuner=new_kommuner(n),
        items=[item("patient", "read"), item("episode-of-care", "read")],
        initiated_by="vendor",
        actor=world.people["vendor_admin"],
    )


def approvable() -> list[services.ItemInput]:
    """Items a VFT client is granted at once where there is a delegation and an instruction:
    open in production since 2026, no EPJ requirement, read or written by a VFT."""
    return [
        item("patient", "read"),
        item("episode-of-care", "read"),
        item("journaling", "write"),
        item("observation", "write"),
    ]


def ready_kommuner(world: World, n: int) -> list[Organisation]:
    """New kommuner whose approvable items world.client's vendor gets at once: a delegation to it
    and a signed instruction each."""
    kommuner = new_kommuner(n)
    for kommune in kommuner:
        DelegationFactory(kommune=kommune, vendor=world.vendor)
        InstructionFactory(kommune=kommune, signed_by=world.people["kommune_admin"])
    return kommuner


def add_grants(world: World, n: int) -> None:
    """Grants of world.client, four per new kommune ready to order (``ready_kommuner``)."""
    items = approvable()
    kommuner = ready_kommuner(world, -(-n // len(items)))
    before = Grant.objects.count()
    services.access_request_create(
        client=world.client,
        kommuner=kommuner,
        items=items,
        initiated_by="vendor",
        actor=world.people["vendor_admin"],
    )
    assert Grant.objects.count() == before + len(items) * len(kommuner)


def add_provisioning_jobs(world: World, n: int) -> None:
    for _ in range(n):
        client = ClientFactory(product=world.product)
        ProvisioningJob.objects.create(client=client, reason="client.registered", status="done")


def add_audit_events(world: World, n: int) -> None:
    user = world.people["nhn_operator"]
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor=user if i % 2 else None,
            actor_label="x",
            organisation_id=world.kommune.pk if i % 3 else None,
            organisation_orgnr=world.kommune.orgnr if i % 3 else "",
            action="a",
            object_type="t",
            object_id=str(i),
            after={"n": i},
        )
        for i in range(n)
    )


def add_kommune_access_requests(world: World, n: int) -> None:
    """Requests to world.kommune from several clients of world.vendor: patient.read approved (the
    kommune has a delegation and an instruction), observation.read refused (a VFT may not)."""
    clients = [ClientFactory(product=world.product) for _ in range(max(1, n // 20))]
    items = [item("patient", "read"), item("observation", "read")]
    for i in range(n):
        services.access_request_create(
            client=clients[i % len(clients)],
            kommuner=[world.kommune],
            items=items,
            initiated_by="vendor",
            actor=world.people["vendor_admin"],
        )


def add_kommune_grants(world: World, n: int) -> None:
    """Grants in world.kommune: new clients of world.vendor, four approved items each."""
    items = approvable()
    clients = -(-n // len(items))
    before = Grant.objects.count()
    for _ in range(clients):
        services.access_request_create(
            client=ClientFactory(product=world.product),
            kommuner=[world.kommune],
            items=items,
            initiated_by="vendor",
            actor=world.people["vendor_admin"],
        )
    assert Grant.objects.count() == before + len(items) * clients


def _active_since_now(grants: Any) -> None:
    """The grants became active (as the runner records it): they have access from now."""
    services.grant_periods_open(grants=list(grants), at=timezone.now())


def add_access_history(world: World, n: int) -> None:
    """Periods of access of new grants of world.client (``add_grants``)."""
    known = set(Grant.objects.values_list("pk", flat=True))
    add_grants(world, n)
    _active_since_now(Grant.objects.exclude(pk__in=known))


def add_kommune_access_history(world: World, n: int) -> None:
    known = set(Grant.objects.values_list("pk", flat=True))
    add_kommune_grants(world, n)
    _active_since_now(Grant.objects.exclude(pk__in=known))


# --- Rows the persona must not see --------------------------------------------------------------


def other_vendors_requests(world: World) -> None:
    services.access_request_create(
        client=world.other_client,
        kommuner=[world.kommune, world.other_kommune],
        items=[item("patient", "read")],
        initiated_by="vendor",
        actor=world.people["other_vendor_admin"],
    )


def other_vendors_grant(world: World) -> None:
    DelegationFactory(kommune=world.kommune, vendor=world.other_vendor)
    other_vendors_requests(world)
    assert Grant.objects.filter(client=world.other_client).exists()


def other_vendors_history(world: World) -> None:
    other_vendors_grant(world)
    _active_since_now(Grant.objects.filter(client=world.other_client))


def other_kommuners_history(world: World) -> None:
    add_access_history(world, 3)


def other_kommuners_requests(world: World) -> None:
    add_access_requests(world, 3)


def other_kommuners_grants(world: World) -> None:
    add_grants(world, 3)


def add_recertifications(world: World, n: int, *, kommune: Organisation | None = None) -> None:
    """A vendor with two grants in a kommune per row (world.kommune's when given, otherwise a
    new one in turn with it), every third confirmed by the kommune."""
    services_ = [Service.objects.get(code=code) for code in ("patient", "care-plan")]
    for i in range(n):
        here = kommune or (world.kommune if i % 2 else KommuneOrganisationFactory())
        client = ClientFactory(product=ProductFactory(vendor=OrganisationFactory(kind="vendor")))
        for service in services_:
            GrantFactory(client=client, kommune=here, service=service)
        if i % 3 == 0:
            Recertification.objects.create(
                kommune=here,
                vendor=client.vendor,
                confirmed_at=timezone.now(),
                confirmed_by=world.people["kommune_admin"],
            )


def add_kommune_recertifications(world: World, n: int) -> None:
    add_recertifications(world, n, kommune=world.kommune)


def other_kommuners_recertifications(world: World) -> None:
    add_recertifications(world, 3, kommune=world.other_kommune)


def of_the_vendor(world: World, rows: list[dict[str, Any]]) -> bool:
    clients = {str(pk) for pk in world.vendor.clients.values_list("pk", flat=True)}
    return all(row["client"] in clients for row in rows)


def in_the_kommune(world: World, rows: list[dict[str, Any]]) -> bool:
    return all(row["kommune"] == world.kommune.orgnr for row in rows)


# --- The cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    endpoint: str
    add: Callable[[World, int], None]
    persona: str = "nhn_auditor"  # sees everything
    hidden: Callable[[World], None] | None = None  # rows the persona must not see
    belongs: Callable[[World, list[dict[str, Any]]], bool] | None = None  # of the rows shown

    @property
    def id(self) -> str:
        return (
            self.endpoint if self.persona == "nhn_auditor" else f"{self.endpoint}-as-{self.persona}"
        )


CASES = [
    Case("organizations", add_organisations),
    Case("memberships", add_memberships),
    Case("products", add_products),
    Case("clients", add_clients),
    Case("instructions", add_instructions),
    Case("delegations", add_delegations),
    Case("access-requests", add_access_requests),
    Case("grants", add_grants),
    Case("audit-events", add_audit_events),
    Case("provisioning-jobs", add_provisioning_jobs),
    Case("epj-register", add_epj_plans),
    Case("access-history", add_access_history),
    Case(
        "access-history",
        add_access_history,
        persona="vendor_admin",
        hidden=other_vendors_history,
        belongs=of_the_vendor,
    ),
    Case(
        "access-history",
        add_kommune_access_history,
        persona="kommune_admin",
        hidden=other_kommuners_history,
        belongs=in_the_kommune,
    ),
    Case(
        "access-requests",
        add_access_requests,
        persona="vendor_admin",
        hidden=other_vendors_requests,
        belongs=of_the_vendor,
    ),
    Case(
        "access-requests",
        add_kommune_access_requests,
        persona="kommune_admin",
        hidden=other_kommuners_requests,
        belongs=in_the_kommune,
    ),
    Case(
        "grants",
        add_grants,
        persona="vendor_admin",
        hidden=other_vendors_grant,
        belongs=of_the_vendor,
    ),
    Case(
        "grants",
        add_kommune_grants,
        persona="kommune_admin",
        hidden=other_kommuners_grants,
        belongs=in_the_kommune,
    ),
    Case("recertifications", add_recertifications),
    Case(
        "recertifications",
        add_kommune_recertifications,
        persona="kommune_admin",
        hidden=other_kommuners_recertifications,
        belongs=in_the_kommune,
    ),
]


def test_every_list_endpoint_has_a_case() -> None:
    registered = {prefix for prefix, _viewset, _basename in router.registry}
    assert registered - UNCOUNTED == {case.endpoint for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_list_queries_do_not_grow_with_the_rows(
    case: Case, world: World, api_client: APIClient
) -> None:
    api_client.force_authenticate(world.people[case.persona])
    path = f"/api/v1/{case.endpoint}/"
    if case.hidden is not None:
        case.hidden(world)

    case.add(world, FEW)
    listing(api_client, path)  # warm up: one-off lookups (caches) do not count against the first
    few = listing(api_client, path)
    case.add(world, MANY - FEW)
    many = listing(api_client, path)

    assert len(few.rows) >= FEW
    assert len(many.rows) >= MANY
    if case.belongs is not None:
        assert case.belongs(world, many.rows)
    counts = len(few.queries), len(many.queries)
    assert counts[0] == counts[1], (
        f"{path} as {case.persona}: {counts[0]} queries for {len(few.rows)} rows, "
        f"{counts[1]} for {len(many.rows)}. Repeated:\n{repeated(few, many)}"
    )
