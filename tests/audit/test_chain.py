"""The audit trail is hash-chained: each event's hash covers the previous event's hash and its own
content, in id order, for single and batched writes and under concurrent writers; `audit_verify`
names the first event that no longer follows; a saved head proves nothing was cut from the end;
on PostgreSQL the table refuses UPDATE and DELETE."""

from __future__ import annotations

import datetime
import io
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from audit.chain import CONTENT, GENESIS, canonical, link
from audit.models import AuditEvent
from audit.selectors import audit_chain_head, audit_chain_verify
from audit.services import audit_event_record, audit_events_batched
from tests.components import manage
from tests.orders.test_policy_races import in_another_thread
from tests.provisioning.stack import database_url

TABLE = AuditEvent._meta.db_table
TRIGGER = "audit_event_append_only"


def record(action: str, **fields: Any) -> AuditEvent:
    return audit_event_record(
        actor=None, action=action, object_type="test", object_id=action, **fields
    )


def chain() -> list[AuditEvent]:
    return list(AuditEvent.objects.order_by("id"))


def recomputed(events: list[AuditEvent]) -> list[str]:
    hashes, previous = [], GENESIS
    for event in events:
        previous = link(previous, canonical(*(getattr(event, name) for name in CONTENT)))
        hashes.append(previous)
    return hashes


def verify(*args: str) -> str:
    out = io.StringIO()
    call_command("audit_verify", *args, stdout=out)
    return out.getvalue()


@contextmanager
def trigger_disabled() -> Iterator[Any]:
    """What someone with the database owner's rights could do: switch the refusal off."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {TRIGGER}")
        try:
            yield cursor
        finally:
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {TRIGGER}")


@pytest.mark.django_db
def test_each_event_s_hash_covers_the_previous_hash_and_its_own_canonical_content() -> None:
    first = record("first", after={"status": "active", "n": 1.5, "names": ["Bodø", "Å"]})
    second = record("second", before={"b": 1, "a": [True, None]})

    events = chain()
    assert [e.pk for e in events][-2:] == [first.pk, second.pk]
    assert [e.chain_hash for e in events] == recomputed(events)
    assert second.chain_hash == link(
        first.chain_hash, canonical(*(getattr(second, name) for name in CONTENT))
    )
    text = canonical(*(getattr(second, name) for name in CONTENT))
    assert json.loads(text)["time"].endswith("+00:00")  # UTC, microseconds
    assert " " not in text
    assert list(json.loads(text)) == sorted(json.loads(text))
    # What was hashed before the INSERT is what is read back from the database.
    stored = AuditEvent.objects.get(pk=second.pk)
    assert canonical(*(getattr(stored, name) for name in CONTENT)) == text


@pytest.mark.django_db
def test_batched_events_are_chained_in_their_order_by_one_insert() -> None:
    record("before the batch")
    with transaction.atomic(), audit_events_batched():
        for n in range(5):
            record(f"batched {n}")

    events = chain()
    assert [e.action for e in events][-5:] == [f"batched {n}" for n in range(5)]
    assert [e.chain_hash for e in events] == recomputed(events)
    assert audit_chain_verify().broken is None


@pytest.mark.django_db
def test_any_way_of_writing_an_event_chains_it() -> None:
    AuditEvent.objects.create(actor_label="x", action="created", object_type="t", object_id="1")
    events = [
        AuditEvent(actor_label="x", action="bulk", object_type="t", object_id=str(n))
        for n in range(3)
    ]
    AuditEvent.objects.bulk_create(events, batch_size=2)  # two INSERTs, one chain

    assert audit_chain_verify().broken is None
    assert "" not in AuditEvent.objects.values_list("chain_hash", flat=True)


@pytest.mark.django_db
def test_audit_verify_passes_an_intact_chain_and_names_its_head() -> None:
    record("one")
    last = record("two")

    out = verify()

    assert "audit chain intact" in out
    assert f"head {last.pk} {last.chain_hash}" in out


@pytest.mark.django_db
def test_changing_an_event_in_the_database_makes_audit_verify_name_that_event(
    postgresql: None,
) -> None:
    events = [record(f"event {n}", after={"status": "active"}) for n in range(5)]
    tampered = events[2]

    with trigger_disabled() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET after = %s WHERE id = %s",  # noqa: S608
            ['{"status": "revoked"}', tampered.pk],
        )

    with pytest.raises(CommandError, match=rf"broken at event {tampered.pk}\b"):
        verify()
    assert audit_chain_verify().broken.event_id == tampered.pk  # type: ignore[union-attr]


@pytest.mark.django_db
def test_rewriting_an_event_with_a_new_hash_of_its_own_breaks_the_next_one(
    postgresql: None,
) -> None:
    events = [record(f"event {n}") for n in range(4)]
    tampered, after_it = events[1], events[2]
    forged = AuditEvent.objects.get(pk=tampered.pk)
    forged.actor_label = "someone else"
    previous = events[0].chain_hash
    new_hash = link(previous, canonical(*(getattr(forged, name) for name in CONTENT)))

    with trigger_disabled() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET actor_label = %s, chain_hash = %s WHERE id = %s",  # noqa: S608
            ["someone else", new_hash, tampered.pk],
        )

    with pytest.raises(CommandError, match=rf"broken at event {after_it.pk}\b"):
        verify()


@pytest.mark.django_db
def test_deleting_an_event_breaks_the_chain_at_the_one_after_it(postgresql: None) -> None:
    events = [record(f"event {n}") for n in range(4)]

    with trigger_disabled() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [events[1].pk])  # noqa: S608

    with pytest.raises(CommandError, match=rf"broken at event {events[2].pk}\b"):
        verify()


@pytest.mark.django_db
def test_a_saved_head_proves_later_that_nothing_up_to_it_was_cut_off(
    postgresql: None, tmp_path: Path
) -> None:
    record("one")
    head_file = tmp_path / "head.json"
    out = io.StringIO()
    call_command("audit_head", stdout=out)
    head_file.write_text(out.getvalue())
    saved = json.loads(out.getvalue())
    last = record("two")
    assert saved == {
        "id": last.pk - 1,
        "occurred_at": AuditEvent.objects.get(pk=last.pk - 1).occurred_at.isoformat(),
        "hash": AuditEvent.objects.get(pk=last.pk - 1).chain_hash,
    }
    assert "the saved head" in verify("--head", str(head_file))

    # Removing the newest events leaves a chain that verifies by itself; the head does not.
    with trigger_disabled() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id >= %s", [saved["id"]])  # noqa: S608
    verify()
    with pytest.raises(CommandError, match=rf"event {saved['id']} of the saved head is no longer"):
        verify("--head", str(head_file))


@pytest.mark.django_db
def test_the_table_refuses_update_and_delete(postgresql: None) -> None:
    event = record("kept")

    for statement in (
        f"UPDATE {TABLE} SET action = 'changed' WHERE id = %s",  # noqa: S608
        f"DELETE FROM {TABLE} WHERE id = %s",  # noqa: S608
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [event.pk])

    assert AuditEvent.objects.get(pk=event.pk).action == "kept"
    assert audit_chain_verify().broken is None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_writer_waits_for_the_one_before_it_to_commit_and_chains_after_it(
    postgresql: None,
) -> None:
    """The head's lock, held until COMMIT: the second writer's event follows the first's."""

    def second() -> AuditEvent:
        with transaction.atomic():
            return record("second")

    with transaction.atomic():
        first = record("first")
        outcome = in_another_thread(second)  # returns once the second writer is blocked
    later = outcome()

    assert later.pk > first.pk
    assert later.chain_hash == link(
        first.chain_hash, canonical(*(getattr(later, name) for name in CONTENT))
    )
    assert audit_chain_verify().broken is None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_writers_leave_an_intact_chain(postgresql: None) -> None:
    writers, rounds = 6, 15
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            start.wait(timeout=30)
            for r in range(rounds):
                with transaction.atomic():
                    if r % 3 == 0:
                        with audit_events_batched():
                            for b in range(4):
                                record(f"w{n} r{r} b{b}")
                    else:
                        record(f"w{n} r{r}")
                        # More work in the same transaction, as a service does after its event.
                        AuditEvent.objects.filter(action="nothing").exists()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    assert AuditEvent.objects.count() == writers * (rounds // 3 * 4 + rounds - rounds // 3)
    checked = audit_chain_verify()
    assert checked.broken is None
    assert checked.last_id == audit_chain_head().id
    assert "audit chain intact" in verify()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_manage_py_audit_verify_exits_0_on_an_intact_chain_and_1_naming_a_broken_event(
    postgresql: None,
) -> None:
    events = [record(f"event {n}", after={"n": n}) for n in range(3)]
    env = {**os.environ, "DATABASE_URL": database_url()}

    intact = manage("audit_verify", env=env)
    assert intact.returncode == 0, intact.stderr
    with trigger_disabled() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET occurred_at = %s WHERE id = %s",  # noqa: S608
            [datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC), events[1].pk],
        )
    broken = manage("audit_verify", env=env)

    assert broken.returncode == 1
    assert f"audit chain broken at event {events[1].pk}" in broken.stderr
