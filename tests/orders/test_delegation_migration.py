"""The data migration that turns each service of an old delegation into a delegation item."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("orders", "0005_add_delegation_items_and_waiting_statuses")]
FILLED = [("orders", "0006_fill_delegation_items")]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_each_delegated_service_becomes_a_read_item_and_nothing_more() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        apps = executor.loader.project_state(BEFORE).apps
        Organisation = apps.get_model("tenants", "Organisation")
        Kommune = apps.get_model("tenants", "Kommune")
        Service = apps.get_model("orders", "Service")
        Delegation = apps.get_model("orders", "Delegation")
        kommune = Organisation.objects.create(
            orgnr="958935420",
            name="Oslo",
            kind="kommune",
            kommune=Kommune.objects.get(number="0301"),
        )
        vendor = Organisation.objects.create(orgnr="910000012", name="Trygghet", kind="vendor")
        delegation = Delegation.objects.create(
            kommune=kommune, vendor=vendor, valid_from=datetime.date(2026, 1, 1)
        )
        delegation.services.set(Service.objects.filter(code__in=["patient", "journaling"]))

        executor = MigrationExecutor(connection)
        executor.migrate(FILLED)

        apps = executor.loader.project_state(FILLED).apps
        items = apps.get_model("orders", "DelegationItem").objects.filter(
            delegation_id=delegation.pk
        )
        assert sorted(items.values_list("service__code", "access", "service_codes")) == [
            ("journaling", "read", []),
            ("patient", "read", []),
        ]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
