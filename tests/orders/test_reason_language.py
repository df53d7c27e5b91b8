"""A policy reason reads in the reader's language, whatever language the order was made in."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.conftest import World

pytestmark = pytest.mark.django_db


def test_a_reason_decided_in_bokmal_reads_wholly_in_english(world: World) -> None:
    vendor = APIClient()
    vendor.force_authenticate(world.people["vendor_admin"])
    made = vendor.post(
        "/api/v1/access-requests/",
        {
            "client": str(world.client.pk),
            "kommune": world.kommune.orgnr,
            "items": [{"service": "patient", "access": "write"}],
        },
        format="json",
        HTTP_ACCEPT_LANGUAGE="nb",
    )
    assert made.status_code == 201, made.json()
    norwegian = made.json()["items"][0]["reason"]

    english = vendor.get(
        f"/api/v1/access-requests/{made.json()['id']}/", HTTP_ACCEPT_LANGUAGE="en"
    ).json()["items"][0]["reason"]

    assert "skrive" in norwegian
    assert "may not write patient" in english, english


def test_a_reason_stored_with_words_of_either_language_reads_in_the_readers() -> None:
    """Items decided before the parameters were kept as codes hold the decider's words."""
    from django.utils import translation

    from orders.policy import reason_text

    stored = {"service": "patient", "kommune": "Oslo", "environment": "produksjon", "date": "x"}
    with translation.override("en"):
        text = reason_text("not_available", stored)

    assert text == "patient opens in production on x; the item is granted by itself then."
