"""Signing through the real provider: the fresh login sends ``prompt=login``, the provider shows
its login page again although its session lives, and the login it makes lets the sign through."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client

from orders import services
from orders.models import Instruction, Service
from tenants.models import Membership, Organisation, Role
from tests.integration import Provider
from tests.pages.test_instruction import text, url
from tests.tenants.test_oidc_login import login_at_provider

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

LOGIN = "admin@oslo.example"


class Browser(requests.Session):
    """The person's browser at the provider: keeps its session, counts the login pages shown."""

    def __init__(self) -> None:
        super().__init__()
        self.login_pages = 0

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:
        response = super().get(url, **kwargs)
        if response.status_code == 200 and 'name="login"' in response.text:
            self.login_pages += 1
        return response


def back_at_portal(client: Client, callback: str) -> str:
    """Open the provider's redirect to the callback; return where the portal sends on to."""
    parts = urlsplit(callback)
    landed = client.get(f"{parts.path}?{parts.query}")
    assert landed.status_code == 302, landed
    return str(landed["Location"])


def test_signing_asks_the_real_provider_for_a_new_login_although_its_session_lives(
    client: Client, oidc_settings: Provider, kommune: Organisation
) -> None:
    Membership.objects.create(organisation=kommune, email=LOGIN, role=Role.KOMMUNE_ADMIN)
    browser = Browser()
    back_at_portal(client, login_at_provider(client, oidc_settings, LOGIN, browser))
    assert browser.login_pages == 1
    admin = Membership.objects.get(email=LOGIN).user
    assert admin is not None
    draft = services.instruction_create(
        kommune=kommune,
        actor=admin,
        services=list(Service.objects.all()[:2]),
        data={
            "subject_matter": "Velferdsteknologi",
            "duration": "Til avtalen opphører",
            "nature_and_purpose": "Gjør helseopplysninger tilgjengelige",
            "personal_data_categories": ["helseopplysninger"],
            "data_subject_categories": ["pasienter"],
            "retention": "Så lenge tjenesten leveres",
            "contact_name": "Kari Nordmann",
            "contact_email": "kari@oslo.example",
        },
    )

    # The ordinary login said nothing of when the person logged in: the sign is refused.
    sign = url("instruction_sign", kommune, draft.version)
    refused = client.post(sign)
    confirm = url("instruction_confirm_login", kommune, draft.version)
    assert refused["Location"] == confirm
    assert Instruction.objects.get(pk=draft.pk).signed_at is None

    # The provider's session lives: an ordinary login comes straight back, with no login page.
    back_at_portal(client, login_at_provider(client, oidc_settings, LOGIN, browser))
    assert browser.login_pages == 1
    assert client.post(sign)["Location"] == confirm

    # The fresh login asks for prompt=login, and the provider shows its login page again.
    asked = client.get(confirm)
    assert parse_qs(urlsplit(asked["Location"]).query)["prompt"] == ["login"]
    callback = login_at_provider(client, oidc_settings, LOGIN, browser, start_at=confirm)
    assert browser.login_pages == 2
    review = url("instruction_review", kommune, draft.version)
    assert back_at_portal(client, callback) == review
    assert "du kan signere fram til kl." in text(client.get(review))

    signed = client.post(sign)

    assert signed["Location"] == url("instruction", kommune)
    draft.refresh_from_db()
    assert draft.status == "signed"
    assert draft.signed_by == admin
