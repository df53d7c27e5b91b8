"""The gateway's traffic on NHN's national overview (page ``provisioning:national`` and
``GET /api/v1/overview/``): calls and refused calls per service and per day or week over the
chart's period, from the counts the collector keeps (``GatewayTrafficDay``)."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from provisioning.models import GatewayTrafficDay
from tenants.models import Organisation

pytestmark = pytest.mark.django_db


def national_url(nhn: Organisation) -> str:
    return reverse("provisioning:national", args=[nhn.orgnr])


@pytest.fixture
def traffic() -> datetime.date:
    """Today and yesterday in the period, and a day long before it (not counted); today."""
    today = timezone.localdate()
    yesterday = today - datetime.timedelta(days=1)
    for day, service, calls, refused in (
        (today, "patient", 120, 7),
        (yesterday, "patient", 30, 3),
        (today, "observation", 45, 0),
        (today, "", 9, 9),
        (today - datetime.timedelta(days=400), "patient", 1000, 1000),  # before the period
    ):
        GatewayTrafficDay.objects.create(day=day, service=service, calls=calls, refused=refused)
    return today


def rows(html: str, caption: str) -> list[tuple[str, ...]]:
    """The rows of the table captioned ``caption`` (its id), each as its cells' text."""
    table = html.split(f'id="{caption}"')[1].split("</table>")[0]
    return [
        tuple(
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", row)
        )
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
    ]


def test_the_page_shows_the_calls_per_service_and_per_day(
    client: Client, people: dict[str, Any], nhn: Organisation, traffic: datetime.date
) -> None:
    client.force_login(people["nhn_auditor"])

    response = client.get(
        national_url(nhn), {"months": "3", "interval": "day"}, HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 200
    html = response.content.decode()
    services = rows(html, "traffic-caption")
    assert ("Patient", "150", "10") in services
    assert ("Observation", "45", "0") in services
    assert services[-2] == ("No service (refused before one was known)", "9", "9")
    assert services[-1] == ("Total", "204", "19")  # the day long before is not in the period
    assert ("Care plan", "0", "0") in services  # every service of the catalogue, calls or not
    per_day = rows(html, "traffic-period-caption")
    assert per_day[-1][1:] == ("174", "16")  # today
    assert per_day[-2][1:] == ("30", "3")  # yesterday
    assert {row[1:] for row in per_day[1:-2]} == {("0", "0")}  # [0] is the header


def test_the_page_in_bokmal_per_week(
    client: Client, people: dict[str, Any], nhn: Organisation, traffic: datetime.date
) -> None:
    client.force_login(people["nhn_operator"])

    html = client.get(national_url(nhn), {"months": "3", "interval": "week"}).content.decode()

    assert "Trafikk gjennom gatewayen" in html
    per_week = rows(html, "traffic-period-caption")
    assert sum(int(row[1]) for row in per_week[1:]) == 204
    assert sum(int(row[2]) for row in per_week[1:]) == 19


@pytest.mark.parametrize(
    ("who", "expected"),
    [("kommune_admin", 403), ("vendor_admin", 403), ("nhn_auditor", 200), ("nhn_operator", 200)],
)
def test_the_api_gives_the_traffic_to_nhn_only(
    people: dict[str, Any], traffic: datetime.date, who: str, expected: int
) -> None:
    api = APIClient()
    api.force_authenticate(people[who])

    response = api.get("/api/v1/overview/?months=3&interval=day")

    assert response.status_code == expected
    if expected != 200:
        assert "gateway_traffic" not in response.json()
        return
    body = response.json()["gateway_traffic"]
    assert (body["calls"], body["refused"]) == (204, 19)
    services = {row["service"]: (row["calls"], row["refused"]) for row in body["services"]}
    assert services["patient"] == (150, 10)
    assert services["observation"] == (45, 0)
    assert services[""] == (9, 9)
    assert body["points"][-1] == {
        "start": traffic.isoformat(),
        "end": traffic.isoformat(),
        "calls": 174,
        "refused": 16,
    }
    assert body["points"][-2]["calls"] == 30


def test_the_traffic_costs_the_same_queries_for_more_days_and_services(
    client: Client, people: dict[str, Any], nhn: Organisation
) -> None:
    client.force_login(people["nhn_auditor"])
    api = APIClient()
    api.force_authenticate(people["nhn_auditor"])

    def queries() -> tuple[int, int]:
        counts = []
        for get in (lambda: client.get(national_url(nhn)), lambda: api.get("/api/v1/overview/")):
            cache.clear()  # read the figures, not the minute's copy of them
            with CaptureQueriesContext(connection) as captured:
                assert get().status_code == 200
            counts.append(len(captured.captured_queries))
        return counts[0], counts[1]

    before = queries()
    today = timezone.localdate()
    for days_ago in range(60):
        for service in ("patient", "observation", "care-plan", "retired-service"):
            GatewayTrafficDay.objects.create(
                day=today - datetime.timedelta(days=days_ago), service=service, calls=5, refused=1
            )
    assert queries() == before
