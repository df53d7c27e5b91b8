"""``/api/v1/access-history/``: who sees whose history, bad questions, and the CSV."""

from __future__ import annotations

import csv
import datetime
import io
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.serializers import ModelSerializer
from rest_framework.test import APIClient

from orders.api.serializers import AccessPeriodSerializer
from orders.history import HistoryQuery, access_history
from orders.models import Grant, GrantPeriod, GrantStatus
from orders.services import grant_periods_close, grant_periods_open
from tests.conftest import World
from tests.factories import GrantFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/access-history/"
T0 = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)


def had_access(grant: Grant, start: datetime.datetime, end: datetime.datetime | None) -> Grant:
    grant_periods_open(grants=[grant], at=start)
    if end is not None:
        grant_periods_close(grant_ids=[grant.pk], at=end, end=GrantPeriod.End.REVOKED)
    return grant


@pytest.fixture
def grants(world: World) -> dict[str, Grant]:
    """The world's client in its kommune, and the other vendor's client in the other kommune,
    both with access from T0 for a day."""
    day = T0 + datetime.timedelta(days=1)
    return {
        "ours": had_access(
            GrantFactory(
                client=world.client,
                kommune=world.kommune,
                instruction=world.instruction,
                delegation=world.delegation,
                approved_automatically=True,
            ),
            T0,
            day,
        ),
        "theirs": had_access(
            GrantFactory(client=world.other_client, kommune=world.other_kommune), T0, day
        ),
    }


def revoked_grant(world: World, kommune: Any) -> Grant:
    """One more grant of the world's client (revoked now: only one of an item is live)."""
    return GrantFactory(client=world.client, kommune=kommune, status=GrantStatus.REVOKED)


def ask(user: Any, **params: Any) -> Any:
    api = APIClient()
    if user is not None:
        api.force_authenticate(user)
    return api.get(URL, params)


def seen(world: World, who: str, **params: Any) -> set[str]:
    response = ask(world.people[who], at=(T0 + datetime.timedelta(hours=1)).isoformat(), **params)
    assert response.status_code == 200, response.content
    return {row["grant"] for row in response.json()["results"]}


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("nhn_auditor", {"ours", "theirs"}),
        ("nhn_operator", {"ours", "theirs"}),
        ("kommune_admin", {"ours"}),
        ("kommune_reader", {"ours"}),
        ("vendor_admin", {"ours"}),
        ("vendor_developer", {"ours"}),
        ("other_kommune_admin", {"theirs"}),
        ("other_vendor_admin", {"theirs"}),
    ],
)
def test_each_sees_the_history_of_their_own_kommune_or_clients_only(
    world: World, grants: dict[str, Grant], who: str, expected: set[str]
) -> None:
    assert seen(world, who) == {str(grants[name].pk) for name in expected}


def test_a_kommune_admin_asking_for_another_kommune_gets_nothing(
    world: World, grants: dict[str, Grant]
) -> None:
    assert seen(world, "other_kommune_admin", kommune=world.kommune.orgnr) == set()
    assert seen(world, "kommune_admin", kommune=world.other_kommune.orgnr) == set()
    assert seen(world, "kommune_admin", vendor=world.other_vendor.orgnr) == set()
    assert seen(world, "kommune_admin", client=str(world.other_client.pk)) == set()
    assert seen(world, "other_vendor_admin", client=str(world.client.pk)) == set()


def test_outsiders_are_asked_to_log_in(grants: dict[str, Grant]) -> None:
    assert ask(None).status_code in (401, 403)


def test_a_person_without_a_membership_sees_nothing(
    world: World, grants: dict[str, Grant], django_user_model: Any
) -> None:
    nobody = django_user_model.objects.create_user("nobody@example.test")
    response = ask(nobody, **{"from": T0.isoformat()})
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"at": "yesterday"}, "at"),
        ({"at": "2026-13-01T00:00"}, "at"),
        ({"from": "2026-03-01T25:00"}, "from"),
        ({"to": "soon"}, "to"),
        ({"kommune": "123456789"}, "kommune"),
        ({"kommune": "not an orgnr"}, "kommune"),
        ({"vendor": "958935420"}, "vendor"),  # a kommune's orgnr, not a vendor's
        ({"service": "no-such-service"}, "service"),
        ({"access": "admin"}, "access"),
        ({"client": "not a client!"}, "client"),
        ({"from": "2026-03-02T00:00Z", "to": "2026-03-01T00:00Z"}, "to"),
        ({"from": "2026-03-01T00:00Z", "to": "2026-03-01T00:00Z"}, "to"),
        ({"at": "2026-03-01T00:00Z", "from": "2026-02-01T00:00Z"}, "at"),
        ({"at": "2026-03-01T00:00Z", "to": "2026-04-01T00:00Z"}, "at"),
    ],
)
@pytest.mark.parametrize("as_csv", [False, True], ids=["json", "csv"])
def test_a_bad_question_is_answered_400_with_the_field_that_is_wrong(
    world: World, grants: dict[str, Grant], params: dict[str, str], field: str, as_csv: bool
) -> None:
    if as_csv:
        params = {**params, "format": "csv"}

    response = ask(world.people["nhn_auditor"], **params)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert list(response.json()) == [field]
    assert response.json()[field][0]


def test_times_are_read_with_their_offset_or_as_norwegian_time(
    world: World, grants: dict[str, Grant]
) -> None:
    """T0 is 13:00 in Oslo in March; a period starts there and holds from that moment."""
    ours = str(grants["ours"].pk)
    auditor = world.people["nhn_auditor"]

    def at(value: str) -> list[str]:
        response = ask(auditor, kommune=world.kommune.orgnr, at=value)
        assert response.status_code == 200, response.content
        return [row["grant"] for row in response.json()["results"]]

    assert at("2026-03-01T12:00:00Z") == [ours]
    assert at("2026-03-01T12:00:00+00:00") == [ours]
    assert at("2026-03-01T13:00:00+01:00") == [ours]
    assert at("2026-03-01T13:00") == [ours]  # no offset: Norwegian time
    assert at("2026-03-01T12:59:59") == []
    assert at("2026-03-01") == []  # a day alone: its first moment
    assert at("2026-03-02") == [ours]
    assert at("2026-03-02T13:00") == []  # ended a day after it started


def test_a_page_of_the_answer_names_everything_the_question_is_about(
    world: World, grants: dict[str, Grant]
) -> None:
    response = ask(
        world.people["kommune_reader"], **{"from": T0.isoformat(), "to": "2026-04-01T00:00Z"}
    )
    [row] = response.json()["results"]
    assert row["kommune"] == world.kommune.orgnr
    assert row["kommune_name"] == world.kommune.name
    assert row["vendor"] == world.vendor.orgnr
    assert row["client_name"] == world.client.name
    assert row["environment"] == "production"
    assert row["scope"] == "nhn:ksp/patient.read"
    assert datetime.datetime.fromisoformat(row["started_at"]) == T0
    assert datetime.datetime.fromisoformat(row["ended_at"]) == T0 + datetime.timedelta(days=1)
    assert row["ended_by"] == "revoked"
    assert row["approval"] == "policy"
    assert row["instruction"]["version"] == world.instruction.version
    assert row["delegation"]["id"] == str(world.delegation.pk)


def test_the_answer_pages_in_a_fixed_number_of_queries(
    world: World, django_assert_max_num_queries: Any
) -> None:
    for kommune in (world.kommune, world.other_kommune):
        for _ in range(15):
            had_access(revoked_grant(world, kommune), T0, None)
    api = APIClient()
    api.force_authenticate(world.people["nhn_auditor"])
    with django_assert_max_num_queries(6):
        response = api.get(URL, {"limit": 50})
    assert len(response.json()["results"]) == 30


def test_the_csv_holds_every_row_in_one_streamed_file(
    world: World, grants: dict[str, Grant]
) -> None:
    for _ in range(3):
        had_access(revoked_grant(world, world.kommune), T0, None)
    response = ask(world.people["kommune_admin"], **{"from": T0.isoformat(), "format": "csv"})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="access-history-')
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4
    assert {row["kommune"] for row in rows} == {world.kommune.orgnr}
    first = next(row for row in rows if row["grant"] == str(grants["ours"].pk))
    assert first["started_at"] == timezone.localtime(T0).isoformat()
    assert first["ended_by"] == "revoked"
    assert first["approval"] == "policy"
    assert first["instruction_version"] == str(world.instruction.version)


def test_a_name_that_would_start_a_spreadsheet_formula_is_quoted_in_the_csv(
    world: World, grants: dict[str, Grant]
) -> None:
    world.client.name = '=HYPERLINK("http://evil.example","x")'
    world.client.save(update_fields=["name"])

    response = ask(world.people["nhn_auditor"], **{"from": T0.isoformat(), "format": "csv"})

    text = b"".join(response.streaming_content).decode()
    names = [row["client_name"] for row in csv.DictReader(io.StringIO(text))]
    assert "'" + world.client.name in names
    assert world.client.name not in names


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+14:00",
        "0001-01-01",
        "9999-12-31T23:59:59-12:00",
        "9999-12-31",
        "2026-03-29T02:30",  # does not exist in Oslo: the clocks went from 02:00 to 03:00
        "2026-10-25T02:30",  # exists twice in Oslo
        "2026-03-01T12:00:00.123456789Z",
        "2026-03-01T12:00:00+25:00",
        "\x00",
        "2026-03-01T12:00:00" + "0" * 5000,
    ],
)
def test_odd_moments_are_answered_never_with_a_server_error(
    world: World, grants: dict[str, Grant], value: str
) -> None:
    for name in ("at", "from", "to"):
        response = ask(world.people["nhn_auditor"], **{name: value})
        assert response.status_code in (200, 400), (name, value, response.content[:300])


def test_the_rows_written_out_are_what_the_declared_fields_make_of_them(
    world: World, grants: dict[str, Grant]
) -> None:
    """The serializer writes its rows out by hand (for speed): as its fields would."""
    grant = grants["ours"]
    grant.approved_by = world.people["kommune_admin"]
    grant.service_codes = ["TA", "RT"]
    grant.save(update_fields=["approved_by", "service_codes"])
    world.delegation.valid_until = datetime.date(2027, 1, 1)
    world.delegation.revoked_at = T0
    world.delegation.save(update_fields=["valid_until", "revoked_at"])
    grant_periods_open(grants=[grant], at=T0 + datetime.timedelta(days=2))
    for period in GrantPeriod.objects.all():
        [shown] = access_history(
            user=world.people["nhn_auditor"],
            query=HistoryQuery(start=period.started_at - datetime.timedelta(seconds=1)),
        ).filter(pk=period.pk)
        serializer = AccessPeriodSerializer()
        assert serializer.to_representation(shown) == ModelSerializer.to_representation(
            serializer, shown
        )
