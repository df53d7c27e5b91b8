"""A person's notifications in the portal: the list, the unread count in the header, reading one
marks it read, all at once; nobody sees another person's (404)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from notifications.models import Notification
from notifications.services import notify
from tenants.models import Organisation, Profile, Role

pytestmark = pytest.mark.django_db


def _suspended(vendor: Organisation, reason: str = "Unpaid invoices") -> None:
    notify(
        kind="vendor_suspended",
        organisation=vendor,
        roles=[Role.VENDOR_ADMIN],
        params={"vendor": vendor.name, "reason": reason, "grants": 2},
        link="orders:dashboard",
    )


def test_the_list_shows_the_persons_notifications_in_the_pages_language_and_counts_unread(
    client: Client, people: dict[str, User], vendor: Organisation, other_vendor: Organisation
) -> None:
    _suspended(vendor)
    _suspended(other_vendor, reason="Someone else's")
    client.force_login(people["vendor_admin"])

    page = client.get(reverse("notifications:list")).content.decode()

    assert f"NHN har suspendert {vendor.name}" in page
    assert "Unpaid invoices" in page
    assert "Someone else" not in page
    assert "Ulest" in page
    assert 'class="count">1<' in page  # the header's unread count
    english = client.get(reverse("notifications:list"), headers={"accept-language": "en"})
    assert f"NHN has suspended {vendor.name}" in english.content.decode()


def test_opening_a_notification_marks_it_read_and_leads_to_the_page_it_is_about(
    client: Client, people: dict[str, User], vendor: Organisation
) -> None:
    _suspended(vendor)
    notification = Notification.objects.get()
    client.force_login(people["vendor_admin"])

    page = client.get(reverse("notifications:notification", args=[notification.pk]))

    assert page.status_code == 200
    assert f'href="/o/{vendor.orgnr}/"' in page.content.decode()
    notification.refresh_from_db()
    assert notification.read_at is not None
    listed = client.get(reverse("notifications:list")).content.decode()
    assert 'class="count"' not in listed
    unread = client.get(reverse("notifications:list"), {"show": "unread"}).content.decode()
    assert "Du har lest alle varslene dine." in unread


def test_mark_all_as_read(client: Client, people: dict[str, User], vendor: Organisation) -> None:
    _suspended(vendor)
    _suspended(vendor, reason="Again")
    client.force_login(people["vendor_admin"])

    response = client.post(reverse("notifications:read_all"))

    assert response.status_code == 302
    assert not Notification.objects.unread().exists()
    assert client.get(reverse("notifications:read_all")).status_code == 405


@pytest.mark.parametrize("who", ["other_vendor_admin", "nhn_operator", "vendor_developer"])
def test_another_persons_notification_is_not_found(
    client: Client, people: dict[str, User], vendor: Organisation, who: str
) -> None:
    _suspended(vendor)
    notification = Notification.objects.get()
    client.force_login(people[who])

    response = client.get(reverse("notifications:notification", args=[notification.pk]))

    assert response.status_code == 404
    notification.refresh_from_db()
    assert notification.read_at is None
    client.post(reverse("notifications:read_all"))
    notification.refresh_from_db()
    assert notification.read_at is None


def test_the_pages_ask_a_visitor_to_log_in(client: Client, vendor: Organisation) -> None:
    response = client.get(reverse("notifications:list"))
    assert response.status_code == 302
    assert "/oidc/authenticate/" in response["Location"]


def test_changing_the_language_while_logged_in_is_remembered_for_the_e_mails(
    client: Client, people: dict[str, User], vendor: Organisation, db: Any
) -> None:
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})  # not logged in
    assert not Profile.objects.exists()
    client.force_login(people["vendor_admin"])

    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})

    assert response.status_code == 302
    assert response.cookies["django_language"].value == "en"
    assert Profile.objects.get(user=people["vendor_admin"]).language == "en"
    _suspended(vendor)
    assert Notification.objects.get().language == "en"
    client.post("/i18n/setlang/", {"language": "xx", "next": "/"})
    assert Profile.objects.get(user=people["vendor_admin"]).language == "en"


def test_the_api_lists_the_callers_own_notifications_and_marks_them_read(
    people: dict[str, User], vendor: Organisation, other_vendor: Organisation
) -> None:
    _suspended(vendor)
    _suspended(other_vendor)
    mine = Notification.objects.get(recipient=people["vendor_admin"])
    theirs = Notification.objects.get(recipient=people["other_vendor_admin"])
    api = APIClient()
    api.force_authenticate(people["vendor_admin"])

    listed = api.get("/api/v1/notifications/", headers={"accept-language": "en"}).json()

    assert [row["id"] for row in listed["results"]] == [str(mine.pk)]
    row = listed["results"][0]
    assert row["kind"] == "vendor_suspended"
    assert row["subject"] == f"NHN has suspended {vendor.name}"
    assert row["organisation"] == vendor.orgnr
    assert row["read_at"] is None
    assert api.get(f"/api/v1/notifications/{theirs.pk}/").status_code == 404
    assert api.post(f"/api/v1/notifications/{theirs.pk}/read/").status_code == 404
    read = api.post(f"/api/v1/notifications/{mine.pk}/read/")
    assert read.status_code == 200
    assert read.json()["read_at"] is not None
    assert api.get("/api/v1/notifications/", {"unread": "1"}).json()["results"] == []
    assert api.post("/api/v1/notifications/read-all/").json() == {"read": 0}
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert APIClient().get("/api/v1/notifications/").status_code == 401
