"""Reading the audit trail: its chain's head, the chain checked end to end, and rows streamed."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet

from audit.chain import CONTENT, GENESIS, Checked, chain_check
from audit.models import AuditEvent

#: Rows fetched at a time when the whole trail is read.
CHUNK = 5000


def rows_streamed(rows: QuerySet[Any, Any], *, chunk_size: int = CHUNK) -> Iterator[Any]:
    """``rows`` a chunk at a time, however many there are.

    On PostgreSQL this is a server-side cursor in a transaction of its own (a read-only
    snapshot): outside one, Django declares the cursor WITH HOLD, and PostgreSQL would then run
    the whole query and keep every row before the first is read. SQLite reads a chunk at a time
    by itself, and a transaction there would take the write lock for the whole read.
    """
    if connection.vendor == "postgresql":
        with transaction.atomic():
            yield from rows.iterator(chunk_size=chunk_size)
    else:
        yield from rows.iterator(chunk_size=chunk_size)


@dataclass(frozen=True)
class Head:
    """The chain's last event: its id, its time and its hash (None and GENESIS for no event)."""

    id: int | None
    occurred_at: datetime.datetime | None
    hash: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "hash": self.hash,
        }


def audit_chain_head() -> Head:
    """The newest event of the chain, to be kept elsewhere: a later ``audit_verify --head`` with
    it proves that nothing up to it was rewritten or removed."""
    last = AuditEvent.objects.order_by("-id").values_list("id", "occurred_at", "chain_hash").first()
    if last is None:
        return Head(None, None, GENESIS)
    return Head(*last)


def audit_chain_verify(*, chunk_size: int = CHUNK) -> Checked:
    """Recompute every event's hash in id order, streaming; the first that differs is named."""
    rows = AuditEvent.objects.order_by("id").values_list("id", *CONTENT, "chain_hash")
    return chain_check(rows_streamed(rows, chunk_size=chunk_size))


def audit_head_problem(head: dict[str, Any]) -> str | None:
    """What is wrong with a head saved earlier (``Head.as_json``), or None when its event is
    still in the trail with that hash."""
    event_id, saved = head.get("id"), head.get("hash")
    if not isinstance(saved, str) or (event_id is not None and not isinstance(event_id, int)):
        return "the saved head is not an audit chain head (id, occurred_at, hash)"
    if event_id is None:
        return None if saved == GENESIS else "the saved head has a hash but no event id"
    stored = AuditEvent.objects.filter(pk=event_id).values_list("chain_hash", flat=True).first()
    if stored is None:
        return f"event {event_id} of the saved head is no longer in the trail"
    if stored != saved:
        return f"event {event_id} no longer has the saved head's hash: the trail was rewritten"
    return None
