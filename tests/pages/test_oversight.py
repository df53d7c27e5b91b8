"""NHN's oversight pages: the EPJ transition register (filters, risk list, CSV) and the national
overview (its chart drawn as SVG with the same numbers as the table beside it)."""

from __future__ import annotations

import csv
import datetime
import io
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.models import Grant, GrantStatus
from tenants.models import Environment, Organisation
from tests.factories import ClientFactory, GrantFactory, ProductFactory

pytestmark = pytest.mark.django_db


def register_url(nhn: Organisation) -> str:
    return reverse("orders:epj_register", args=[nhn.orgnr])


def national_url(nhn: Organisation) -> str:
    return reverse("provisioning:national", args=[nhn.orgnr])


@pytest.fixture
def plans(kommune: Organisation, other_kommune: Organisation) -> None:
    """Oslo uses VKP and switches this year with nothing active: at risk. The other kommune has
    no VKP and switches in 2027."""
    gerica = ProductFactory(system_type="EPJ", name="Gerica")
    Organisation.objects.filter(pk=kommune.pk).update(
        uses_vkp=True, epj_switch_product=gerica, epj_switch_date=datetime.date(2026, 12, 1)
    )
    Organisation.objects.filter(pk=other_kommune.pk).update(
        uses_vkp=False, epj_switch_product=gerica, epj_switch_date=datetime.date(2027, 3, 1)
    )


@pytest.mark.parametrize(
    ("who", "at", "expected"),
    [
        ("nhn_auditor", "nhn", 200),
        ("nhn_operator", "nhn", 200),
        ("kommune_admin", "nhn", 404),  # not a member of NHN
        ("kommune_admin", "kommune", 404),  # a kommune has no such page
        ("vendor_admin", "vendor", 404),
    ],
)
@pytest.mark.parametrize("page", ["orders:epj_register", "provisioning:national"])
def test_the_oversight_pages_are_nhns(
    client: Client,
    people: dict[str, Any],
    nhn: Organisation,
    kommune: Organisation,
    vendor: Organisation,
    page: str,
    who: str,
    at: str,
    expected: int,
) -> None:
    client.force_login(people[who])
    orgnr = {"nhn": nhn, "kommune": kommune, "vendor": vendor}[at].orgnr

    assert client.get(reverse(page, args=[orgnr])).status_code == expected


def test_the_menu_of_nhn_leads_to_both_pages(
    client: Client, people: dict[str, Any], nhn: Organisation
) -> None:
    client.force_login(people["nhn_auditor"])

    html = client.get(reverse("orders:dashboard", args=[nhn.orgnr])).content.decode()

    assert f'href="{register_url(nhn)}"' in html
    assert f'href="{national_url(nhn)}"' in html


def test_the_register_names_the_kommuner_at_risk_and_each_path(
    client: Client, people: dict[str, Any], nhn: Organisation, kommune: Organisation, plans: None
) -> None:
    client.force_login(people["nhn_auditor"])

    response = client.get(register_url(nhn), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    html = response.content.decode()
    risk_list = html.split('id="risk-heading"')[1].split("</section>")[0]
    assert kommune.name in risk_list
    assert "1 kommune at risk, the earliest switch first" in risk_list
    assert "Patient" in risk_list  # a service it relies on, not active
    assert "The new information services" in html
    assert "Consider VKP onboarding" in html
    assert "2 kommuner are in the register" in html


def test_the_register_filters_and_keeps_the_risk_list_whole(
    client: Client,
    people: dict[str, Any],
    nhn: Organisation,
    kommune: Organisation,
    other_kommune: Organisation,
    plans: None,
) -> None:
    client.force_login(people["nhn_auditor"])

    html = client.get(register_url(nhn), {"vkp": "no"}).content.decode()

    table = html.split('id="register-caption"')[1]
    assert other_kommune.name in table
    assert kommune.name not in table
    assert kommune.name in html.split('id="risk-heading"')[1]  # the risk list is the country's


def test_a_bad_filter_is_said_beside_its_field_and_the_others_apply(
    client: Client,
    people: dict[str, Any],
    nhn: Organisation,
    kommune: Organisation,
    other_kommune: Organisation,
    plans: None,
) -> None:
    client.force_login(people["nhn_auditor"])

    response = client.get(register_url(nhn), {"path": "soon", "vkp": "yes"})

    assert response.status_code == 200
    assert "path" in response.context["form"].errors
    html = response.content.decode()
    assert 'href="#id_path"' in html
    table = html.split('id="register-caption"')[1]
    assert kommune.name in table
    assert other_kommune.name not in table


def test_the_register_downloads_the_filtered_rows_as_csv(
    client: Client,
    people: dict[str, Any],
    nhn: Organisation,
    kommune: Organisation,
    plans: None,
) -> None:
    client.force_login(people["nhn_auditor"])
    page = client.get(register_url(nhn), {"risk": "on"}).content.decode()
    assert "format=csv" in page

    response = client.get(register_url(nhn), {"risk": "on", "format": "csv"})

    assert response.status_code == 200
    assert response.streaming
    rows = list(
        csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")))
    )
    assert [(r["orgnr"], r["at_risk"], r["path"]) for r in rows] == [
        (kommune.orgnr, "yes", "new_services")
    ]


def test_the_register_sorts_by_a_column_and_pages(
    client: Client,
    people: dict[str, Any],
    nhn: Organisation,
    kommune: Organisation,
    other_kommune: Organisation,
    plans: None,
) -> None:
    client.force_login(people["nhn_auditor"])

    ascending = client.get(register_url(nhn), {"sort": "-switch"})
    names = [row.name for row in ascending.context["listing"].rows]

    assert names == [other_kommune.name, kommune.name]
    assert 'aria-sort="descending"' in ascending.content.decode()
    unknown = client.get(register_url(nhn), {"sort": "size", "page": "9"})
    assert unknown.context["listing"].sort == "switch"  # an unknown sort falls back


# --- The national overview ---------------------------------------------------------------------


class ChartReader(HTMLParser):
    """The chart's values per environment, and the table beside it."""

    def __init__(self) -> None:
        super().__init__()
        self.series: dict[str, list[int]] = {}
        self.coordinates: list[str] = []
        self.current: str | None = None
        self.svg_title = False
        self.titles: list[str] = []
        self.in_table = False
        self.cells: list[str] = []
        self.in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("circle", "line", "text"):
            self.coordinates += [
                value or ""
                for name, value in attrs
                if name in ("x", "y", "x1", "x2", "y1", "y2", "cx", "cy")
            ]
        if tag == "g" and found.get("data-environment"):
            self.current = found["data-environment"]
            self.series[self.current or ""] = []
        elif tag == "circle" and self.current:
            self.series[self.current].append(int(found["data-value"] or 0))
        elif tag == "title":
            self.svg_title = True
        elif tag == "caption" and found.get("id") == "over-time-caption":
            self.in_table = True
        elif tag == "td" and self.in_table:
            self.in_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "g":
            self.current = None
        elif tag == "table":
            self.in_table = False
        elif tag == "td":
            self.in_cell = False
        elif tag == "title":
            self.svg_title = False

    def handle_data(self, data: str) -> None:
        if self.in_cell:
            self.cells.append(data.strip())
        if self.svg_title:
            self.titles.append(data)


def test_the_chart_is_svg_with_the_same_numbers_as_the_table(
    client: Client, people: dict[str, Any], nhn: Organisation, kommune: Organisation
) -> None:
    now = timezone.now()
    for days_ago, environment in ((40, Environment.PRODUCTION), (10, Environment.PRODUCTION)):
        made = GrantFactory(kommune=kommune, client=ClientFactory(environment=environment))
        Grant.objects.filter(pk=made.pk).update(created_at=now - datetime.timedelta(days=days_ago))
    revoked = GrantFactory(kommune=kommune, client=ClientFactory(environment=Environment.TEST))
    Grant.objects.filter(pk=revoked.pk).update(
        status=GrantStatus.REVOKED,
        created_at=now - datetime.timedelta(days=30),
        revoked_at=now - datetime.timedelta(days=20),
    )
    client.force_login(people["nhn_auditor"])

    response = client.get(national_url(nhn), {"months": "3", "interval": "week"})  # in bokmål

    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'<svg role="img" aria-labelledby="chart-title chart-desc"', html)
    assert '<title id="chart-title">' in html
    assert '<desc id="chart-desc">' in html
    reader = ChartReader()
    reader.feed(html)
    production, test = reader.series["production"], reader.series["test"]
    assert production[-1] == 2
    assert max(test) == 1
    assert test[-1] == 0
    # The table has a row per point: its production and test cells are the chart's values.
    cells = [int(c) for c in reader.cells if c]
    assert cells[0::2] == production
    assert cells[1::2] == test
    assert 13 <= len(production) <= 15
    # SVG numbers in every language: bokmål writes 56,0 for 56.0 in text, never in coordinates.
    assert reader.coordinates
    assert all(re.fullmatch(r"-?\d+(\.\d+)?", value) for value in reader.coordinates)


def test_the_overview_shows_onboarding_and_provisioning_health(
    client: Client, people: dict[str, Any], nhn: Organisation, kommune: Organisation
) -> None:
    GrantFactory(kommune=kommune)
    GrantFactory(kommune=kommune, status=GrantStatus.FAILED)
    client.force_login(people["nhn_operator"])

    response = client.get(national_url(nhn), HTTP_ACCEPT_LANGUAGE="en")

    html = response.content.decode()
    onboarding = html.split('id="onboarding-caption"')[1].split("</table>")[0]
    assert re.search(
        r"Patient</th><td class=\"number\">1</td><td class=\"number\">0</td>", onboarding
    )
    health = html.split('id="health-heading"')[1]
    assert "1 grant failed" in health
    assert "Nothing waits." in health


def test_a_bad_period_is_said_beside_its_field(
    client: Client, people: dict[str, Any], nhn: Organisation
) -> None:
    client.force_login(people["nhn_auditor"])

    response = client.get(national_url(nhn), {"months": "7"})

    assert response.status_code == 200
    assert "months" in response.context["form"].errors
    assert response.context["chart"].lines  # the default period is drawn


@pytest.mark.parametrize("page", ["orders:epj_register", "provisioning:national"])
def test_the_oversight_pages_read_the_same_number_of_queries_for_a_larger_country(
    client: Client, people: dict[str, Any], nhn: Organisation, plans: None, page: str
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import KommuneOrganisationFactory

    client.force_login(people["nhn_auditor"])
    url = reverse(page, args=[nhn.orgnr])

    def queries() -> int:
        cache.clear()  # the national overview's figures, not the minute's copy of them
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured.captured_queries)

    before = queries()
    gerica = ProductFactory(system_type="EPJ", vendor__name="Tieto")
    for _ in range(5):
        kommune = KommuneOrganisationFactory(
            uses_vkp=True,
            epj_product=gerica,
            epj_switch_product=gerica,
            epj_switch_date=datetime.date(2026, 12, 1),
        )
        GrantFactory(kommune=kommune)
        GrantFactory(kommune=kommune, status=GrantStatus.FAILED)
    assert queries() == before
