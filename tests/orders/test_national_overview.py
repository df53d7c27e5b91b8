"""NHN's national overview against a known world: kommuner onboarded per service and environment,
active grants over time, provisioning health; its API and who may read it (issue 13, point 8)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from orders.models import (
    AccessRequest,
    AccessRequestItem,
    Grant,
    GrantStatus,
    ItemStatus,
    ProvisioningJob,
    Service,
)
from orders.overview import buckets, months_before, national_overview, percentile
from tenants.models import Environment, Organisation
from tests.factories import ClientFactory, GrantFactory, UserFactory

pytestmark = pytest.mark.django_db

OSLO = datetime.timezone(datetime.timedelta(hours=2))  # Europe/Oslo in summer
#: A Monday at noon, Oslo time.
NOW = datetime.datetime(2026, 6, 15, 12, 0, tzinfo=OSLO)


def at(day: str, hour: int = 12) -> datetime.datetime:
    return datetime.datetime.fromisoformat(day).replace(hour=hour, tzinfo=OSLO)


def grant(
    kommune: Organisation,
    *,
    created: str,
    status: str = GrantStatus.ACTIVE,
    revoked: str | None = None,
    environment: str = Environment.PRODUCTION,
    service: str = "patient",
    **fields: Any,
) -> Grant:
    made = GrantFactory(
        kommune=kommune,
        client=ClientFactory(environment=environment),
        service=Service.objects.get(code=service),
        status=status,
    )
    Grant.objects.filter(pk=made.pk).update(
        created_at=at(created), revoked_at=at(revoked) if revoked else None, **fields
    )
    made.refresh_from_db()
    return made


def test_months_and_weeks_are_counted_from_the_day_given() -> None:
    assert months_before(datetime.date(2026, 6, 15), 1) == datetime.date(2026, 5, 15)
    assert months_before(datetime.date(2026, 3, 31), 1) == datetime.date(2026, 2, 28)
    assert months_before(datetime.date(2026, 1, 10), 24) == datetime.date(2024, 1, 10)
    spans = buckets(datetime.date(2026, 6, 17), months=1, interval="week")
    assert spans[0] == (datetime.date(2026, 5, 11), datetime.date(2026, 5, 17))  # from a Monday
    assert spans[-1] == (datetime.date(2026, 6, 15), datetime.date(2026, 6, 17))  # ends today
    days = buckets(datetime.date(2026, 6, 17), months=1, interval="day")
    assert (days[0][0], days[-1][1], len(days)) == (
        datetime.date(2026, 5, 17),
        datetime.date(2026, 6, 17),
        32,
    )


def test_kommuner_count_once_per_service_and_environment_with_an_active_grant(
    kommune: Organisation, other_kommune: Organisation
) -> None:
    grant(kommune, created="2026-06-01")
    grant(kommune, created="2026-06-02")  # a second client: still one kommune
    grant(kommune, created="2026-06-02", service="care-plan", environment=Environment.TEST)
    grant(other_kommune, created="2026-06-03", status=GrantStatus.FAILED)
    grant(other_kommune, created="2026-06-03", status=GrantStatus.REVOKED, revoked="2026-06-04")
    grant(other_kommune, created="2026-06-03", status=GrantStatus.PROVISIONING)

    overview = national_overview(now=NOW)

    counts = {row.service.code: row.kommuner for row in overview.onboarding}
    assert counts["patient"] == {"test": 0, "production": 1}
    assert counts["care-plan"] == {"test": 1, "production": 0}
    assert sum(sum(c.values()) for c in counts.values()) == 2
    assert [row.service.code for row in overview.onboarding][:2] == ["journaling", "patient"]
    assert overview.kommuner == 2


def test_grants_over_time_count_each_grant_from_granted_to_revoked(
    kommune: Organisation,
) -> None:
    grant(kommune, created="2026-04-01")  # before the window, still active
    grant(kommune, created="2026-05-20", status=GrantStatus.REVOKED, revoked="2026-06-03")
    grant(kommune, created="2026-06-02", environment=Environment.TEST)
    grant(kommune, created="2026-06-15", status=GrantStatus.REVOKING, revoked="2026-06-15")
    grant(kommune, created="2026-05-12", status=GrantStatus.PENDING)  # never active: not counted
    grant(kommune, created="2026-03-01", status=GrantStatus.REVOKED, revoked="2026-04-01")

    points = national_overview(now=NOW, months=1, interval="week").points

    assert [p.start.isoformat() for p in points] == [
        "2026-05-11",
        "2026-05-18",
        "2026-05-25",
        "2026-06-01",
        "2026-06-08",
        "2026-06-15",
    ]
    assert [p.counts["production"] for p in points] == [1, 2, 2, 1, 1, 1]
    assert [p.counts["test"] for p in points] == [0, 0, 0, 1, 1, 1]
    days = national_overview(now=NOW, months=1, interval="day").points
    by_day = {p.start.isoformat(): p.counts["production"] for p in days}
    assert (by_day["2026-05-19"], by_day["2026-05-20"], by_day["2026-06-02"]) == (1, 2, 2)
    assert (by_day["2026-06-03"], by_day["2026-06-15"]) == (1, 1)  # revoked that day: not counted


def test_an_order_to_active_time_is_read_from_the_newest_order_before_activation(
    world: Any,
) -> None:
    requester = UserFactory()
    durations = [10, 20, 30, 40, 50, 60, 70, 80, 90, 1000]  # seconds
    for seconds in durations:
        made = GrantFactory(kommune=world.kommune, client=ClientFactory())
        active = NOW - datetime.timedelta(hours=2)
        Grant.objects.filter(pk=made.pk).update(status_changed_at=active)
        for placed in (
            active - datetime.timedelta(seconds=seconds),
            active - datetime.timedelta(days=3),
        ):
            order = AccessRequest.objects.create(
                client=made.client,
                kommune=world.kommune,
                initiated_by="vendor",
                requested_by=requester,
            )
            AccessRequest.objects.filter(pk=order.pk).update(created_at=placed)
            AccessRequestItem.objects.create(
                request=order,
                service=made.service,
                access="read",
                status=ItemStatus.APPROVED,
                grant=made,
            )
    # Not counted: active before the last day; an order placed after the grant was active.
    old = GrantFactory(kommune=world.kommune)
    Grant.objects.filter(pk=old.pk).update(status_changed_at=NOW - datetime.timedelta(days=2))
    later = AccessRequest.objects.create(
        client=old.client, kommune=world.kommune, initiated_by="vendor", requested_by=requester
    )
    AccessRequestItem.objects.create(
        request=later, service=old.service, access="read", status=ItemStatus.APPROVED, grant=old
    )

    health = national_overview(now=NOW).health

    assert health.activated == 10
    assert health.order_to_active_p50 == datetime.timedelta(seconds=50)
    assert health.order_to_active_p95 == datetime.timedelta(seconds=1000)


def test_provisioning_health_counts_the_queue_and_the_failures(world: Any) -> None:
    client = world.client
    ProvisioningJob.objects.all().delete()
    jobs = [
        ("pending", NOW - datetime.timedelta(hours=2), None),
        ("pending", NOW - datetime.timedelta(minutes=5), None),
        ("running", NOW - datetime.timedelta(minutes=1), None),
        ("failed", NOW - datetime.timedelta(days=4), NOW - datetime.timedelta(hours=3)),
        ("failed", NOW - datetime.timedelta(days=4), NOW - datetime.timedelta(days=3)),
        ("done", NOW - datetime.timedelta(days=9), NOW - datetime.timedelta(days=9)),
    ]
    for status, created, finished in jobs:
        job = ProvisioningJob.objects.create(
            client=client, reason="test", status=status, finished_at=finished
        )
        ProvisioningJob.objects.filter(pk=job.pk).update(created_at=created)
    GrantFactory(kommune=world.kommune, status=GrantStatus.FAILED)

    health = national_overview(now=NOW).health

    assert (health.pending, health.running) == (2, 1)
    assert (health.failed_jobs, health.failed_last_day, health.failed_grants) == (2, 1, 1)
    assert health.oldest_pending_age == datetime.timedelta(hours=2)
    assert (health.activated, health.order_to_active_p50) == (0, None)


def test_percentiles_are_by_nearest_rank() -> None:
    values = [datetime.timedelta(seconds=s) for s in range(1, 21)]

    assert percentile(values, 50) == datetime.timedelta(seconds=10)
    assert percentile(values, 95) == datetime.timedelta(seconds=19)
    assert percentile(values[:1], 95) == datetime.timedelta(seconds=1)
    assert percentile([], 50) is None


def test_a_period_outside_the_choices_is_refused() -> None:
    with pytest.raises(ValueError, match="25 months"):
        national_overview(now=NOW, months=25)
    with pytest.raises(ValueError, match="hour"):
        national_overview(now=NOW, interval="hour")
    with pytest.raises(ValueError, match="6 months per day"):
        national_overview(now=NOW, months=6, interval="day")


# --- The API -----------------------------------------------------------------------------------


def as_(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("nhn_auditor", 200),
        ("nhn_operator", 200),
        ("kommune_admin", 403),
        ("vendor_admin", 403),
    ],
)
def test_the_overview_api_is_for_nhn_staff(people: dict[str, Any], who: str, expected: int) -> None:
    assert as_(people[who]).get("/api/v1/overview/").status_code == expected
    assert APIClient().get("/api/v1/overview/").status_code == 401


def test_the_overview_api_gives_the_numbers(people: dict[str, Any], kommune: Organisation) -> None:
    GrantFactory(kommune=kommune)
    GrantFactory(kommune=kommune, client=ClientFactory(environment=Environment.TEST))

    response = as_(people["nhn_auditor"]).get("/api/v1/overview/?months=3&interval=day")

    assert response.status_code == 200
    body = response.json()
    patient = next(row for row in body["onboarding"] if row["service"] == "patient")
    assert patient["kommuner"] == {"test": 1, "production": 1}
    over_time = body["grants_over_time"]
    assert (over_time["months"], over_time["interval"]) == (3, "day")
    assert over_time["points"][-1]["production"] == 1
    assert over_time["points"][-1]["test"] == 1
    assert 89 <= len(over_time["points"]) <= 93
    provisioning = body["provisioning"]
    assert set(provisioning) >= {"pending", "failed_jobs", "oldest_pending_age_seconds"}
    assert set(provisioning["order_to_active"]) == {"grants", "p50_seconds", "p95_seconds"}


def test_the_overview_is_read_once_a_minute_per_period_and_says_when(
    people: dict[str, Any], kommune: Organisation, settings: Any
) -> None:
    """National aggregates are the dearest reads at national scale: a second look within the
    minute gets the same figures, as of the same moment, without reading them again."""
    settings.TILGANG_OVERVIEW_SECONDS = 60
    client = as_(people["nhn_auditor"])
    GrantFactory(kommune=kommune)
    first = client.get("/api/v1/overview/").json()
    GrantFactory(kommune=kommune, client=ClientFactory(environment=Environment.TEST))

    with CaptureQueriesContext(connection) as captured:
        again = client.get("/api/v1/overview/").json()
    other_period = client.get("/api/v1/overview/?months=3&interval=day").json()

    assert again == first
    assert not any("orders_grant" in q["sql"] for q in captured.captured_queries)
    patient = next(row for row in other_period["onboarding"] if row["service"] == "patient")
    assert patient["kommuner"] == {"test": 1, "production": 1}
    assert other_period["at"] > first["at"]

    settings.TILGANG_OVERVIEW_SECONDS = 0  # kept no time: each look reads the figures
    cache.clear()
    client.get("/api/v1/overview/")
    GrantFactory(kommune=kommune, client=ClientFactory(environment=Environment.TEST))
    later = client.get("/api/v1/overview/").json()
    patient = next(row for row in later["onboarding"] if row["service"] == "patient")
    assert patient["kommuner"] == {"test": 1, "production": 1}
    assert later["grants_over_time"]["points"][-1]["test"] == 2


def test_a_bad_period_is_a_400_with_field_errors(people: dict[str, Any]) -> None:
    response = as_(people["nhn_auditor"]).get("/api/v1/overview/?months=7&interval=hour")

    assert response.status_code == 400
    assert set(response.json()) == {"months", "interval"}
    daily = as_(people["nhn_auditor"]).get("/api/v1/overview/?months=6&interval=day")
    assert daily.status_code == 400
    assert "3 måneder" in daily.json()["interval"][0]  # in bokmål, the default


def test_the_overview_reads_the_same_number_of_queries_for_more_grants(
    people: dict[str, Any], world: Any
) -> None:
    client = as_(people["nhn_auditor"])

    def queries() -> int:
        cache.clear()  # read the figures, not the minute's copy of them
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/v1/overview/").status_code == 200
        return len(captured.captured_queries)

    before = queries()
    for code in ("patient", "care-plan", "observation"):
        made = world.vendor_grants(f"{code}.read" if code != "observation" else "observation.write")
        Grant.objects.filter(pk__in=[g.pk for g in made]).update(status=GrantStatus.ACTIVE)
    assert queries() == before
