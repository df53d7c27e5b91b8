"""The audit trail as CSV or JSON Lines, streamed: rows are read a chunk at a time and written
out in pieces of about 64 KiB, so an export of a million events holds no more than one of ten."""

from __future__ import annotations

import csv
import datetime
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

from audit.models import AuditEvent
from audit.selectors import rows_streamed
from portal.exports import csv_cell

#: The columns of an export (CSV header, JSON keys), as the API names them.
COLUMNS = (
    "id",
    "occurred_at",
    "actor",
    "organisation",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "request_id",
    "hash",
)
#: What is read of each event. ``before`` and ``after`` are read as the database's JSON text,
#: which an export writes as it is: decoding and encoding them again was half its time.
FIELDS = (
    "id",
    "occurred_at",
    "actor_label",
    "organisation_orgnr",
    "action",
    "object_type",
    "object_id",
    "before_json",
    "after_json",
    "request_id",
    "chain_hash",
)
#: Each format: its media type and file extension.
FORMATS = {"csv": ("text/csv; charset=utf-8", "csv"), "jsonl": ("application/jsonl", "jsonl")}
#: Rows read from the database at a time.
CHUNK = 2000
#: Bytes gathered before a piece is sent.
PIECE = 64 * 1024

#: A str as a JSON string, not ASCII-escaped (the C function ``json.dumps`` uses).
_string = json.encoder.encode_basestring


def _time(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).isoformat(timespec="microseconds")


def csv_pieces(rows: Iterable[tuple[Any, ...]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for event_id, occurred_at, *texts, before, after, request_id, chain_hash in rows:
        writer.writerow(
            [
                event_id,
                _time(occurred_at),
                *(csv_cell(text) for text in texts),
                "" if before is None else csv_cell(before),
                "" if after is None else csv_cell(after),
                csv_cell(request_id),
                chain_hash,
            ]
        )
        if buffer.tell() >= PIECE:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _line(row: tuple[Any, ...]) -> str:
    (
        event_id,
        occurred_at,
        actor,
        orgnr,
        action,
        object_type,
        object_id,
        before,
        after,
        rid,
        hash_,
    ) = row
    return (
        f'{{"id":{event_id},"occurred_at":"{_time(occurred_at)}","actor":{_string(actor)},'
        f'"organisation":{_string(orgnr)},"action":{_string(action)},'
        f'"object_type":{_string(object_type)},"object_id":{_string(object_id)},'
        f'"before":{before or "null"},"after":{after or "null"},'
        f'"request_id":{_string(rid)},"hash":{_string(hash_)}}}'
    )


def jsonl_pieces(rows: Iterable[tuple[Any, ...]]) -> Iterator[bytes]:
    lines: list[str] = []
    size = 0
    for row in rows:
        line = _line(row)
        lines.append(line)
        size += len(line) + 1
        if size >= PIECE:
            yield ("\n".join(lines) + "\n").encode()
            lines, size = [], 0
    if lines:
        yield ("\n".join(lines) + "\n").encode()


def audit_events_export(events: QuerySet[AuditEvent], *, kind: str) -> Iterator[bytes]:
    """``events`` (filtered and ordered by the caller) as ``kind`` ("csv" or "jsonl")."""
    as_text = events.annotate(
        before_json=Cast("before", TextField()), after_json=Cast("after", TextField())
    )
    rows = rows_streamed(as_text.values_list(*FIELDS), chunk_size=CHUNK)
    return csv_pieces(rows) if kind == "csv" else jsonl_pieces(rows)
