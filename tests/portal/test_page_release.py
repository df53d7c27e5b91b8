"""A rendered page is freed by reference counting, not left to the cyclic garbage collector.

Left to the collector, a list of 100 rows was up to 7,000 objects that a full collection had to
find; at national scale those collections took 40-70 ms inside requests (docs/benchmarks.md).
``portal.api.page_release`` cuts what ties the page's rows to each other and to the serializers.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db.models import Model
from rest_framework.test import APIClient

from tests.conftest import World
from tests.orders.test_query_counts import CASES, Case

pytestmark = pytest.mark.django_db


@contextmanager
def garbage() -> Iterator[list[Any]]:
    """What the cyclic collector finds unreachable, of what the block leaves (kept, to be seen)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_listed_page_leaves_no_rows_to_the_garbage_collector(world: World, case: Case) -> None:
    case.add(world, 30)
    api = APIClient()
    api.force_login(world.people[case.persona])
    path = f"/api/v1/{case.endpoint}/?limit=100"
    api.get(path)  # the first request fills the process's own caches

    with garbage() as found:
        response = api.get(path)
        assert response.status_code == 200
        assert response.json()["results"]
        del response
        gc.collect()
        # The request, its view and its user refer to each other; the user is not a row.
        user = world.people[case.persona]
        rows = [
            type(obj).__name__
            for obj in found
            if issubclass(type(obj), Model) and not (type(obj) is type(user) and obj.pk == user.pk)
        ]

    assert rows == []
