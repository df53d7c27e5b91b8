"""The API signs an instruction under the page's rule: only a person who logged in at the
provider in the last few minutes (``tenants.auth.login_is_fresh``); never an automation client."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from orders.models import Instruction
from tests.conftest import World
from tests.factories import InstructionFactory, api_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(world: World) -> Instruction:
    return InstructionFactory(kommune=world.kommune, signed_at=None, signed_by=None)


def admin_session(world: World, *, logged_in_ago: float | None) -> APIClient:
    api: APIClient = api_session(world.people["kommune_admin"], logged_in_ago=logged_in_ago)
    return api


@pytest.mark.parametrize("logged_in_ago", [None, 3600.0])
def test_a_session_without_a_fresh_login_cannot_sign_through_the_api(
    world: World, draft: Instruction, logged_in_ago: float | None
) -> None:
    api = admin_session(world, logged_in_ago=logged_in_ago)

    response = api.post(f"/api/v1/instructions/{draft.pk}/sign/")

    assert response.status_code == 403
    assert "fresh_login" in response.json()
    draft.refresh_from_db()
    assert draft.signed_at is None


def test_an_automation_client_cannot_sign(world: World, draft: Instruction) -> None:
    api = APIClient()
    api.force_authenticate(world.people["kommune_admin"])  # not a browser session

    response = api.post(f"/api/v1/instructions/{draft.pk}/sign/")

    assert response.status_code == 403
    draft.refresh_from_db()
    assert draft.signed_at is None


def test_a_session_with_a_fresh_login_signs_through_the_api(
    world: World, draft: Instruction
) -> None:
    api = admin_session(world, logged_in_ago=30.0)

    response = api.post(f"/api/v1/instructions/{draft.pk}/sign/")

    assert response.status_code == 200, response.json()
    draft.refresh_from_db()
    assert draft.signed_by == world.people["kommune_admin"]
