"""``portal.db.InSubquery``: the rows of ``column__in=subquery``, in a form that PostgreSQL can
serve from an index when it is one side of an OR (the visibility filters of grants and orders)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.models import Q, QuerySet

from orders.models import Grant
from portal.db import InSubquery
from tenants.models import OAuthClient
from tests.conftest import World
from tests.orders.test_query_counts import add_grants

pytestmark = pytest.mark.django_db


def vendor_clients(world: World) -> QuerySet[OAuthClient, dict[str, Any]]:
    return OAuthClient.objects.filter(vendor=world.vendor).order_by().values("pk")


def test_it_selects_the_rows_that_in_selects(world: World) -> None:
    add_grants(world, 8)
    clients = vendor_clients(world)
    either = Q(kommune_id__in=[world.other_kommune.pk])

    expected = set(Grant.objects.filter(either | Q(client__in=clients)))
    found = set(Grant.objects.filter(either | InSubquery("client_id", clients)))

    assert found == expected
    assert {grant.client_id for grant in found} == {world.client.pk}
    assert not Grant.objects.filter(InSubquery("client_id", clients.none())).exists()


@pytest.mark.usefixtures("postgresql")  # a PostgreSQL query plan
def test_postgresql_can_answer_an_or_with_it_from_two_indexes(world: World) -> None:
    add_grants(world, 8)
    clients = vendor_clients(world)
    either = Q(kommune_id__in=[world.other_kommune.pk])
    with connection.cursor() as cursor:  # as a large table would make it choose
        cursor.execute("SET LOCAL enable_seqscan = off")

    plain = Grant.objects.filter(either | Q(client__in=clients)).explain()
    written = Grant.objects.filter(either | InSubquery("client_id", clients)).explain()

    # A plain IN under an OR is a subplan tested against every row: no index can serve it.
    assert "BitmapOr" not in plain
    assert "BitmapOr" in written, written
