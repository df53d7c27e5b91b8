"""GET /api/v1/recertifications/ (what is due when) and POST .../confirm/: a kommune's admins
and readers see their own kommune's, NHN staff every kommune's; only the kommune's admins
confirm (a reader 403, another kommune's admin 404); bad input is 400 with field errors."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from orders.models import Grant, GrantStatus, Service
from recertification.models import Recertification
from recertification.selectors import months_later
from tests.conftest import World
from tests.factories import ClientFactory, GrantFactory, OrganisationFactory, ProductFactory
from tests.recertification.conftest import lapse_day

pytestmark = pytest.mark.django_db

URL = "/api/v1/recertifications/"
CONFIRM = "/api/v1/recertifications/confirm/"


def as_(world: World, who: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(world.people[who])
    return client


@pytest.fixture
def grants(world: World) -> list[Grant]:
    """The world's vendor holds two grants in the kommune; the other vendor one in the other
    kommune."""
    made = world.vendor_grants("patient.read,observation.write")
    GrantFactory(client=world.other_client, kommune=world.other_kommune)
    return made


def confirm(world: World, who: str, **body: Any) -> Any:
    data = {"kommune": world.kommune.orgnr, "vendor": world.vendor.orgnr, **body}
    return as_(world, who).post(CONFIRM, data, format="json")


def test_the_list_says_what_is_due_when_for_each_vendor(world: World, grants: list[Grant]) -> None:
    response = as_(world, "kommune_admin").get(URL, {"kommune": world.kommune.orgnr})

    assert response.status_code == 200, response.json()
    [row] = response.json()["results"]
    day = lapse_day(grants[0])
    assert row["kommune"] == world.kommune.orgnr
    assert row["vendor"] == world.vendor.orgnr
    assert row["vendor_name"] == world.vendor.name
    assert row["confirmed_at"] is None
    assert row["confirmed_by"] == ""
    assert row["lapses_on"] == day.isoformat()
    assert row["days_left"] == (day - timezone.localdate()).days
    assert row["state"] == "current"
    assert {(g["service"], g["access"]) for g in row["grants"]} == {
        ("patient", "read"),
        ("observation", "write"),
    }
    assert {g["id"] for g in row["grants"]} == {str(g.pk) for g in grants}
    assert all(g["lapses_on"] == day.isoformat() for g in row["grants"])


def test_the_list_is_soonest_due_first_and_says_when_it_is_due(
    world: World, grants: list[Grant]
) -> None:
    late = GrantFactory(client=world.other_client, kommune=world.kommune)
    Grant.objects.filter(pk=grants[0].pk).update(
        created_at=timezone.now() - datetime.timedelta(days=360)
    )

    response = as_(world, "nhn_auditor").get(URL)

    rows = response.json()["results"]
    assert (rows[0]["kommune"], rows[0]["vendor"]) == (world.kommune.orgnr, world.vendor.orgnr)
    assert rows[0]["state"] == "due"
    assert 0 < rows[0]["days_left"] <= 30
    # The other two lapse on the same day, a year on: by the kommune's name.
    rest = sorted(rows[1:], key=lambda row: row["kommune_name"])
    assert rows[1:] == rest
    assert {(r["kommune"], r["vendor"]) for r in rest} == {
        (world.kommune.orgnr, world.other_vendor.orgnr),
        (world.other_kommune.orgnr, world.other_vendor.orgnr),
    }
    assert all(r["state"] == "current" for r in rest)
    [late_row] = [r for r in rest if r["kommune"] == world.kommune.orgnr]
    assert [g["id"] for g in late_row["grants"]] == [str(late.pk)]


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("kommune_admin", {"kommune"}),
        ("kommune_reader", {"kommune"}),
        ("other_kommune_admin", {"other_kommune"}),
        ("nhn_operator", {"kommune", "other_kommune"}),
        ("nhn_auditor", {"kommune", "other_kommune"}),
        ("vendor_admin", set()),  # the consent is the kommune's: vendors read none
    ],
)
def test_each_person_sees_the_recertifications_of_their_own_kommune_nhn_staff_all(
    world: World, grants: list[Grant], who: str, sees: set[str]
) -> None:
    response = as_(world, who).get(URL)

    assert response.status_code == 200
    orgnrs = {row["kommune"] for row in response.json()["results"]}
    assert orgnrs == {getattr(world, name).orgnr for name in sees}


@pytest.mark.parametrize(
    ("who", "expected"),
    [("kommune_admin", 200), ("other_kommune_admin", 404), ("vendor_admin", 404)],
)
def test_another_kommunes_recertifications_are_not_found(
    world: World, grants: list[Grant], who: str, expected: int
) -> None:
    response = as_(world, who).get(URL, {"kommune": world.kommune.orgnr})

    assert response.status_code == expected


def test_a_malformed_orgnr_filter_is_400(world: World, grants: list[Grant]) -> None:
    response = as_(world, "nhn_auditor").get(URL, {"kommune": "12345", "vendor": "123456789"})

    assert response.status_code == 400
    assert "kommune" in response.json()


def test_a_kommune_admin_confirms_and_the_clock_starts_again(
    world: World, grants: list[Grant]
) -> None:
    Grant.objects.filter(pk=grants[0].pk).update(
        created_at=timezone.now() - datetime.timedelta(days=350)
    )

    response = confirm(world, "kommune_admin")

    assert response.status_code == 200, response.json()
    body = response.json()
    next_day = months_later(timezone.localdate(), 12)
    assert body["lapses_on"] == next_day.isoformat()
    assert sorted(body["confirmed"]) == sorted(str(g.pk) for g in grants)
    assert body["not_confirmed"] == []
    [row] = as_(world, "kommune_reader").get(URL).json()["results"]
    assert row["lapses_on"] == next_day.isoformat()
    assert row["confirmed_by"]
    assert row["confirmed_at"] is not None
    assert AuditEvent.objects.filter(action="recertification.confirmed").count() == 1


def test_grants_named_not_confirmed_are_revoked(world: World, grants: list[Grant]) -> None:
    response = confirm(world, "kommune_admin", not_confirmed=[str(grants[1].pk)])

    assert response.status_code == 200, response.json()
    assert response.json()["not_confirmed"] == [str(grants[1].pk)]
    grants[1].refresh_from_db()
    assert grants[1].status == GrantStatus.REVOKING
    assert grants[1].revoke_reason_code == "recertification_declined"


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("kommune_reader", 403),  # sees it, may not confirm
        ("nhn_operator", 403),  # reads all; the consent is the kommune's
        ("other_kommune_admin", 404),  # must not learn of the kommune's vendors
        ("vendor_admin", 404),
    ],
)
def test_only_the_kommunes_admins_confirm(
    world: World, grants: list[Grant], who: str, expected: int
) -> None:
    response = confirm(world, who)

    assert response.status_code == expected
    assert not Recertification.objects.filter(confirmed_at__isnull=False).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kommune": "123"}, "kommune"),
        ({"vendor": "not an orgnr"}, "vendor"),
        ({"vendor": None}, "vendor"),
        ({"not_confirmed": ["not-a-uuid"]}, "not_confirmed"),
        ({"not_confirmed": "everything"}, "not_confirmed"),
        # A vendor that is no vendor, or holds nothing here.
        ({"vendor": "other_vendor"}, "vendor"),
        ({"vendor": "nhn"}, "vendor"),
        # A grant that is not one of the vendor's live grants here.
        ({"not_confirmed": ["foreign"]}, "not_confirmed"),
    ],
)
def test_bad_input_is_400_with_the_field_and_changes_nothing(
    world: World, grants: list[Grant], nhn: Any, body: dict[str, Any], field: str
) -> None:
    foreign = Grant.objects.get(kommune=world.other_kommune)
    named = {
        "other_vendor": world.other_vendor.orgnr,
        "nhn": nhn.orgnr,
        "foreign": str(foreign.pk),
    }
    data = {
        key: (
            [named.get(v, v) for v in value] if isinstance(value, list) else named.get(value, value)
        )
        if value is not None
        else None
        for key, value in body.items()
    }

    response = confirm(world, "kommune_admin", **data)

    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not Recertification.objects.filter(confirmed_at__isnull=False).exists()
    assert all(
        grant.status == GrantStatus.PENDING
        for grant in Grant.objects.filter(pk__in=[g.pk for g in grants])
    )


def test_the_list_and_the_page_read_a_fixed_number_of_queries_however_many_vendors(
    world: World, grants: list[Grant]
) -> None:
    def load() -> tuple[int, int]:
        api = as_(world, "kommune_admin")
        with CaptureQueriesContext(connection) as listed:
            assert api.get(URL, {"kommune": world.kommune.orgnr}).status_code == 200
        page = Client()
        page.force_login(world.people["kommune_admin"])
        with CaptureQueriesContext(connection) as shown:
            page.get(reverse("recertification:page", args=[world.kommune.orgnr]))
        return len(listed), len(shown)

    few = load()
    for _ in range(6):
        client = ClientFactory(product=ProductFactory(vendor=OrganisationFactory(kind="vendor")))
        for code in ("patient", "care-plan"):
            GrantFactory(
                client=client, kommune=world.kommune, service=Service.objects.get(code=code)
            )
    many = load()

    assert many == few
    assert len(as_(world, "kommune_admin").get(URL).json()["results"]) == 7
