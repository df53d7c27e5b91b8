"""The permission matrix: every endpoint and action of the API, for every kind of person.

The expected statuses are the specification, written out by hand, not derived from the permission
code. A denied call (403 or 404) must leave the database exactly as it was; an allowed write must
leave an audit event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEvent
from orders import services
from orders.models import (
    AccessRequest,
    AccessRequestItem,
    Delegation,
    Grant,
    GrantStatus,
    Instruction,
    ItemStatus,
    Service,
)
from tenants.models import ClientKey, Membership, OAuthClient, Organisation, Product
from tests.conftest import World
from tests.factories import api_session
from tests.keys import jwks, rsa_public_jwk

pytestmark = pytest.mark.django_db

PERSONAS = (
    "kommune_admin",
    "kommune_reader",
    "other_kommune_admin",
    "vendor_admin",
    "vendor_developer",
    "other_vendor_admin",
    "nhn_auditor",
    "nhn_operator",
    "anonymous",
)

Row = tuple[str, str, dict[str, int]]

# (method, route name, expected status per persona). Anonymous callers get 401 everywhere. A
# kommune reader reads its kommune's data and changes nothing (403 where it sees the object, 404
# where it does not); a vendor developer registers its vendor's clients and rotates their keys,
# and leaves ordering, products and removing clients to the vendor admin (docs/permissions.md).
MATRIX: list[Row] = [
    (
        "GET",
        "service-list",
        {
            "kommune_admin": 200,
            "kommune_reader": 200,
            "other_kommune_admin": 200,
            "vendor_admin": 200,
            "vendor_developer": 200,
            "other_vendor_admin": 200,
            "nhn_auditor": 200,
            "nhn_operator": 200,
            "anonymous": 401,
        },
    ),
    (
        "GET",
        "organization-detail",
        {
            "kommune_admin": 200,
            "kommune_reader": 200,
            "other_kommune_admin": 404,
            "vendor_admin": 404,
            "vendor_developer": 404,
            "other_vendor_admin": 404,
            "nhn_auditor": 200,
            "nhn_operator": 200,
            "anonymous": 401,
        },
    ),
    (
        "POST",
        "organization-list",
        {
            "kommune_admin": 403,
            "kommune_reader": 403,
            "other_kommune_admin": 403,
            "vendor_admin": 403,
            "vendor_developer": 403,
            "other_vendor_admin": 403,
            "nhn_auditor": 403,
            "nhn_operator": 201,
            "anonymous": 401,
        },
    ),
    (
        "PUT",
        "organization-epj",
        {
            "kommune_admin": 200,
            "kommune_reader": 403,
            "other_kommune_admin": 404,
            "vendor_admin": 404,
            "vendor_developer": 404,
            "other_vendor_admin": 404,
            "nhn_auditor": 403,
            "nhn_operator": 403,
            "anonymous": 401,
        },
    ),
    (
        "GET",
        "product-list",
        {
            "kommune_admin": 200,
            "kommune_reader": 200,
            "other_kommune_admin": 200,
            "vendor_admin": 200,
            "vendor_developer": 200,
            "other_vendor_admin": 200,
            "nhn_auditor": 200,
            "nhn_operator": 200,
            "anonymous": 401,
        },
    ),
    (
        "POST",
        "product-list",
        {
            "kommune_admin": 404,
            "kommune_reader": 404,
            "other_kommune_admin": 404,
            "vendor_admin": 201,
            "vendor_developer": 403,
            "other_vendor_admin": 404,
            "nhn_auditor": 403,
            "nhn_operator": 403,
            "anonymous": 401,
        },
    ),
    (
        "GET",
        "membership-list",
        {
            "kommune_admin": 200,
            "kommune_reader": 200,
            "other_kommune_admin": 200,
            "vendor_admin": 200,
            "vendor_developer": 200,
            "other_vendor_admin": 200,
            "nhn_auditor": 200,
            "nhn_operator": 200,
            "anonymous": 401,
        },
    ),
    (
        "POST",
        "membership-list",
        {
            "kommune_admin": 201,
            "kommune_reader": 403,
            "other_kommune_admin": 404,
            "vendor_admin": 404,
            "vendor_developer": 404,
            "other_vendor_admin": 404,
            "nhn_auditor": 403,
            "nhn_operator": 403,  # NHN bootstraps the first admin only
            "anonymous": 401,
        },
    ),
    (
        "GET",
        "instruction-detail",
        {
            "kommune_admin": 200,
            "kommune_reader": 200,
            "other_kommune_admin": 404,
            "vendor_admin": 404,
            "vendor_developer": 404,
            "other_vendor_admin": 404,
            "nhn_auditor": 200,
            "nhn_operator": 200,
            "anonymous": 401,
        },
    ),
    (
        "POST",
        "instruction-list",
        {
            "kommune_admin": 201,
            "kommune_reader": 403,
            "other_kommune_admin": 404,
            "vendor_admin": 404,
            "vendor_developer": 404,
            "other_vendor_admin": 404,
            "nhn_auditor": 403,
            "nhn_operator": 403,
            "anonymous": 401,
        },
    ),
    (
        "POST",
        "instruction-sign",
        {
            "kommune_admin": 200,
            "kommune_reader": 403,
            "other_kommune_admin": 404,
            "vendor_admin": 404,
            "vendor_developer": 404,
            "other_vendor_admin": 404,
            "nhn_auditor": 403,
            "nhn_operator": 403,
            "anonymous": 401,
        },
    ),
    (
        "GET",
        "delegation-detail",
        {
            "kommune_admin": 200,
            "kommune_reader": 200,
            "other_kommune_admin": 404,
            "vendor_admin": 200,
            "vendor_developer": 200,
            "other_vendor_admin": 404,
            "nhn_auditor": 200,
            "nhn_operator": 200,
            "anonymous": 401,
        },
    ),
    (
        "POST",
        "delegation-list",
        {
            "kommune_admin": 201,
            "kommune_reader": 403,
            "other_kommune_admin": 404,
            "vendor_admin": 404,
            "vendor_developer": 404,
            "other_vendor_admin": 404,
            "nhn_auditor": 403,
            "nhn_operator": 403,
            "anonymous": 401,
        },
    ),
    (
        "POST",
        "delegation-revoke",
        {
            "kommune_admin": 200,
            "kommune_reader": 403,
            "other_kommune_admin": 404,
            "vendor_admin": 403,
            "vendor_developer": 403,
            "other_vendor_admin": 404,
            "nhn_auditor": 403,
            "nhn_operator": 403,
            "anonymous": 401,
        },
    ),
    (
        "GET",
        "client-detail",
        {
            "kommune_admin": 200,
            "kommune_reader": 200,
            "other_kommune_admin": 404,
            "vendor_admin": 200,
            "vendor_developer": 200,
            "other_vendor_admin": 404,
            "nhn_auditor": 200,
            "nhn_operator": 200,
            "anonymous": 401,
        },
    ),
    (
        "POST",
        "client-list",
        {
            "kommune_admin": 404,
            "kommune_reader": 404,
            "other_kommune_admin": 404,
            "vendor_admin": 201,
            "vendor_developer": 201,
            "other_vendor_admin": 404,
            "nhn_auditor": 403,
            "nhn_operator": 403,
            "anonymous": 401,
        },
    ),
    (
        "PUT",
        "client-jwks",
        {
            "kommune_admin": 403,
            "kommune_reader": 403,
            "other_kommune_admin": 404,
            "vendor_admin": 200,
            "vendor_developer": 200,
            "other_vendor_admin": 404,
            "nhn_auditor": 403,
            "nhn_operator": 403,
            "anonymous": 401,
        },
    ),
    (
        "DELETE",
        "client-detail",
        {
            "kommune_admin": 403,
            "kommune_reader": 403,
            "other_kommune_admin": 404,
            "vendor_admin": 204,
            "vendor_developer": 403,
            "other_vendor_admin": 404,
            "nhn_auditor": 403,
            "nhn_operator": 204,
            "anonymous": 401,
        },
    ),
    (
        "POST",
        "access-request-list",
        {
            "kommune_admin": 201,
            "kommune_reader": 403,
            "other_kommune_admin": 404,
            "vendor_admin": 201,
            "vendor_developer": 403,
            "other_vendor_admin": 404,
            "nhn_auditor": 403,
            "nhn_operator": 403,
            "anonymous": 401,
        },
    ),
    (
        "GET",
        "access-request-detail",
        {
            "kommune_admin": 200,
            "kommune_reader": 200,
            "other_kommune_admin": 404,
            "vendor_admin": 200,
            "vendor_developer": 200,
            "other_vendor_admin": 404,
            "nhn_auditor": 200,
            "nhn_operator": 200,
            "anonymous": 401,
        },
    ),
    (
        "POST",
        "access-request-approve",
        {
            "kommune_admin": 200,
            "kommune_reader": 403,
            "other_kommune_admin": 404,
            "vendor_admin": 403,
            "vendor_developer": 403,
            "other_vendor_admin": 404,
            "nhn_auditor": 403,
            "nhn_operator": 403,
            "anonymous": 401,
        },
    ),
    (
        "POST",
        "access-request-reject",
        {
            "kommune_admin": 200,
            "kommune_reader": 403,
            "other_kommune_admin": 404,
            "vendor_admin": 403,
            "vendor_developer": 403,
            "other_vendor_admin": 404,
            "nhn_auditor": 403,
            "nhn_operator": 403,
            "anonymous": 401,
        },
    ),
    (
        "POST",
        "access-request-withdraw",
        {
            "kommune_admin": 403,
            "kommune_reader": 403,
            "other_kommune_admin": 404,
            "vendor_admin": 200,
            "vendor_developer": 403,
            "other_vendor_admin": 404,
            "nhn_auditor": 403,
            "nhn_operator": 403,
            "anonymous": 401,
        },
    ),
    (
        "GET",
        "grant-detail",
        {
            "kommune_admin": 200,
            "kommune_reader": 200,
            "other_kommune_admin": 404,
            "vendor_admin": 200,
            "vendor_developer": 200,
            "other_vendor_admin": 404,
            "nhn_auditor": 200,
            "nhn_operator": 200,
            "anonymous": 401,
        },
    ),
    (
        "POST",
        "grant-revoke",
        {
            "kommune_admin": 200,
            "kommune_reader": 403,
            "other_kommune_admin": 404,
            "vendor_admin": 403,
            "vendor_developer": 403,
            "other_vendor_admin": 404,
            "nhn_auditor": 403,
            "nhn_operator": 200,
            "anonymous": 401,
        },
    ),
    (
        "GET",
        "audit-event-list",
        {
            "kommune_admin": 200,
            "kommune_reader": 200,
            "other_kommune_admin": 200,
            "vendor_admin": 200,
            "vendor_developer": 200,
            "other_vendor_admin": 200,
            "nhn_auditor": 200,
            "nhn_operator": 200,
            "anonymous": 401,
        },
    ),
    (
        "GET",
        "epj-register-detail",
        {
            "kommune_admin": 200,
            "kommune_reader": 200,
            "other_kommune_admin": 404,
            "vendor_admin": 404,
            "vendor_developer": 404,
            "other_vendor_admin": 404,
            "nhn_auditor": 200,
            "nhn_operator": 200,
            "anonymous": 401,
        },
    ),
    (
        "GET",
        "overview",
        {
            "kommune_admin": 403,
            "kommune_reader": 403,
            "other_kommune_admin": 403,
            "vendor_admin": 403,
            "vendor_developer": 403,
            "other_vendor_admin": 403,
            "nhn_auditor": 200,
            "nhn_operator": 200,
            "anonymous": 401,
        },
    ),
    (
        "GET",
        "recertification-list",  # scoped: the kommune's members and NHN staff
        {
            "kommune_admin": 200,
            "kommune_reader": 200,
            "other_kommune_admin": 200,
            "vendor_admin": 200,
            "vendor_developer": 200,
            "other_vendor_admin": 200,
            "nhn_auditor": 200,
            "nhn_operator": 200,
            "anonymous": 401,
        },
    ),
    (
        "POST",
        "recertification-confirm",  # the consent is the kommune's: NHN reads, never confirms
        {
            "kommune_admin": 200,
            "kommune_reader": 403,
            "other_kommune_admin": 404,
            "vendor_admin": 404,
            "vendor_developer": 404,
            "other_vendor_admin": 404,
            "nhn_auditor": 403,
            "nhn_operator": 403,
            "anonymous": 401,
        },
    ),
    (
        "GET",
        "access-history-list",  # scoped: the kommune's, the vendor's clients'; NHN all
        {
            "kommune_admin": 200,
            "kommune_reader": 200,
            "other_kommune_admin": 200,
            "vendor_admin": 200,
            "vendor_developer": 200,
            "other_vendor_admin": 200,
            "nhn_auditor": 200,
            "nhn_operator": 200,
            "anonymous": 401,
        },
    ),
]


def row_label(method: str, route: str) -> str:
    """The viewset action a row calls: ``product-list`` POSTed is ``product-create``."""
    base, _, kind = route.rpartition("-")
    if kind == "list" and method == "POST":
        return f"{base}-create"
    if kind == "detail":
        return f"{base}-{'retrieve' if method == 'GET' else 'destroy'}"
    return route


#: Cells where today's code answers otherwise than the role's meaning: the matrix keeps the
#: meaning, and the cell fails strictly until the code is fixed (then this entry goes).
def case(method: str, route: str, persona: str, expected: int) -> Any:
    label = f"{row_label(method, route)}-{persona}"
    return pytest.param(method, route, persona, expected, id=label)


CASES = [
    case(method, route, persona, expected[persona])
    for method, route, expected in MATRIX
    for persona in PERSONAS
]


# --- The state the calls act on ------------------------------------------------------------------


@dataclass
class State:
    world: World
    people: dict[str, Any]
    grant: Grant  # G: approved through the delegation
    waiting: AccessRequest  # R: one item awaiting the kommune
    draft: Instruction  # a draft instruction of world.kommune


INSTRUCTION_DATA: dict[str, Any] = {
    "subject_matter": "Velferdsteknologi og pasientdata",
    "duration": "Til avtalen sies opp",
    "nature_and_purpose": "Innsamling og tilgjengeliggjøring av helsedata",
    "personal_data_categories": ["helseopplysninger"],
    "data_subject_categories": ["pasienter"],
    "sharing_scope": "kommune_only",
    "retention": "Så lenge tjenesten ytes",
    "contact_name": "Kari Nordmann",
    "contact_email": "kari@kommune.example",
}


@pytest.fixture
def state(world: World, people: dict[str, Any]) -> State:
    [granted] = services.access_request_create(
        client=world.client,
        kommuner=[world.kommune],
        items=[services.ItemInput(service=Service.objects.get(code="patient"), access="read")],
        initiated_by=AccessRequest.Initiator.VENDOR,
        actor=people["vendor_admin"],
    )
    grant = Grant.objects.get(request_items__request=granted)

    # The delegation stops covering episode-of-care, so the vendor's request for it waits.
    world.delegation.items.filter(service__code="episode-of-care").delete()
    [waiting] = services.access_request_create(
        client=world.client,
        kommuner=[world.kommune],
        items=[
            services.ItemInput(service=Service.objects.get(code="episode-of-care"), access="read")
        ],
        initiated_by=AccessRequest.Initiator.VENDOR,
        actor=people["vendor_admin"],
    )

    draft = services.instruction_create(
        kommune=world.kommune,
        actor=people["kommune_admin"],
        services=list(Service.objects.all()),
        data=dict(INSTRUCTION_DATA),
    )

    assert grant.status == GrantStatus.PENDING  # approved, waiting for provisioning
    assert list(waiting.items.values_list("status", flat=True)) == [ItemStatus.AWAITING_KOMMUNE]
    assert draft.signed_at is None
    return State(world=world, people=people, grant=grant, waiting=waiting, draft=draft)


def url_args(route: str, state: State) -> list[Any]:
    world = state.world
    targets: dict[str, Callable[[], list[Any]]] = {
        "organization-detail": lambda: [world.kommune.orgnr],
        "organization-epj": lambda: [world.kommune.orgnr],
        "epj-register-detail": lambda: [world.kommune.orgnr],
        "instruction-detail": lambda: [world.instruction.pk],
        "instruction-sign": lambda: [state.draft.pk],
        "delegation-detail": lambda: [world.delegation.pk],
        "delegation-revoke": lambda: [world.delegation.pk],
        "client-detail": lambda: [world.client.pk],
        "client-jwks": lambda: [world.client.pk],
        "access-request-detail": lambda: [state.waiting.pk],
        "access-request-approve": lambda: [state.waiting.pk],
        "access-request-reject": lambda: [state.waiting.pk],
        "access-request-withdraw": lambda: [state.waiting.pk],
        "grant-detail": lambda: [state.grant.pk],
        "grant-revoke": lambda: [state.grant.pk],
    }
    return targets[route]() if route in targets else []


def body_for(method: str, route: str, state: State) -> Any:
    """A valid body, so that an allowed caller really succeeds."""
    world = state.world
    if method in ("GET", "DELETE"):
        return None
    bodies: dict[str, Callable[[], Any]] = {
        "organization-list": lambda: {
            "orgnr": "964967636",
            "name": "Tromsø kommune",
            "kind": "kommune",
            "kommune": "5501",
        },
        "organization-epj": lambda: {"epj_product": None},
        "product-list": lambda: {"vendor": world.vendor.orgnr, "name": "New", "system_type": "VFT"},
        "membership-list": lambda: {
            "organisation": world.kommune.orgnr,
            "email": "new@k.example",
            "role": "kommune_reader",
        },
        "instruction-list": lambda: {
            **INSTRUCTION_DATA,
            "kommune": world.kommune.orgnr,
            "services": ["patient", "care-plan"],
        },
        "delegation-list": lambda: {
            "kommune": world.kommune.orgnr,
            "vendor": world.vendor.orgnr,
            "items": [{"service": "patient", "access": "read"}],
        },
        "client-list": lambda: {
            "name": "X",
            "product": str(world.product.id),
            "environment": "production",
            "jwks": jwks(),
        },
        "client-jwks": lambda: jwks(rsa_public_jwk("new-key", seed=1)),
        "access-request-list": lambda: {
            "client": str(world.client.id),
            "kommune": world.kommune.orgnr,
            "items": [{"service": "care-plan", "access": "read"}],
        },
        "recertification-confirm": lambda: {
            "kommune": world.kommune.orgnr,
            "vendor": world.vendor.orgnr,
        },
    }
    return bodies[route]() if route in bodies else {}


def snapshot() -> tuple[Any, ...]:
    """Everything a call could change."""

    def rows(model: Any, *fields: str) -> list[tuple[Any, ...]]:
        return sorted(model.objects.values_list(*fields), key=repr)

    return (
        AuditEvent.objects.count(),
        rows(Grant, "id", "status"),
        rows(AccessRequestItem, "id", "status"),
        rows(Instruction, "id", "signed_at"),
        rows(Delegation, "id", "revoked_at"),
        rows(OAuthClient, "id", "removed_at", "updated_at"),
        rows(ClientKey, "id"),
        rows(Membership, "id", "role"),
        rows(Organisation, "id", "epj_product_id"),
        rows(Product, "id"),
    )


def body_of(response: Any) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.content[:500]


# --- The matrix ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "route", "persona", "expected"), CASES)
def test_permission_matrix(
    api_client: APIClient, state: State, method: str, route: str, persona: str, expected: int
) -> None:
    if persona != "anonymous":
        # The person's browser session, just after their login at the provider: signing an
        # instruction asks for that (a fresh login), the other routes only for the person.
        api_client = api_session(state.people[persona])
    path = reverse(route, args=url_args(route, state))
    body = body_for(method, route, state)
    before = snapshot()

    call = getattr(api_client, method.lower())
    response = call(path, body, format="json") if body is not None else call(path)

    assert response.status_code == expected, (
        f"{method} {path} as {persona}: expected {expected}, got {response.status_code}: "
        f"{body_of(response)}"
    )
    after = snapshot()
    if expected in (401, 403, 404):
        assert after == before, f"{method} {path} as {persona} was denied but changed the database"
    elif method != "GET":
        assert after[0] > before[0], f"{method} {path} as {persona} wrote no audit event"


# --- What the lists leave out --------------------------------------------------------------------


def results(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, body_of(response)
    return list(response.json()["results"])


@pytest.mark.parametrize(
    ("persona", "sees_grant"),
    [
        ("kommune_admin", True),
        ("kommune_reader", True),
        ("vendor_admin", True),
        ("vendor_developer", True),
        ("other_kommune_admin", False),
        ("other_vendor_admin", False),
    ],
)
def test_grant_list_shows_only_ones_own_grants(
    api_client: APIClient, state: State, persona: str, sees_grant: bool
) -> None:
    api_client.force_authenticate(state.people[persona])

    rows = results(api_client.get(reverse("grant-list")))

    if sees_grant:
        assert str(state.grant.pk) in {row["id"] for row in rows}
    else:
        assert rows == []


def test_audit_trail_of_a_kommune_is_hidden_from_another_kommune(
    api_client: APIClient, state: State
) -> None:
    kommune = state.world.kommune.orgnr
    assert AuditEvent.objects.filter(organisation_orgnr=kommune).exists()

    api_client.force_authenticate(state.people["other_kommune_admin"])
    outsider = results(api_client.get(reverse("audit-event-list")))
    assert [row for row in outsider if row["organisation"] == kommune] == []

    api_client.force_authenticate(state.people["nhn_auditor"])
    auditor = results(api_client.get(reverse("audit-event-list")))
    assert any(row["organisation"] == kommune for row in auditor)
