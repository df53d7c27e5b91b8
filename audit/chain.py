"""The audit trail's hash chain: what an event's hash covers, and how a chain is checked.

Each event's ``chain_hash`` is the SHA-256 of the previous event's hash followed by the event's own
canonical content; the chain runs in id order and starts from ``GENESIS``. Changing, removing or
inserting an event anywhere changes every hash after it, so the first event whose hash no longer
follows names where the trail was rewritten; a head (the last event's id and hash) kept elsewhere
also proves that nothing was cut from the end.

Pure functions only: the models write with them, ``audit_verify`` reads with them.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: The hash before the first event.
GENESIS = "0" * 64

#: Sorted keys, no whitespace, ASCII (one encoder: ``json.dumps`` with options makes one a call).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))

#: The columns an event's content is read from, in this order (``values_list(*CONTENT)``).
CONTENT = (
    "occurred_at",
    "actor_id",
    "actor_label",
    "organisation_id",
    "organisation_orgnr",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "request_id",
)


def canonical(
    occurred_at: datetime.datetime,
    actor_id: int | None,
    actor_label: str,
    organisation_id: uuid.UUID | str | None,
    organisation_orgnr: str,
    action: str,
    object_type: str,
    object_id: str,
    before: Any,
    after: Any,
    request_id: str,
) -> str:
    """An event's content as one JSON text: sorted keys, no whitespace, the time in UTC with
    microseconds. The same event gives the same text whether it is about to be written or read
    back from PostgreSQL or SQLite (a UUID given as text is normalised as the column would)."""
    organisation = None
    if organisation_id is not None:
        given = organisation_id
        organisation = str(given if isinstance(given, uuid.UUID) else uuid.UUID(given))
    return _ENCODER.encode(
        {
            "time": occurred_at.astimezone(datetime.UTC).isoformat(timespec="microseconds"),
            "actor": actor_id,
            "actor_label": actor_label,
            "organisation": organisation,
            "orgnr": organisation_orgnr,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "before": before,
            "after": after,
            "request_id": request_id,
        }
    )


def link(previous: str, content: str) -> str:
    """The hash of an event whose content is ``content``, after an event whose hash is
    ``previous`` (always 64 hex digits, so the two never run into each other)."""
    return hashlib.sha256((previous + content).encode()).hexdigest()


@dataclass(frozen=True)
class Break:
    """The first event that does not follow from the one before it."""

    event_id: int
    stored: str
    expected: str


@dataclass(frozen=True)
class Checked:
    events: int
    last_id: int | None
    last_hash: str
    broken: Break | None


def chain_check(rows: Iterable[tuple[Any, ...]]) -> Checked:
    """Check rows of ``(id, *CONTENT, chain_hash)`` in id order; stop at the first break."""
    previous = GENESIS
    count = 0
    last_id: int | None = None
    for row in rows:
        event_id, stored = row[0], row[-1]
        expected = link(previous, canonical(*row[1:-1]))
        count += 1
        if stored != expected:
            return Checked(count, event_id, previous, Break(event_id, stored, expected))
        previous, last_id = stored, event_id
    return Checked(count, last_id, previous, None)
