"""The audit trail page: newest first, filtered by kommune, vendor, client, who did it, action and
days, paged by a cursor, each event with its actor, organisation, action in words, object, what
changed, time and request id; the same queries however many events."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_event_record
from orders import services
from tenants.models import Organisation
from tenants.views.audit import PAGE_SIZE, changes
from tests.conftest import World

pytestmark = pytest.mark.django_db


def url(nhn: Organisation) -> str:
    return reverse("tenants:audit", args=[nhn.orgnr])


def as_(client: Client, people: dict[str, User], who: str) -> Client:
    client.force_login(people[who])
    return client


def shown(response: Any) -> list[AuditEvent]:
    assert response.status_code == 200
    return [row.event for row in response.context["rows"]]


def event_at(when: datetime.datetime, **fields: Any) -> AuditEvent:
    """An event made at ``when``, appended to the chain like any other."""
    event = AuditEvent(occurred_at=when, actor_label="system:test", action="x.y", **fields)
    event.save()
    return event


@pytest.fixture
def trail(world: World) -> World:
    """An order, a revocation and a suspension: events of the kommune, the vendor and NHN."""
    [grant] = world.vendor_grants("patient.read")
    services.grant_revoke(grant=grant, actor=world.people["kommune_admin"])
    services.vendor_suspend(
        vendor=world.other_vendor, actor=world.people["nhn_operator"], reason="Avtalebrudd"
    )
    return world


@pytest.mark.parametrize("who", ["nhn_operator", "nhn_auditor"])
def test_the_trail_shows_each_event_with_who_what_where_when_and_the_request_id(
    client: Client, trail: World, nhn: Organisation, who: str
) -> None:
    response = as_(client, trail.people, who).get(url(nhn), HTTP_X_REQUEST_ID="req-123")

    events = shown(response)
    assert events == sorted(events, key=lambda e: (e.occurred_at, e.pk), reverse=True)
    page = response.content.decode()
    assert "<title>Revisjonsspor · Tilgang</title>" in page
    assert "Leverandør suspendert" in page  # the action in words
    assert "Tilgang trukket tilbake" in page
    assert trail.people["kommune_admin"].username in page
    assert trail.kommune.name in page  # the organisation, by name
    assert "status</span>: pending → revoking" in page  # before → after
    assert "Avtalebrudd" in page
    revoked = AuditEvent.objects.get(action="grant.revoked")
    assert f'title="{revoked.object_id}"' in page
    assert "Tilgang <code" in page  # the object's kind in words
    suspended = AuditEvent.objects.get(action="vendor.suspended")
    assert suspended.request_id == ""  # recorded outside a request
    assert ">–</code>" in page


def test_the_filters_name_each_kommune_and_vendor_with_its_organisation_number_grouped(
    client: Client, world: World, nhn: Organisation
) -> None:
    page = as_(client, world.people, "nhn_auditor").get(url(nhn)).content.decode()

    for organisation in (world.kommune, world.vendor):
        grouped = f"{organisation.orgnr[:3]} {organisation.orgnr[3:6]} {organisation.orgnr[6:]}"
        option = f'<option value="{organisation.orgnr}">{organisation.name} ({grouped})</option>'
        assert option in page


def test_the_filters_narrow_the_trail(client: Client, trail: World, nhn: Organisation) -> None:
    auditor = as_(client, trail.people, "nhn_auditor")

    def actions(**query: str) -> set[str]:
        return {e.action for e in shown(auditor.get(url(nhn), query))}

    assert actions(action="vendor.suspended") == {"vendor.suspended"}
    by_kommune = actions(kommune=trail.kommune.orgnr)
    assert {"grant.approved", "grant.revoked", "access_request.created"} <= by_kommune
    assert "vendor.suspended" not in by_kommune
    assert actions(vendor=trail.other_vendor.orgnr) == {"vendor.suspended"}
    by_vendor = actions(vendor=trail.vendor.orgnr)
    assert {"grant.approved", "grant.revoked", "access_request.created"} <= by_vendor
    assert "vendor.suspended" not in by_vendor
    assert actions(client=trail.client.name) == by_vendor
    assert actions(client=str(trail.client.pk)) == by_vendor
    assert actions(client="no such client") == set()
    assert actions(actor=trail.people["kommune_admin"].username) == {"grant.revoked"}
    assert actions(actor="system:policy") == {"grant.approved"}


def test_the_days_narrow_the_trail_and_a_wrong_range_is_a_field_error(
    client: Client, world: World, nhn: Organisation
) -> None:
    now = timezone.localtime()
    old = event_at(now - datetime.timedelta(days=10))
    recent = event_at(now - datetime.timedelta(days=1))
    auditor = as_(client, world.people, "nhn_auditor")

    def between(**query: str) -> set[Any]:
        return {e.pk for e in shown(auditor.get(url(nhn), query))}

    ten_days_ago = (now - datetime.timedelta(days=10)).date().isoformat()
    yesterday = (now - datetime.timedelta(days=1)).date().isoformat()
    assert between(date_from=yesterday) == {recent.pk}
    assert between(date_to=ten_days_ago) == {old.pk}
    assert between(date_from=ten_days_ago, date_to=ten_days_ago) == {old.pk}
    response = auditor.get(url(nhn), {"date_from": yesterday, "date_to": ten_days_ago})
    assert response.status_code == 200
    assert response.context["form"].errors["date_to"]
    assert "ds-error-summary" in response.content.decode()
    bad = auditor.get(url(nhn), {"date_from": "yesterday", "kommune": "x", "action": "drop"})
    assert bad.status_code == 200
    assert set(bad.context["form"].errors) == {"date_from", "kommune", "action"}
    assert 'value="yesterday"' in bad.content.decode()  # what was typed is kept


def test_the_trail_pages_by_a_cursor_newest_first(
    client: Client, world: World, nhn: Organisation
) -> None:
    with connection.cursor() as cursor:  # TRUNCATE: the table refuses DELETE (and rolls back)
        cursor.execute(f"TRUNCATE {AuditEvent._meta.db_table}")  # noqa: S608
    start = timezone.now() - datetime.timedelta(hours=1)
    events = [event_at(start + datetime.timedelta(seconds=n)) for n in range(PAGE_SIZE + 5)]
    same_moment = event_at(start + datetime.timedelta(seconds=3))  # a tie, broken by the id
    auditor = as_(client, world.people, "nhn_auditor")
    newest_first = sorted([*events, same_moment], key=lambda e: (e.occurred_at, e.pk), reverse=True)

    first = auditor.get(url(nhn))
    assert shown(first) == newest_first[:PAGE_SIZE]
    older = first.context["older"]
    assert older is not None
    assert first.context["newer"] is None
    second = auditor.get(url(nhn), {"before": older})
    assert shown(second) == newest_first[PAGE_SIZE:]
    assert second.context["older"] is None
    back = auditor.get(url(nhn), {"after": second.context["newer"]})
    assert shown(back) == newest_first[:PAGE_SIZE]
    assert auditor.get(url(nhn), {"before": "garbage"}).status_code == 200
    assert "Eldre hendelser" in first.content.decode()


def test_the_trail_reads_a_constant_number_of_queries(
    client: Client, trail: World, nhn: Organisation, django_assert_max_num_queries: Any
) -> None:
    auditor = as_(client, trail.people, "nhn_auditor")
    auditor.get(url(nhn))
    for n in range(PAGE_SIZE):
        audit_event_record(
            actor=trail.people["nhn_operator"],
            action="grant.revoked",
            organisation=trail.kommune if n % 2 else trail.vendor,
            object_type="orders.grant",
            object_id=str(n),
            before={"status": "active", "client": str(trail.client.pk)},
            after={"status": "revoking", "client": str(trail.client.pk)},
        )

    with django_assert_max_num_queries(12):
        plain = auditor.get(url(nhn))
    with django_assert_max_num_queries(14):
        filtered = auditor.get(
            url(nhn),
            {
                "vendor": trail.vendor.orgnr,
                "client": trail.client.name,
                "kommune": trail.kommune.orgnr,
                "actor": "@",
                "action": "grant.revoked",
            },
        )

    assert len(shown(plain)) == PAGE_SIZE
    assert shown(filtered)


def test_an_empty_trail_says_what_fills_it(client: Client, world: World, nhn: Organisation) -> None:
    auditor = as_(client, world.people, "nhn_auditor")
    page = auditor.get(url(nhn), {"action": "vendor.suspension_lifted"}).content.decode()
    assert "Ingen hendelse passer" in page


@pytest.mark.parametrize(
    "who", ["kommune_admin", "kommune_reader", "vendor_admin", "vendor_developer"]
)
def test_kommune_and_vendor_people_do_not_find_the_trail(
    client: Client, world: World, nhn: Organisation, who: str
) -> None:
    assert as_(client, world.people, who).get(url(nhn)).status_code == 404


def test_the_filters_are_named_in_either_language(
    client: Client, world: World, nhn: Organisation
) -> None:
    auditor = as_(client, world.people, "nhn_auditor")
    labels = {
        "nb": ["Kommune", "Leverandør", "Klient", "Utført av", "Handling", "Fra", "Til"],
        "en": ["Municipality", "Vendor", "Client", "Done by", "Action", "From", "To"],
    }
    for language, names in labels.items():
        client.cookies["django_language"] = language
        page = auditor.get(url(nhn)).content.decode()
        for field, name in zip(
            ["kommune", "vendor", "client", "actor", "action", "date_from", "date_to"],
            names,
            strict=True,
        ):
            assert f'<label class="ds-label" for="id_{field}">{name}' in page, (language, name)


def test_what_changed_is_told_field_by_field() -> None:
    [status] = changes({"status": "active", "scope": "s"}, {"status": "revoking", "scope": "s"})
    assert (status.field, status.before, status.after) == ("status", "active", "revoking")
    [created] = changes(None, {"suspended": True})
    assert (created.field, created.before, created.after) == ("suspended", "", "ja")
    [removed] = changes({"email": "a@b"}, None)
    assert (removed.before, removed.after) == ("a@b", "–")
    [listed] = changes({"codes": ["RT"]}, {"codes": ["RT", "TA"]})
    assert (listed.before, listed.after) == ("RT", "RT, TA")
    [long] = changes(None, {"note": "x" * 500})
    assert len(long.after) == 80
