"""``GET /api/v1/data-access/``: the gateway's calls and their daily counts, each reader seeing
their own (NHN everything, a kommune its own, a vendor its clients'), bad filters a 400; and
the retention purge."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from portal.celery import app as celery_app
from provisioning import access_log, data_access, tasks
from provisioning.models import DataAccessEntry
from tenants.models import OAuthClient
from tests.conftest import World
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/data-access/"
NOW = timezone.now()


def call(
    world: World,
    *,
    client: OAuthClient | None = None,
    kommune: str | None = None,
    service: str = "patient",
    status: int = 200,
    ago: datetime.timedelta = datetime.timedelta(hours=1),
    path: str = "Patient/1",
    at: datetime.datetime | None = None,
) -> DataAccessEntry:
    """One call, loaded the way the collector loads it: from a line of the gateway's format."""
    orgnr = world.kommune.orgnr if kommune is None else kommune
    raw = access_log.line_format(
        at=at or NOW - ago,
        client_id=(client or world.client).client_id,
        kommune=orgnr,
        service=service,
        access="read",
        environment="production",
        path=f"/{orgnr}/fhir/{path}",
        status=status,
    )
    row = access_log.line_parse(raw.rstrip(b"\n"))
    assert row is not None
    return DataAccessEntry.objects.create(**dict(zip(access_log.COLUMNS, row, strict=True)))


@pytest.fixture
def calls(world: World) -> dict[str, DataAccessEntry]:
    OAuthClient.objects.filter(pk=world.client.pk).update(client_id="tilgang-ours")
    OAuthClient.objects.filter(pk=world.other_client.pk).update(client_id="tilgang-theirs")
    world.client.refresh_from_db()
    world.other_client.refresh_from_db()
    return {
        "ours": call(world),
        "ours_refused": call(world, service="observation", status=403),
        "theirs_here": call(world, client=world.other_client, status=200),
        "ours_elsewhere": call(world, kommune=world.other_kommune.orgnr),
        "theirs_elsewhere": call(
            world, client=world.other_client, kommune=world.other_kommune.orgnr
        ),
    }


def read(api: APIClient, user: Any, **params: Any) -> Any:
    api.force_authenticate(user)
    response = api.get(URL, params)
    assert response.status_code == 200, response.content
    return response.json()


def ids(page: Any) -> set[int]:
    return {row["id"] for row in page["results"]}


def pks(calls: dict[str, DataAccessEntry], *names: str) -> set[int]:
    return {calls[name].pk for name in names}


# -- Who reads what --------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["nhn_operator", "nhn_auditor"])
def test_nhn_staff_read_every_kommunes_calls(
    api_client: APIClient, world: World, calls: dict[str, DataAccessEntry], who: str
) -> None:
    page = read(api_client, world.people[who])

    assert ids(page) == pks(calls, *calls)


@pytest.mark.parametrize("who", ["kommune_admin", "kommune_reader"])
def test_a_kommunes_members_read_the_calls_to_it_including_the_refused_ones(
    api_client: APIClient, world: World, calls: dict[str, DataAccessEntry], who: str
) -> None:
    page = read(api_client, world.people[who])

    assert ids(page) == pks(calls, "ours", "ours_refused", "theirs_here")
    refused = next(row for row in page["results"] if row["id"] == calls["ours_refused"].pk)
    assert refused == {
        "id": calls["ours_refused"].pk,
        "occurred_at": refused["occurred_at"],
        "client_id": "tilgang-ours",
        "kommune": world.kommune.orgnr,
        "service": "observation",
        "access": "read",
        "environment": "production",
        "method": "GET",
        "path": f"/{world.kommune.orgnr}/fhir/Patient/1",
        "status": 403,
        "duration_ms": 1,
        "refused": True,
    }


def test_a_kommune_admin_sees_no_other_kommunes_calls_even_when_asking_for_them(
    api_client: APIClient, world: World, calls: dict[str, DataAccessEntry]
) -> None:
    page = read(api_client, world.people["kommune_admin"], kommune=world.other_kommune.orgnr)

    assert page["results"] == []
    assert page["daily"] == []
    other = read(api_client, world.people["other_kommune_admin"])
    assert ids(other) == pks(calls, "ours_elsewhere", "theirs_elsewhere")


@pytest.mark.parametrize("who", ["vendor_admin", "vendor_developer"])
def test_a_vendors_members_read_only_their_clients_calls(
    api_client: APIClient, world: World, calls: dict[str, DataAccessEntry], who: str
) -> None:
    page = read(api_client, world.people[who])

    assert ids(page) == pks(calls, "ours", "ours_refused", "ours_elsewhere")
    assert ids(read(api_client, world.people["other_vendor_admin"])) == pks(
        calls, "theirs_here", "theirs_elsewhere"
    )


def test_someone_of_no_organisation_reads_nothing_and_no_one_logged_out_reads_at_all(
    api_client: APIClient, calls: dict[str, DataAccessEntry]
) -> None:
    page = read(api_client, UserFactory())
    assert page["results"] == []
    assert page["daily"] == []

    api_client.force_authenticate(None)
    assert api_client.get(URL).status_code in (401, 403)


def test_a_call_no_valid_token_named_is_the_kommunes_alone(
    api_client: APIClient, world: World, calls: dict[str, DataAccessEntry]
) -> None:
    """A 401 has no client_id: it is the kommune's (its path names it), no vendor's."""
    anonymous = call(world, client=OAuthClient(client_id=""), service="", status=401)

    assert anonymous.pk in ids(read(api_client, world.people["kommune_admin"]))
    assert anonymous.pk not in ids(read(api_client, world.people["vendor_admin"]))


# -- Counts and filters ----------------------------------------------------------------------


def test_the_daily_counts_are_per_local_day_service_client_and_status_class(
    api_client: APIClient, world: World, calls: dict[str, DataAccessEntry]
) -> None:
    # 22:30 UTC on 1 June is 00:30 on 2 June in Oslo (summer time).
    late = datetime.datetime(2026, 6, 1, 22, 30, tzinfo=datetime.UTC)
    call(world, at=late)
    call(world, at=late, status=404)
    call(world, at=late - datetime.timedelta(hours=2), status=403)
    call(world, at=late - datetime.timedelta(hours=2), status=503)

    page = read(
        api_client, world.people["kommune_admin"], **{"from": "2026-06-01", "to": "2026-06-02"}
    )

    assert page["daily"] == [
        {
            "day": "2026-06-01",
            "service": "patient",
            "client_id": "tilgang-ours",
            "status_class": "4xx",
            "calls": 1,
            "refused": 1,
        },
        {
            "day": "2026-06-01",
            "service": "patient",
            "client_id": "tilgang-ours",
            "status_class": "5xx",
            "calls": 1,
            "refused": 0,  # the service failed; the gateway let it through
        },
        {
            "day": "2026-06-02",
            "service": "patient",
            "client_id": "tilgang-ours",
            "status_class": "2xx",
            "calls": 1,
            "refused": 0,
        },
        {
            "day": "2026-06-02",
            "service": "patient",
            "client_id": "tilgang-ours",
            "status_class": "4xx",
            "calls": 1,
            "refused": 1,
        },
    ]
    assert page["from"].startswith("2026-06-01T00:00:00+02:00")
    assert page["to"].startswith("2026-06-03T00:00:00+02:00")


def test_the_period_is_the_last_30_days_unless_asked(
    api_client: APIClient, world: World, calls: dict[str, DataAccessEntry]
) -> None:
    old = call(world, ago=datetime.timedelta(days=31))
    admin = world.people["kommune_admin"]

    assert old.pk not in ids(read(api_client, admin))
    since = (NOW - datetime.timedelta(days=40)).date().isoformat()
    assert old.pk in ids(read(api_client, admin, **{"from": since}))
    until = (NOW - datetime.timedelta(days=30)).isoformat()
    assert ids(read(api_client, admin, **{"to": until})) == {old.pk}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"service": "observation"}, {"ours_refused"}),
        ({"client": "tilgang-theirs"}, {"theirs_here"}),
        ({"client": "CLIENT_NAME"}, {"theirs_here"}),
        ({"client": "CLIENT_PK"}, {"theirs_here"}),
        ({"client": "nobody"}, set()),
        ({"refused": "true"}, {"ours_refused"}),
        ({"refused": "false"}, {"ours", "theirs_here"}),
        ({"kommune": "OURS"}, {"ours", "ours_refused", "theirs_here"}),
    ],
)
def test_the_filters_select_by_service_client_refusal_and_kommune(
    api_client: APIClient,
    world: World,
    calls: dict[str, DataAccessEntry],
    params: dict[str, str],
    expected: set[str],
) -> None:
    replace = {
        "CLIENT_NAME": world.other_client.name,
        "CLIENT_PK": str(world.other_client.pk),
        "OURS": world.kommune.orgnr,
    }
    asked = {key: replace.get(value, value) for key, value in params.items()}

    page = read(api_client, world.people["kommune_admin"], **asked)

    assert ids(page) == pks(calls, *expected)
    assert sum(day["calls"] for day in page["daily"]) == len(expected)


def test_the_calls_come_newest_first_a_page_at_a_time(
    api_client: APIClient, world: World, django_assert_max_num_queries: Any
) -> None:
    made = [call(world, ago=datetime.timedelta(minutes=n)) for n in range(7)]
    api_client.force_authenticate(world.people["kommune_admin"])

    with django_assert_max_num_queries(8):
        first = api_client.get(URL, {"limit": 3}).json()
    second = api_client.get(first["next"]).json()

    assert [row["id"] for row in first["results"]] == [m.pk for m in made[:3]]
    assert [row["id"] for row in second["results"]] == [m.pk for m in made[3:6]]
    assert sum(day["calls"] for day in second["daily"]) == 7


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kommune": "12345"}, "kommune"),
        ({"kommune": "oslo"}, "kommune"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-12-02", "to": "2026-12-01"}, "to"),
        ({"from": "2026-12-01T12:00", "to": "2026-12-01T11:00"}, "to"),
        ({"service": "no-such-service"}, "service"),
        ({"service": "<script>"}, "service"),
        ({"refused": "maybe"}, "refused"),
        ({"client": "x" * 201}, "client"),
    ],
)
def test_bad_filters_are_a_400_naming_the_field(
    api_client: APIClient, world: World, params: dict[str, str], field: str
) -> None:
    api_client.force_authenticate(world.people["kommune_admin"])

    response = api_client.get(URL, params)

    assert response.status_code == 400
    assert field in response.json()


# -- Retention -------------------------------------------------------------------------------


def test_the_purge_deletes_what_is_older_than_the_retention_and_audits_it(
    world: World, calls: dict[str, DataAccessEntry], settings: Any, monkeypatch: Any
) -> None:
    settings.DATA_ACCESS_RETENTION_DAYS = 10
    monkeypatch.setattr(data_access, "PURGE_CHUNK", 2)  # several chunks
    old = [call(world, ago=datetime.timedelta(days=10, minutes=n)) for n in range(1, 6)]
    kept = call(world, ago=datetime.timedelta(days=9, hours=23))

    assert tasks.data_access_purge() == 5

    assert not DataAccessEntry.objects.filter(pk__in=[o.pk for o in old]).exists()
    assert DataAccessEntry.objects.filter(pk=kept.pk).exists()
    assert DataAccessEntry.objects.count() == len(calls) + 1
    events = AuditEvent.objects.filter(action="data_access.purged")
    assert sorted(e.after["deleted"] for e in events) == [1, 2, 2]
    assert {e.after["retention_days"] for e in events} == {10}
    assert data_access.data_access_purge() == 0  # nothing left to purge: nothing recorded
    assert events.count() == 3


def test_beat_runs_the_purge() -> None:
    schedule = {entry["task"] for entry in celery_app.conf.beat_schedule.values()}

    assert "provisioning.data_access_purge" in schedule
    assert "provisioning.data_access_purge" in celery_app.tasks


# -- The national overview's figure ----------------------------------------------------------


def test_the_gateway_traffic_per_service_and_day_counts_every_kommune(
    world: World, tmp_path: Path
) -> None:
    day = datetime.date(2026, 11, 30)
    noon = data_access.day_start(day) + datetime.timedelta(hours=12)
    orgnr, other = world.kommune.orgnr, world.other_kommune.orgnr

    def line(at: datetime.datetime, kommune: str = orgnr, **fields: Any) -> bytes:
        values = {"service": "patient", "status": 200, "path": f"/{kommune}/fhir/Patient/1"}
        return access_log.line_format(at=at, kommune=kommune, **{**values, **fields})

    log = tmp_path / "access.log"
    access_log.lines_write(
        log,
        [
            line(noon),
            line(noon, kommune=other, status=403),
            line(noon, service="observation", status=201),
            line(data_access.day_start(day) + datetime.timedelta(days=1)),  # its first moment
            line(noon - datetime.timedelta(days=1)),  # before the period
            line(noon, service="", status=401, path="/nowhere"),
        ],
    )
    access_log.log_collect(path=log)
    access_log.log_collect(path=log)  # nothing new: counted once

    traffic = data_access.gateway_traffic(start=day, end=day + datetime.timedelta(days=1))

    assert traffic == [
        data_access.ServiceDay(day=day, service="", calls=1, refused=1),
        data_access.ServiceDay(day=day, service="observation", calls=1, refused=0),
        data_access.ServiceDay(day=day, service="patient", calls=2, refused=1),
        data_access.ServiceDay(
            day=day + datetime.timedelta(days=1), service="patient", calls=1, refused=0
        ),
    ]
    # The counts are the log's, and outlive its purge.
    assert DataAccessEntry.objects.count() == 6
    DataAccessEntry.objects.all().delete()
    assert data_access.gateway_traffic(start=day, end=day) == traffic[:3]
