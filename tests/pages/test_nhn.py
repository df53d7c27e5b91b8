"""NHN's start page, the national grants matrix and the grants behind each of its cells."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders.models import GrantStatus, ProvisioningJob, Service
from orders.services import delegation_revoke
from tenants.models import Environment, Organisation
from tests.conftest import World
from tests.factories import (
    ClientFactory,
    GrantFactory,
    KommuneOrganisationFactory,
    ProductFactory,
)

pytestmark = pytest.mark.django_db


def as_(client: Client, person: User) -> Client:
    client.force_login(person)
    return client


def url(name: str, nhn: Organisation, **query: str) -> str:
    base = reverse(name, args=[nhn.orgnr])
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


@pytest.fixture
def grants(world: World) -> dict[str, Any]:
    """Grants of each status in the world's kommune, and a waiting order item."""
    patient = Service.objects.get(code="patient")
    care_plan = Service.objects.get(code="care-plan")
    made = {
        status: GrantFactory(
            client=world.client,
            kommune=world.kommune,
            service=patient,
            status=status,
            access=access,
        )
        for status, access in ((GrantStatus.ACTIVE, "read"), (GrantStatus.FAILED, "write"))
    }
    made["setting_up"] = GrantFactory(
        client=world.client, kommune=world.kommune, service=care_plan, status=GrantStatus.PENDING
    )
    made["revoked"] = GrantFactory(
        client=world.client,
        kommune=world.kommune,
        service=care_plan,
        status=GrantStatus.REVOKED,
    )
    made["other"] = GrantFactory(
        client=world.other_client,
        kommune=world.other_kommune,
        service=patient,
        status=GrantStatus.ACTIVE,
    )
    delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])
    made["waiting"] = world.order("episode-of-care.read").items.get()
    return made


# --- Who may see the pages -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["orders:matrix", "orders:nhn_grants", "orders:availability"])
@pytest.mark.parametrize("who", ["nhn_operator", "nhn_auditor"])
def test_nhn_staff_read_the_national_pages(
    client: Client, people: dict[str, User], nhn: Organisation, name: str, who: str
) -> None:
    response = as_(client, people[who]).get(url(name, nhn))
    assert response.status_code == 200
    assert response.context["acting"].organisation == nhn


@pytest.mark.parametrize(
    "name", ["orders:dashboard", "orders:matrix", "orders:nhn_grants", "orders:availability"]
)
@pytest.mark.parametrize("who", ["kommune_admin", "vendor_admin", "other_vendor_admin"])
def test_kommune_and_vendor_people_find_no_national_page(
    client: Client, people: dict[str, User], nhn: Organisation, name: str, who: str
) -> None:
    assert as_(client, people[who]).get(url(name, nhn)).status_code == 404


@pytest.mark.parametrize(
    ("who", "organisation"), [("kommune_admin", "kommune"), ("vendor_admin", "vendor")]
)
def test_the_matrix_is_not_a_page_of_a_kommune_or_a_vendor(
    client: Client, people: dict[str, User], request: Any, who: str, organisation: str
) -> None:
    own = request.getfixturevalue(organisation)
    assert as_(client, people[who]).get(url("orders:matrix", own)).status_code == 404


# --- The start page ------------------------------------------------------------------------------


def test_the_start_page_gives_the_national_picture_in_numbers(
    client: Client,
    people: dict[str, User],
    nhn: Organisation,
    grants: dict[str, Any],
    django_assert_max_num_queries: Any,
) -> None:
    ProvisioningJob.objects.create(
        client=grants["active"].client, reason="grant.approved", status="failed"
    )
    ProductFactory(verified_at=None)
    as_(client, people["nhn_auditor"])
    with django_assert_max_num_queries(13):  # 12, and the header's count of unread notifications
        response = client.get(url("orders:dashboard", nhn))
    assert response.status_code == 200
    body = response.content.decode()
    assert response.context["failed_jobs"] == 1
    assert response.context["unverified"] == 1
    assert reverse("tenants:product_verification", args=[nhn.orgnr]) in body
    statuses = {item.key: item.count for item, _url in response.context["statuses"]}
    assert statuses == {"active": 2, "failed": 1, "setting_up": 1, "revoked": 1, "waiting": 1}
    rows = {service.code: counts for service, counts in response.context["service_rows"]}
    # patient is active in production for two kommuner, in test for none
    assert rows["patient"] == [0, 2]
    assert "Kommuner med aktiv tilgang" in body  # bokmål by default


# --- The matrix ----------------------------------------------------------------------------------


def cell(response: Any, kommune: Organisation, code: str) -> Any:
    for row_kommune, cells in response.context["table"]:
        if row_kommune == kommune:
            return next(c for c in cells if c.service.code == code)
    raise AssertionError(f"{kommune} is not a row")


def test_the_matrix_counts_each_status_by_kommune_and_service_with_words_and_colour(
    client: Client, people: dict[str, User], nhn: Organisation, world: World, grants: Any
) -> None:
    response = as_(client, people["nhn_auditor"]).get(url("orders:matrix", nhn))
    assert response.status_code == 200
    patient = cell(response, world.kommune, "patient")
    assert [(c.key, c.count, c.colour) for c in patient.counts] == [
        ("active", 1, "success"),
        ("failed", 1, "danger"),
    ]
    care_plan = cell(response, world.kommune, "care-plan")
    assert [(c.key, c.count) for c in care_plan.counts] == [("setting_up", 1), ("revoked", 1)]
    waiting = cell(response, world.kommune, "episode-of-care")
    assert [(c.key, c.count) for c in waiting.counts] == [("waiting", 1)]
    assert cell(response, world.kommune, "observation").url == ""
    body = response.content.decode()
    assert 'role="region"' in body
    assert "table-scroll" in body
    assert "Tilgang etter kommune og tjeneste" in body
    assert '<span class="ds-tag" data-color="success">1 aktiv</span>' in body
    assert '<span class="ds-tag" data-color="danger">1 feilet</span>' in body
    assert f"{world.kommune.name}, Pasient:" in body  # each link says its kommune and service


def test_a_cell_links_to_the_grants_behind_it_with_the_filters_kept(
    client: Client, people: dict[str, User], nhn: Organisation, world: World, grants: Any
) -> None:
    as_(client, people["nhn_auditor"])
    response = client.get(url("orders:matrix", nhn, environment="production"))
    link = cell(response, world.kommune, "patient").url
    assert urlsplit(link).path == reverse("orders:nhn_grants", args=[nhn.orgnr])
    assert parse_qs(urlsplit(link).query) == {
        "environment": ["production"],
        "kommune": [world.kommune.orgnr],
        "service": ["patient"],
    }
    listed = client.get(link)
    assert listed.status_code == 200
    assert {row.status.key for row in listed.context["rows"]} == {"active", "failed"}
    assert {row.kommune for row in listed.context["rows"]} == {world.kommune}
    # A cell of waiting items only opens the items, with what each waits for.
    waiting_link = cell(response, world.kommune, "episode-of-care").url
    assert parse_qs(urlsplit(waiting_link).query)["status"] == ["waiting"]
    items = client.get(waiting_link)
    [row] = items.context["rows"]
    assert row.service.code == "episode-of-care"
    assert world.vendor.name in row.reason  # no delegation: the kommune must approve


def test_the_matrix_filters_by_vendor_environment_and_status(
    client: Client, people: dict[str, User], nhn: Organisation, world: World, grants: Any
) -> None:
    as_(client, people["nhn_operator"])
    by_vendor = client.get(url("orders:matrix", nhn, vendor=world.other_vendor.orgnr))
    assert cell(by_vendor, world.kommune, "patient").counts == []
    assert [c.key for c in cell(by_vendor, world.other_kommune, "patient").counts] == ["active"]

    in_test = client.get(url("orders:matrix", nhn, environment="test"))
    assert all(not c.counts for _k, cells in in_test.context["table"] for c in cells)

    failed = client.get(url("orders:matrix", nhn, status="failed"))
    assert [c.key for c in cell(failed, world.kommune, "patient").counts] == ["failed"]
    assert cell(failed, world.kommune, "episode-of-care").counts == []

    waiting = client.get(url("orders:matrix", nhn, status="waiting", only="on"))
    assert [k for k, _cells in waiting.context["table"]] == [world.kommune]


def test_the_matrix_finds_a_kommune_by_name_or_number_and_ignores_an_unknown_filter(
    client: Client, people: dict[str, User], nhn: Organisation, world: World
) -> None:
    as_(client, people["nhn_auditor"])
    number = world.other_kommune.kommune.number  # type: ignore[union-attr]
    found = client.get(url("orders:matrix", nhn, q=number))
    assert [k for k, _cells in found.context["table"]] == [world.other_kommune]
    odd = client.get(url("orders:matrix", nhn, status="nonsense", vendor="123"))
    assert odd.status_code == 200
    assert len(odd.context["table"]) == 2  # the filter is left out, and the field says so
    assert odd.context["form"].errors.keys() == {"status", "vendor"}


def test_an_empty_matrix_says_what_to_do_next(
    client: Client, people: dict[str, User], nhn: Organisation
) -> None:
    response = as_(client, people["nhn_auditor"]).get(url("orders:matrix", nhn, q="Atlantis"))
    assert response.context["table"] == []
    assert "Ingen kommune passer" in response.content.decode()


def matrix_queries(client: Client, nhn: Organisation) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url("orders:matrix", nhn))
    assert response.status_code == 200
    return len(queries)


def test_the_matrix_reads_in_the_same_number_of_queries_for_any_number_of_kommuner(
    client: Client,
    people: dict[str, User],
    nhn: Organisation,
    world: World,
    grants: Any,
    django_assert_max_num_queries: Any,
) -> None:
    as_(client, people["nhn_auditor"])
    few = matrix_queries(client, nhn)
    services = list(Service.objects.all())
    product = ProductFactory(vendor=world.vendor)
    for n in range(40):
        kommune = KommuneOrganisationFactory()
        grant_client = ClientFactory(product=product, environment=Environment.PRODUCTION)
        for service in services[: 1 + n % len(services)]:
            GrantFactory(client=grant_client, kommune=kommune, service=service)
    assert matrix_queries(client, nhn) == few
    with django_assert_max_num_queries(12):
        client.get(url("orders:matrix", nhn, vendor=world.vendor.orgnr, only="on"))


def test_the_grants_list_pages_and_reads_in_constant_queries(
    client: Client,
    people: dict[str, User],
    nhn: Organisation,
    world: World,
    django_assert_max_num_queries: Any,
) -> None:
    patient = Service.objects.get(code="patient")
    for _n in range(30):
        GrantFactory(client=world.client, service=patient)
    as_(client, people["nhn_auditor"])
    with django_assert_max_num_queries(12):
        first = client.get(url("orders:nhn_grants", nhn, service="patient"))
    assert len(first.context["rows"]) == 25
    second = client.get(url("orders:nhn_grants", nhn, service="patient", page="2", sort="kommune"))
    assert len(second.context["rows"]) == 5
    assert "Grants" in str(second.context["crumbs"][-1][1]) or second.status_code == 200


def test_the_grants_list_in_english_says_municipality_words_and_english_dates(
    client: Client, people: dict[str, User], nhn: Organisation, grants: Any
) -> None:
    as_(client, people["nhn_auditor"])
    response = client.get(url("orders:nhn_grants", nhn), HTTP_ACCEPT_LANGUAGE="en")
    body = response.content.decode()
    assert "Who has which access" in body
    assert '<span class="ds-tag" data-color="danger">Failed</span>' in body
    assert "1 order item for these filters waits." in body
