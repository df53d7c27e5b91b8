"""The page "who had access when", for NHN, a kommune and a vendor, and its CSV: the same
question as the API, narrowed to the organisation the page acts for."""

from __future__ import annotations

import csv
import datetime
import io
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from orders.models import Grant, GrantPeriod, GrantStatus
from orders.services import grant_periods_close, grant_periods_open
from tenants.models import Organisation
from tests.conftest import World
from tests.factories import GrantFactory

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
DURING = "2026-03-01T14:00"  # Norwegian time: an hour after T0
AFTER = "2026-03-03T12:00"


def url(organisation: Organisation) -> str:
    return reverse("orders:access_history", args=[organisation.orgnr])


def had_access(grant: Grant, days: int = 1) -> Grant:
    grant_periods_open(grants=[grant], at=T0)
    grant_periods_close(
        grant_ids=[grant.pk], at=T0 + datetime.timedelta(days=days), end=GrantPeriod.End.REVOKED
    )
    return grant


@pytest.fixture
def grants(world: World) -> dict[str, Grant]:
    """Our client in our kommune, the other vendor's client in ours, and the other vendor's
    client in the other kommune; each had access for a day from T0."""
    return {
        "ours": had_access(
            GrantFactory(
                client=world.client,
                kommune=world.kommune,
                instruction=world.instruction,
                delegation=world.delegation,
                approved_automatically=True,
                status=GrantStatus.REVOKED,
            )
        ),
        "other_vendor_here": had_access(
            GrantFactory(
                client=world.other_client,
                kommune=world.kommune,
                approved_by=world.people["kommune_admin"],
                status=GrantStatus.REVOKED,
            )
        ),
        "elsewhere": had_access(
            GrantFactory(
                client=world.other_client, kommune=world.other_kommune, status=GrantStatus.REVOKED
            )
        ),
    }


def shown(response: Any) -> set[str]:
    assert response.status_code == 200, response.content[:500]
    return {str(row.period.grant_id) for row in response.context["rows"]}


def ids(grants: dict[str, Grant], *names: str) -> set[str]:
    return {str(grants[name].pk) for name in names}


@pytest.mark.parametrize("who", ["kommune_admin", "kommune_reader"])
def test_a_kommune_sees_who_had_access_to_its_data(
    client: Client, world: World, grants: dict[str, Grant], who: str
) -> None:
    client.force_login(world.people[who])

    response = client.get(url(world.kommune), {"at": DURING})

    assert shown(response) == ids(grants, "ours", "other_vendor_here")
    page = response.content.decode()
    assert "<title>Hvem hadde tilgang når · Tilgang</title>" in page
    assert world.client.name in page
    assert world.vendor.name in page
    assert "Etter reglene" in page  # approved by the rules (the delegation)
    assert "Av en person" in page  # the other vendor's, approved by the kommune's admin
    assert f"Databehandlerinstruks, versjon {world.instruction.version}" in page
    assert 'name="kommune"' not in page  # the page is the kommune's own


def test_with_no_filter_the_page_shows_who_has_access_now(
    client: Client, world: World, nhn: Organisation
) -> None:
    now_open = GrantFactory(client=world.client, kommune=world.kommune)
    grant_periods_open(grants=[now_open], at=T0)
    had_access(GrantFactory(client=world.client, kommune=world.other_kommune))
    client.force_login(world.people["nhn_auditor"])

    response = client.get(url(nhn))

    assert shown(response) == {str(now_open.pk)}
    assert not response.context["form"].errors
    assert "Har fortsatt tilgang" in response.content.decode()


def test_nothing_is_shown_after_the_access_ended_or_before_it_began(
    client: Client, world: World, grants: dict[str, Grant]
) -> None:
    client.force_login(world.people["kommune_admin"])

    assert shown(client.get(url(world.kommune), {"at": AFTER})) == set()
    assert shown(client.get(url(world.kommune), {"at": "2026-03-01T12:59"})) == set()
    assert shown(client.get(url(world.kommune), {"at": "2026-03-01T13:00"})) == ids(
        grants, "ours", "other_vendor_here"
    )
    in_period = client.get(url(world.kommune), {"from": "2026-02-01T00:00", "to": AFTER})
    assert shown(in_period) == ids(grants, "ours", "other_vendor_here")


@pytest.mark.parametrize(
    ("who", "status"),
    [("other_kommune_admin", 404), ("vendor_admin", 404), ("nhn_auditor", 404)],
)
def test_a_kommunes_history_page_is_not_found_for_anyone_else(
    client: Client, world: World, grants: dict[str, Grant], who: str, status: int
) -> None:
    client.force_login(world.people[who])

    assert client.get(url(world.kommune), {"at": DURING}).status_code == status


def test_a_kommunes_page_never_shows_another_kommune_whatever_the_query_says(
    client: Client, world: World, grants: dict[str, Grant]
) -> None:
    client.force_login(world.people["other_kommune_admin"])

    response = client.get(url(world.other_kommune), {"at": DURING, "kommune": world.kommune.orgnr})

    assert shown(response) == ids(grants, "elsewhere")


def test_a_vendor_sees_its_own_clients_only(
    client: Client, world: World, grants: dict[str, Grant]
) -> None:
    client.force_login(world.people["vendor_developer"])

    response = client.get(url(world.vendor), {"at": DURING})

    assert shown(response) == ids(grants, "ours")
    assert world.kommune.name in response.content.decode()
    client.force_login(world.people["other_vendor_admin"])
    assert shown(client.get(url(world.other_vendor), {"at": DURING})) == ids(
        grants, "other_vendor_here", "elsewhere"
    )


@pytest.mark.parametrize("who", ["nhn_operator", "nhn_auditor"])
def test_nhn_sees_every_kommune_and_narrows_by_kommune_vendor_and_service(
    client: Client, world: World, grants: dict[str, Grant], nhn: Organisation, who: str
) -> None:
    client.force_login(world.people[who])

    everything = client.get(url(nhn), {"at": DURING})
    assert shown(everything) == ids(grants, "ours", "other_vendor_here", "elsewhere")
    assert shown(client.get(url(nhn), {"at": DURING, "kommune": world.kommune.orgnr})) == ids(
        grants, "ours", "other_vendor_here"
    )
    assert shown(client.get(url(nhn), {"at": DURING, "vendor": world.other_vendor.orgnr})) == ids(
        grants, "other_vendor_here", "elsewhere"
    )
    assert shown(client.get(url(nhn), {"at": DURING, "service": "observation"})) == set()


def test_a_bad_filter_is_shown_beside_its_field_and_nothing_else(
    client: Client, world: World, grants: dict[str, Grant], nhn: Organisation
) -> None:
    client.force_login(world.people["nhn_auditor"])

    response = client.get(url(nhn), {"from": AFTER, "to": DURING, "kommune": "123456789"})

    assert shown(response) == set()
    form = response.context["form"]
    assert set(form.errors) == {"to", "kommune"}
    page = response.content.decode()
    assert 'id="id_to_error"' in page
    assert re.search(r'<input[^>]*name="to"[^>]*aria-describedby="[^"]*id_to_error', page)


def test_the_csv_has_every_row_of_the_question_with_the_same_filters(
    client: Client, world: World, grants: dict[str, Grant]
) -> None:
    client.force_login(world.people["kommune_reader"])
    page = client.get(url(world.kommune), {"at": DURING, "vendor": world.vendor.orgnr})
    assert "format=csv" in page.content.decode()
    link = page.context["export_query"]

    response = client.get(f"{url(world.kommune)}?{link}")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert world.kommune.orgnr in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    assert text.startswith("\ufeff")  # a spreadsheet reads æ, ø and å as UTF-8
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [row["grant"] for row in rows] == [str(grants["ours"].pk)]
    assert rows[0]["vendor"] == world.vendor.orgnr
    assert rows[0]["approval"] == "policy"


def test_the_csv_of_a_bad_question_is_the_page_with_its_errors(
    client: Client, world: World, grants: dict[str, Grant]
) -> None:
    client.force_login(world.people["kommune_admin"])

    response = client.get(url(world.kommune), {"at": "never", "format": "csv"})

    assert response.status_code == 400
    assert "at" in response.context["form"].errors


def test_the_page_reads_in_english_too(
    client: Client, world: World, grants: dict[str, Grant]
) -> None:
    client.force_login(world.people["kommune_admin"])
    with translation.override("en"):
        response = client.get(url(world.kommune), {"at": DURING}, HTTP_ACCEPT_LANGUAGE="en")

    page = response.content.decode()
    assert "<title>Who had access when · Tilgang</title>" in page
    assert "By the rules" in page


def test_the_page_runs_the_same_queries_however_many_rows(
    client: Client, world: World, grants: dict[str, Grant], nhn: Organisation
) -> None:
    client.force_login(world.people["nhn_auditor"])
    client.get(url(nhn), {"at": DURING})  # the session and caches, as on any later visit

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url(nhn), {"at": DURING})
        assert response.status_code == 200
        return len(captured.captured_queries)

    few = queries()
    for _ in range(20):
        had_access(
            GrantFactory(client=world.client, kommune=world.kommune, status=GrantStatus.REVOKED)
        )
    assert queries() == few
    assert len(shown(client.get(url(nhn), {"at": DURING}))) == 23
