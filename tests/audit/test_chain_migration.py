"""The events written before the chain existed are chained by its fill migration, in id order;
the trigger comes after it, and goes with the migration's reversal."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from audit.selectors import audit_chain_verify
from audit.services import audit_event_record

BEFORE = [("audit", "0002_add_newest_first_index")]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_events_from_before_the_chain_are_chained_in_id_order_by_the_migration(
    postgresql: None,
) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO audit_auditevent (occurred_at, actor_label, organisation_orgnr,"
                " action, object_type, object_id, before, after, request_id)"
                " SELECT now() - make_interval(secs => n), 'system:old', '958935420',"
                " 'grant.revoked', 'orders.grant', n::text, '{\"status\": \"active\", \"n\": 1.5}',"
                " NULL, ''"
                " FROM generate_series(1, 2500) n"  # more than one batch of the fill
            )
            # Reversed, the migrations took the trigger away too.
            cursor.execute("UPDATE audit_auditevent SET action = 'changed' WHERE object_id = '1'")

        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

        checked = audit_chain_verify()
        assert checked.broken is None
        assert checked.events == 2500
        after = audit_event_record(actor=None, action="after the migration")
        assert audit_chain_verify().last_id == after.pk
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("UPDATE audit_auditevent SET action = 'changed' WHERE object_id = '1'")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
