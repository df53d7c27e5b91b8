"""What a job reads of its client: the scope union is one aggregate without duplicates."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.models import Grant, GrantStatus, Service
from provisioning.runner import _state_of
from tests.conftest import World
from tests.factories import GrantFactory


def _grant(world: World, kommune: object, code: str, status: str) -> Grant:
    service = Service.objects.get(code=code)
    return GrantFactory(
        client=world.client,
        kommune=kommune,
        service=service,
        status=status,
    )


@pytest.mark.django_db
def test_the_scope_union_names_each_scope_once_and_does_not_grow_with_the_grants(
    world: World,
) -> None:
    for kommune in (world.kommune, world.other_kommune):
        _grant(world, kommune, "patient", GrantStatus.ACTIVE)
    _grant(world, world.kommune, "observation", GrantStatus.PENDING)
    _grant(world, world.other_kommune, "observation", GrantStatus.REVOKED)

    with CaptureQueriesContext(connection) as captured:
        state = _state_of(world.client, timezone.now())

    patient, observation = (
        Service.objects.get(code=c).scope_for("read") for c in ("patient", "observation")
    )
    assert state.scope_union == sorted([patient, observation])
    assert [g.service.code for g in state.new] == ["observation"]
    union_sql = next(q["sql"] for q in captured.captured_queries if "DISTINCT" in q["sql"])
    assert "created_at" not in union_sql.split("FROM")[0]
