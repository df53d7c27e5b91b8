"""Cross-site requests and open redirects: every form and every API write refuses a POST without
the CSRF token, and no ``next`` parameter sends a person to another site."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.test import Client

from tenants.models import Role
from tests.conftest import World
from tests.factories import MembershipFactory
from tests.integration import Provider
from tests.routes import argument_values, every_route
from tests.tenants.test_oidc_login import login_at_provider

pytestmark = pytest.mark.django_db

POST_ROUTES = [route for route in every_route() if route.accepts_post()]


def row_counts() -> dict[str, int]:
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if model._meta.label != "sessions.Session"
    }


def test_every_post_without_the_csrf_token_is_403_and_changes_nothing(world: World) -> None:
    """Pages and the API alike (DRF checks the token for session callers), as each person who
    could otherwise do the thing, with a body that would be accepted on some routes."""
    askers = {
        "kommune_admin": world.kommune,
        "vendor_admin": world.vendor,
        "nhn_operator": world.people["nhn_operator"].memberships.get().organisation,
    }
    browsers = {}
    for person in askers:
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(world.people[person])
        browsers[person] = browser
    before = row_counts()
    failures = []

    for route in POST_ROUTES:
        for person, organisation in askers.items():
            url = route.url(argument_values(world, organisation))
            response = browsers[person].post(url, {"name": "x", "reason": "x", "language": "en"})
            if response.status_code != 403 or "CSRF" not in response.content.decode():
                failures.append((person, url, response.status_code))

    assert failures == []
    assert row_counts() == before
    assert len(POST_ROUTES) > 60  # the walk found the forms and the API's writes


HOSTILE_NEXT = [
    "//evil.example/",
    "https://evil.example/",
    "http://testserver/o/",  # this host, but absolute: only paths are taken
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "https:evil.example",
    "///evil.example",
]


@pytest.mark.integration
@pytest.mark.parametrize("next_url", HOSTILE_NEXT)
def test_the_login_never_sends_a_person_elsewhere_through_next(
    client: Client, oidc_settings: Provider, kommune: Any, next_url: str
) -> None:
    person = MembershipFactory(organisation=kommune, role=Role.KOMMUNE_ADMIN).user
    callback = login_at_provider(
        client, oidc_settings, person.email, start_at=f"/oidc/authenticate/?next={next_url}"
    )

    landing = client.get(callback)

    assert landing.status_code == 302
    assert landing["Location"] == "/"


@pytest.mark.integration
def test_the_login_returns_to_a_path_of_the_portal(
    client: Client, oidc_settings: Provider, kommune: Any
) -> None:
    person = MembershipFactory(organisation=kommune, role=Role.KOMMUNE_ADMIN).user
    path = f"/o/{kommune.orgnr}/access/"
    callback = login_at_provider(
        client, oidc_settings, person.email, start_at=f"/oidc/authenticate/?next={path}"
    )

    assert client.get(callback)["Location"] == path


@pytest.mark.parametrize("next_url", [url for url in HOSTILE_NEXT if "testserver" not in url])
def test_the_language_switch_never_sends_a_person_elsewhere(client: Client, next_url: str) -> None:
    response = client.post("/i18n/setlang/", {"language": "en", "next": next_url})
    assert response.status_code == 302
    assert response["Location"] == "/"
