"""Invitations bind only to an identity the provider has verified (``email_verified``)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import SuspiciousOperation
from django.test import Client, RequestFactory

from tenants.auth import MembershipOIDCBackend, unverified_username
from tenants.models import Membership, Organisation
from tests.integration import Provider
from tests.tenants.test_oidc_login import login_at_provider

pytestmark = pytest.mark.django_db


def backend_with(claims: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The backend as the callback runs it, with the provider's userinfo answer given here."""
    backend = MembershipOIDCBackend()
    request = RequestFactory().get("/oidc/callback/")
    request.session = SessionStore()
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
    backend.request = request
    monkeypatch.setattr(backend, "get_userinfo", lambda *args: claims)
    return backend


def test_an_unverified_email_logs_in_without_binding_the_invitation(
    kommune: Organisation, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    invitation = Membership.objects.create(
        organisation=kommune, email="carol@kommune.example", role="kommune_admin"
    )
    backend = backend_with(
        {"sub": "x1", "email": "carol@kommune.example", "email_verified": False}, monkeypatch
    )

    with caplog.at_level(logging.INFO, logger="tenants.auth"):
        user = backend.get_or_create_user("access-token", "id-token", {})

    assert user is not None
    invitation.refresh_from_db()
    assert invitation.user is None
    assert not Membership.objects.filter(user=user).exists()
    said = [str(m) for m in get_messages(backend.request)]
    assert len(said) == 1
    assert "verified" in caplog.text
    assert "access-token" not in caplog.text
    assert "id-token" not in caplog.text


def test_a_missing_email_verified_claim_counts_as_unverified(
    kommune: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    invitation = Membership.objects.create(
        organisation=kommune, email="carol@kommune.example", role="kommune_admin"
    )
    backend = backend_with({"sub": "x1", "email": "carol@kommune.example"}, monkeypatch)

    backend.get_or_create_user("access-token", "id-token", {})

    invitation.refresh_from_db()
    assert invitation.user is None


def test_an_unverified_email_does_not_log_in_as_the_person_who_verified_it(
    kommune: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The identity is the username: an unverified claim of it must not reach that account."""
    verified = backend_with(
        {"sub": "carol", "email": "carol@kommune.example", "email_verified": True}, monkeypatch
    ).get_or_create_user("a", "i", {})
    from tenants import services

    services.membership_invite(
        organisation=kommune, email="carol@kommune.example", role="kommune_admin"
    )
    assert Membership.objects.get(email="carol@kommune.example").user == verified

    impostor = backend_with(
        {"sub": "mallory", "email": "carol@kommune.example", "email_verified": False}, monkeypatch
    ).get_or_create_user("a", "i", {})

    assert impostor is not None
    assert impostor.pk != verified.pk
    assert not Membership.objects.filter(user=impostor).exists()


def test_an_invitation_made_after_an_unverified_login_is_not_bound_to_it(
    kommune: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``membership_invite`` binds at once to a known person: never to an unverified one."""
    from tenants import services

    backend_with(
        {"sub": "mallory", "email": "carol@kommune.example", "email_verified": False}, monkeypatch
    ).get_or_create_user("a", "i", {})

    invited = services.membership_invite(
        organisation=kommune, email="carol@kommune.example", role="kommune_admin"
    )

    assert invited.user is None


def test_the_verification_claim_is_configurable(
    kommune: Organisation, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.OIDC_VERIFIED_CLAIM = "https://idp.example/verified"
    invitation = Membership.objects.create(
        organisation=kommune, email="carol@kommune.example", role="kommune_admin"
    )
    backend = backend_with(
        {
            "sub": "x1",
            "email": "carol@kommune.example",
            "email_verified": False,
            "https://idp.example/verified": True,
        },
        monkeypatch,
    )

    user = backend.get_or_create_user("a", "i", {})

    invitation.refresh_from_db()
    assert invitation.user == user


@pytest.mark.integration
def test_the_real_provider_sends_demo_people_verified_and_unverified_logins_not(
    client: Client, oidc_settings: Provider, kommune: Organisation
) -> None:
    """oidc/provider.mjs: a login ``unverified:<e-mail>`` is that e-mail, not verified."""
    Membership.objects.create(
        organisation=kommune, email="carol@kommune.example", role="kommune_admin"
    )

    callback = login_at_provider(client, oidc_settings, "unverified:carol@kommune.example")
    parts = urlsplit(callback)
    client.get(f"{parts.path}?{parts.query}", HTTP_ACCEPT_LANGUAGE="en")
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en")

    user = page.context["user"]
    assert user.is_authenticated
    assert user.email == "carol@kommune.example"
    assert Membership.objects.get(email="carol@kommune.example").user is None
    assert "not verified" in page.content.decode()

    other = Client()
    callback = login_at_provider(other, oidc_settings, "carol@kommune.example")
    parts = urlsplit(callback)
    other.get(f"{parts.path}?{parts.query}")
    bound = Membership.objects.get(email="carol@kommune.example").user
    assert bound is not None
    assert bound.pk != user.pk
    assert User.objects.filter(pk=bound.pk, username="carol@kommune.example").exists()


def test_binding_an_invitation_at_login_is_audited(
    kommune: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audit.models import AuditEvent

    invitation = Membership.objects.create(
        organisation=kommune, email="carol@kommune.example", role="kommune_admin"
    )
    user = backend_with(
        {"sub": "carol", "email": "carol@kommune.example", "email_verified": True}, monkeypatch
    ).get_or_create_user("a", "i", {})

    event = AuditEvent.objects.get(object_id=str(invitation.pk), action="membership.bound")
    assert event.actor_id == user.pk
    assert event.after == {"email": "carol@kommune.example", "role": "kommune_admin", "bound": True}


@pytest.mark.parametrize("verified", [False, True])
def test_a_login_without_a_subject_is_refused_and_creates_no_account(
    monkeypatch: pytest.MonkeyPatch, verified: bool
) -> None:
    """Unverified accounts are keyed by ``sub``: without one, every such login would share one
    account (the hash of the empty string)."""
    accounts = User.objects.count()

    for email in ("one@example.test", "two@example.test"):
        backend = backend_with({"email": email, "email_verified": verified}, monkeypatch)
        with pytest.raises(SuspiciousOperation):
            backend.get_or_create_user("access-token", "id-token", {})

    assert User.objects.count() == accounts
    with pytest.raises(ValueError, match="sub"):
        unverified_username({"email": "one@example.test"})
