"""Signing an instruction asks for a fresh login at the provider: the sign POST goes through only
with a login made in the last few minutes (the ``auth_time`` of the session's ID token)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client, RequestFactory

from orders.models import GrantStatus, Instruction, Service
from tenants.auth import FRESH_LOGIN_SECONDS, login_age, login_is_fresh
from tests.conftest import World
from tests.factories import fresh_id_token as id_token
from tests.pages.test_instruction import draft_of, snapshot, text, url

pytestmark = pytest.mark.django_db


def logged_in(client: Client, person: User, *, seconds_ago: float | None) -> Client:
    """``person``'s session, whose last login at the provider was ``seconds_ago`` (None: the
    session holds no ID token with ``auth_time``)."""
    client.force_login(person)
    session = client.session
    if seconds_ago is not None:
        session["oidc_id_token"] = id_token(auth_time=time.time() - seconds_ago)
    session.save()
    return client


def told(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# --- The freshness check ----------------------------------------------------------------------


def request_with(**session: Any) -> Any:
    request = RequestFactory().get("/")
    request.session = SessionStore()
    request.session.update(session)
    return request


NOT_A_TOKEN = object()


@pytest.mark.parametrize(
    ("logged_in_ago", "fresh"),
    [
        (None, False),  # no ID token: a session the provider did not make
        ("no auth_time", False),  # a silent renewal asks for no auth_time
        (NOT_A_TOKEN, False),
        (-3600, False),  # in the future
        (10, True),
        (-20, True),  # the clocks a little apart
        (FRESH_LOGIN_SECONDS - 30, True),
        (FRESH_LOGIN_SECONDS + 30, False),
    ],
)
def test_a_login_is_fresh_only_when_the_provider_said_when_it_was_and_that_was_recent(
    logged_in_ago: Any, fresh: bool
) -> None:
    if logged_in_ago is None:
        session = {}
    elif logged_in_ago is NOT_A_TOKEN:
        session = {"oidc_id_token": "not a token"}
    elif logged_in_ago == "no auth_time":
        session = {"oidc_id_token": id_token()}
    else:
        session = {"oidc_id_token": id_token(auth_time=time.time() - logged_in_ago)}

    assert login_is_fresh(request_with(**session)) is fresh


def test_the_login_age_is_read_from_the_id_token_s_auth_time() -> None:
    age = login_age(request_with(oidc_id_token=id_token(auth_time=time.time() - 42)))
    assert age is not None
    assert 41 <= age <= 44


# --- The sign POST --------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds_ago", [None, FRESH_LOGIN_SECONDS + 60, 3600])
def test_a_sign_without_a_fresh_login_is_refused_and_nothing_is_signed(
    client: Client, world: World, seconds_ago: float | None
) -> None:
    draft = draft_of(world)
    before = snapshot(draft)
    admin = logged_in(client, world.people["kommune_admin"], seconds_ago=seconds_ago)

    response = admin.post(url("instruction_sign", world.kommune, draft.version))

    assert response.status_code == 302
    assert response["Location"] == url("instruction_confirm_login", world.kommune, draft.version)
    assert snapshot(draft) == before
    assert snapshot(draft)["signed_at"] is None
    world.instruction.refresh_from_db()
    assert world.instruction.status == "signed"  # the old version still applies
    (message,) = told(response)
    assert f"Versjon {draft.version} er ikke signert ennå" in message
    assert "logget inn i løpet av de siste 5 minuttene" in message


def test_the_fresh_login_asks_the_provider_to_show_its_login_page_again(
    client: Client, world: World
) -> None:
    draft = draft_of(world)
    admin = logged_in(client, world.people["kommune_admin"], seconds_ago=None)

    response = admin.get(url("instruction_confirm_login", world.kommune, draft.version))

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert response["Location"].startswith(settings.OIDC_OP_AUTHORIZATION_ENDPOINT + "?")
    params = parse_qs(location.query)
    assert params["prompt"] == ["login"]
    assert params["max_age"] == [str(FRESH_LOGIN_SECONDS)]
    assert params["client_id"] == [settings.OIDC_RP_CLIENT_ID]
    assert params["state"][0] in admin.session["oidc_states"]
    # Back to the review after the login, to press Sign once more.
    assert admin.session["oidc_login_next"] == url(
        "instruction_review", world.kommune, draft.version
    )


def test_a_sign_with_a_fresh_login_signs_and_says_what_happens_next(
    client: Client, world: World
) -> None:
    draft = draft_of(world)
    admin = logged_in(client, world.people["kommune_admin"], seconds_ago=30)
    review = text(admin.get(url("instruction_review", world.kommune, draft.version)))
    assert "Du har nettopp logget inn på nytt, så du kan signere fram til kl." in review

    response = admin.post(url("instruction_sign", world.kommune, draft.version), follow=True)

    assert response.redirect_chain[-1][0] == url("instruction", world.kommune)
    draft.refresh_from_db()
    assert draft.status == "signed"
    assert draft.signed_by == world.people["kommune_admin"]
    world.instruction.refresh_from_db()
    assert world.instruction.status == "superseded"
    page = text(response)
    assert f"Versjon {draft.version} er signert og gjelder fra nå." in page
    assert "går videre av seg selv" in page
    assert response.context["current"].version == draft.version


def test_signing_a_version_that_drops_a_service_warns_first_and_counts_what_it_revokes(
    client: Client, world: World
) -> None:
    (grant,) = world.vendor_grants("patient.read")
    others = Service.objects.exclude(code="patient")
    draft = draft_of(world, services=list(others))
    admin = logged_in(client, world.people["kommune_admin"], seconds_ago=30)

    review = text(admin.get(url("instruction_review", world.kommune, draft.version)))
    assert "Signeringen trekker tilbake 1 tilgang i produksjon" in review
    assert "(patient)" in review

    response = admin.post(url("instruction_sign", world.kommune, draft.version), follow=True)

    assert "1 tilgang i produksjon til en tjeneste denne versjonen ikke dekker" in text(response)
    grant.refresh_from_db()
    assert grant.status in (GrantStatus.REVOKING, GrantStatus.REVOKED)


def test_an_incomplete_draft_is_not_signed_even_after_a_fresh_login(
    client: Client, world: World
) -> None:
    draft = draft_of(world, retention="", contact_email="")
    admin = logged_in(client, world.people["kommune_admin"], seconds_ago=30)

    response = admin.post(url("instruction_sign", world.kommune, draft.version))

    assert response["Location"] == url("instruction_review", world.kommune, draft.version)
    (message,) = told(response)
    assert "Lagringstid" in message
    assert "E-post til kontaktperson" in message
    assert Instruction.objects.get(pk=draft.pk).signed_at is None


def test_a_signed_version_is_not_signed_again(client: Client, world: World) -> None:
    signed = world.instruction
    before = snapshot(signed)
    admin = logged_in(client, world.people["kommune_admin"], seconds_ago=30)

    response = admin.post(url("instruction_sign", world.kommune, signed.version), follow=True)

    assert response.redirect_chain[-1][0] == url("instruction", world.kommune)
    assert f"Versjon {signed.version} er signert og kan ikke endres" in text(response)
    assert snapshot(signed) == before


def test_a_reader_with_a_fresh_login_still_may_not_sign(client: Client, world: World) -> None:
    draft = draft_of(world)
    reader = logged_in(client, world.people["kommune_reader"], seconds_ago=30)

    assert reader.post(url("instruction_sign", world.kommune, draft.version)).status_code == 403
    assert (
        reader.get(url("instruction_confirm_login", world.kommune, draft.version)).status_code
        == 403
    )
    assert Instruction.objects.get(pk=draft.pk).signed_at is None
