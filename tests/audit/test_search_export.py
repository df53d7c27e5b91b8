"""Audit search and export: the API list takes the audit page's filters and answers the same
events; `GET /api/v1/audit-events/export/?format=csv|jsonl` streams them with the same filters,
for NHN staff, with spreadsheet formulas neutralised, and without holding the rows in memory;
`GET /api/v1/audit-events/head/` gives NHN staff the chain's head."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.selectors import audit_chain_head
from audit.services import audit_event_record
from orders import services
from tenants.models import Organisation
from tests.conftest import World

pytestmark = pytest.mark.django_db

EXPORT = "/api/v1/audit-events/export/"
HEAD = "/api/v1/audit-events/head/"


@pytest.fixture
def trail(world: World) -> World:
    """An order, a revocation and a suspension: events of the kommune, the vendor and NHN."""
    [grant] = world.vendor_grants("patient.read")
    services.grant_revoke(grant=grant, actor=world.people["kommune_admin"])
    services.vendor_suspend(
        vendor=world.other_vendor, actor=world.people["nhn_operator"], reason="Avtalebrudd"
    )
    return world


def api_as(user: User | None) -> APIClient:
    api = APIClient()
    if user is not None:
        api.force_authenticate(user)
    return api


def body(response: Any) -> bytes:
    assert response.streaming, "an export streams"
    return b"".join(response.streaming_content)


def csv_rows(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body(response).decode())))


def jsonl_rows(response: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body(response).decode().splitlines()]


def queries(trail: World) -> list[dict[str, str]]:
    people = trail.people
    return [
        {},
        {"kommune": trail.kommune.orgnr},
        {"vendor": trail.vendor.orgnr},
        {"vendor": trail.other_vendor.orgnr},
        {"client": trail.client.name},
        {"client": str(trail.client.pk)},
        {"client": "no such client"},
        {"actor": people["kommune_admin"].username},
        {"actor": "system:policy"},
        {"action": "grant.revoked"},
        {"kommune": trail.kommune.orgnr, "action": "grant.approved", "actor": "system"},
        {"date_from": "2000-01-01", "date_to": "2000-01-02"},
    ]


def test_the_api_list_the_export_and_the_page_answer_the_same_events_for_each_filter(
    client: Client, trail: World, nhn: Organisation
) -> None:
    auditor = trail.people["nhn_auditor"]
    client.force_login(auditor)
    api = api_as(auditor)

    for query in queries(trail):
        page = client.get(reverse("tenants:audit", args=[nhn.orgnr]), query)
        assert page.status_code == 200
        on_page = [row.event.pk for row in page.context["rows"]]
        listed = api.get("/api/v1/audit-events/", query)
        assert listed.status_code == 200, listed.json()
        in_list = [row["id"] for row in listed.json()["results"]]
        exported = [int(row["id"]) for row in csv_rows(api.get(EXPORT, {**query, "format": "csv"}))]
        in_lines = [row["id"] for row in jsonl_rows(api.get(EXPORT, {**query, "format": "jsonl"}))]

        assert in_list == on_page == exported == in_lines, query
    assert len(on_page) < AuditEvent.objects.count()  # the filters did narrow


def test_a_wrong_filter_is_a_400_with_the_field_errors(trail: World) -> None:
    api = api_as(trail.people["nhn_auditor"])
    wrong = {"date_from": "yesterday", "kommune": "x", "action": "x" * 61}

    for path, extra in (("/api/v1/audit-events/", {}), (EXPORT, {"format": "csv"})):
        response = api.get(path, {**wrong, **extra})
        assert response.status_code == 400
        assert set(response.json()) == {"date_from", "kommune", "action"}
    assert set(api.get(EXPORT, {"format": "xlsx"}).json()) == {"format"}
    assert set(api.get(EXPORT).json()) == {"format"}


def test_the_export_is_a_download_of_csv_or_json_lines_with_every_column(trail: World) -> None:
    api = api_as(trail.people["nhn_operator"])
    revoked = AuditEvent.objects.get(action="grant.revoked")

    as_csv = api.get(EXPORT, {"format": "csv", "action": "grant.revoked"})
    as_jsonl = api.get(EXPORT, {"format": "jsonl", "action": "grant.revoked"})

    assert as_csv.status_code == as_jsonl.status_code == 200
    assert as_csv["Content-Type"] == "text/csv; charset=utf-8"
    assert as_jsonl["Content-Type"] == "application/jsonl"
    assert as_csv["Content-Disposition"].startswith('attachment; filename="audit-events-')
    assert as_jsonl["Content-Disposition"].endswith('.jsonl"')
    [row] = csv_rows(as_csv)
    [line] = jsonl_rows(as_jsonl)
    assert row["id"] == str(line["id"]) == str(revoked.pk)
    assert row["actor"] == line["actor"] == trail.people["kommune_admin"].username
    assert row["organisation"] == line["organisation"] == trail.kommune.orgnr
    assert row["hash"] == line["hash"] == revoked.chain_hash
    assert line["before"] == revoked.before
    assert json.loads(row["after"]) == line["after"] == revoked.after
    assert (
        line["occurred_at"]
        == row["occurred_at"]
        == revoked.occurred_at.isoformat(timespec="microseconds")
    )


def test_csv_cells_that_a_spreadsheet_would_run_as_a_formula_are_neutralised(
    people: dict[str, User],
) -> None:
    event = audit_event_record(
        actor=None,
        actor_label='=HYPERLINK("http://evil.example","click")',
        action="x.y",
        object_type="+cmd",
        object_id="@SUM(A1)",
        before=-5,  # a JSON number is a cell of its own too
        after={"reason": "=1+1"},
    )
    api = api_as(people["nhn_auditor"])

    [row] = csv_rows(api.get(EXPORT, {"format": "csv", "object_id": event.object_id}))
    [line] = jsonl_rows(api.get(EXPORT, {"format": "jsonl", "object_id": event.object_id}))

    assert row["actor"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["object_type"] == "'+cmd"
    assert row["object_id"] == "'@SUM(A1)"
    assert row["before"] == "'-5"
    assert json.loads(row["after"]) == {"reason": "=1+1"}  # inside JSON text: not a formula
    assert line["actor"] == event.actor_label  # JSON Lines keeps the values as they are
    assert line["before"] == -5


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("nhn_operator", 200),
        ("nhn_auditor", 200),
        ("kommune_admin", 403),
        ("vendor_admin", 403),
        ("other_kommune_admin", 403),
        (None, 401),
    ],
)
def test_only_nhn_staff_export_and_read_the_head(
    trail: World, who: str | None, expected: int
) -> None:
    api = api_as(trail.people[who] if who else None)

    exported = api.get(EXPORT, {"format": "jsonl"})
    head = api.get(HEAD)

    assert exported.status_code == head.status_code == expected
    if expected != 200:
        assert not exported.streaming  # a JSON error, not a file
        assert "detail" in exported.json()


def test_the_head_endpoint_gives_the_chain_s_newest_event(trail: World) -> None:
    api = api_as(trail.people["nhn_auditor"])

    answer = api.get(HEAD).json()

    newest = AuditEvent.objects.order_by("-id").first()
    assert newest is not None
    assert answer["id"] == newest.pk == audit_chain_head().id
    assert answer["hash"] == newest.chain_hash
    assert answer["occurred_at"] is not None


def test_the_audit_page_links_the_export_with_its_filters(
    client: Client, trail: World, nhn: Organisation
) -> None:
    client.force_login(trail.people["nhn_auditor"])
    url = reverse("tenants:audit", args=[nhn.orgnr])

    page = client.get(url, {"kommune": trail.kommune.orgnr, "after": "1.1"}).content.decode()
    wrong = client.get(url, {"date_from": "yesterday"}).content.decode()

    assert f'href="{EXPORT}?kommune={trail.kommune.orgnr}&amp;format=csv"' in page
    assert f'href="{EXPORT}?kommune={trail.kommune.orgnr}&amp;format=jsonl"' in page
    assert "Eksporter" in page
    assert EXPORT not in wrong  # a filter that is wrong is fixed first


def export_peak(api: APIClient, query: dict[str, str]) -> tuple[int, int, int]:
    """Rows, bytes and the peak of Python memory (above what was held before) of one export."""
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    response = api.get(EXPORT, {**query, "format": "csv"})
    size = rows = 0
    for piece in response.streaming_content:
        size += len(piece)
        rows += piece.count(b"\n")
    peak = tracemalloc.get_traced_memory()[1] - before
    return rows - 1, size, peak


def test_an_export_holds_no_more_rows_in_memory_for_50_000_events_than_for_5_000(
    postgresql: None, people: dict[str, User]
) -> None:
    AuditEvent.objects.bulk_create(
        (
            AuditEvent(
                actor_label=f"person{n}@kommune.example",
                organisation_orgnr="958935420" if n % 10 == 0 else "942110464",
                action="grant.activated",
                object_type="orders.grant",
                object_id=f"{n:032x}",
                before={"status": "provisioning", "client": f"{n:032x}"},
                after={"status": "active", "client": f"{n:032x}"},
                request_id=f"{n:032x}",
            )
            for n in range(50_000)
        ),
        batch_size=5000,
    )
    api = api_as(people["nhn_auditor"])
    export_peak(api, {"organisation": "000000000"})  # code and caches loaded, no rows

    tracemalloc.start()
    try:
        small = export_peak(api, {"organisation": "958935420"})
        large = export_peak(api, {})
    finally:
        tracemalloc.stop()

    assert small[0] == 5_000
    assert large[0] >= 50_000
    # Read a chunk at a time: ten times the rows, about the same memory, and far less than the
    # export itself (all rows held as Python objects would be several times its size).
    assert large[2] < 2 * small[2], (small, large)
    assert large[2] < large[1] / 2, (small, large)
