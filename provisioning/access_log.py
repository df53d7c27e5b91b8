"""The gateway's data-access log, from its file into the database.

HAProxy writes one JSON object a line for every request it answers, passed or refused, on its
standard output (the ``log-format`` of ``gateway/haproxy.cfg.template``), and whoever starts it
appends that to a file (``scripts/gateway.sh``: ``GATEWAY_ACCESS_LOG``). The collector
(``manage.py gateway_log_collect``) follows the file:

* It reads from a cursor, (file identity, byte offset), kept in the database
  (``AccessLogCursor``), in batches of whole lines. Each batch's rows and the cursor's new
  offset are committed in one transaction: a collector killed anywhere loses nothing and loads
  nothing twice when it starts again. A gateway restart appends to the same file, so the cursor
  goes on where it was. Collectors of the same file wait for each other (the cursor row is
  locked for the batch).
* A line cut short (HAProxy is still writing it) waits for the next batch. A line that is not
  an entry (HAProxy's own notices on stdout, such as "Proxy fhir stopped", or damage) is
  counted as skipped and passed over.
* Rotation by renaming (``mv access.log access.log.1``, then a gateway restart, which opens a
  new ``access.log``): the collector finds the old file among its siblings by its inode, loads
  the rest of it, and moves to the new file once the gateway writes there. Truncation in place
  (logrotate's ``copytruncate``) starts the cursor again at 0; lines written between the
  collector's last batch and the copy are then only in the copy, so collect just before such
  a rotation (``gateway_log_collect --once`` in logrotate's ``prerotate``), or rotate by
  renaming. A new file that got a deleted file's inode is told apart by its first bytes.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.db import connection, transaction
from django.utils import timezone

from provisioning.models import AccessLogCursor, DataAccessEntry, GatewayTrafficDay

logger = logging.getLogger(__name__)

#: How much of the file one batch reads: about 8,000 lines of the gateway's format.
BATCH_BYTES = 2 * 1024 * 1024
#: Bytes of a file's start that tell it from another file that got its inode.
HEAD_BYTES = 64
#: Every line of the format starts so (its version is 1).
LINE_START = b'{"v":1,'
#: A path of a kommune's FHIR routes: the kommune and environment of a refused call the
#: gateway refused before it read them from the route (a missing or invalid token).
_ROUTE = re.compile(r"(/test)?/([0-9]{9})/fhir(?:/|$)")
#: HAProxy's "<NOSRV>": the gateway answered itself; the request reached no FHIR service.
NO_SERVER = "<NOSRV>"
#: The columns of a row, in the order ``line_parse`` gives them.
COLUMNS = (
    "occurred_at",
    "client_id",
    "kommune",
    "service",
    "access",
    "environment",
    "method",
    "path",
    "status",
    "duration_ms",
    "refused",
)
Row = tuple[datetime.datetime, str, str, str, str, str, str, str, int, int, bool]

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


# --- One line -----------------------------------------------------------------------------------


#: A string of the line once its "\/" are slashes and it holds no other escape: "-" (no rule
#: set the variable) leaves the group empty (None).
_STRING = r'"(?:-|([^"\\]*))"'
#: The gateway's line, its fields in the template's order. Most lines are read by this pattern
#: alone; a line with another escape (a quote, a \uXXXX) or whose keys differ is read as JSON.
_LINE = re.compile(
    r'\{"v":1,"t":(-?[0-9]{1,15}),"th":(-?[0-9]{1,9}),"ti":(-?[0-9]{1,9}),'
    r'"client_id":' + _STRING + r',"kommune":' + _STRING + r',"service":' + _STRING + ","
    r'"access":' + _STRING + r',"environment":' + _STRING + r',"method":' + _STRING + ","
    r'"path":' + _STRING + r',"status":(-?[0-9]{1,9}),"duration_ms":(-?[0-9]{1,12}),'
    r'"server":"([^"\\]*)"\}'
)


def _text(value: Any) -> str:
    """A string field of a line read as JSON."""
    return value if isinstance(value, str) and value != "-" else ""


def _row(
    millis: int,
    texts: tuple[str, str, str, str, str, str, str],
    status: int,
    duration: int,
    server: str,
) -> Row | None:
    client_id, kommune, service, access, environment, method, path = texts
    path = path[:1024]
    if not kommune and (route := _ROUTE.match(path)):
        kommune = route.group(2)
        environment = "test" if route.group(1) else "production"
    try:
        occurred_at = datetime.datetime.fromtimestamp(millis / 1000, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return (
        occurred_at,
        client_id[:200],
        kommune[:9],
        service[:50],
        access[:5],
        environment[:10],
        method[:16],
        path,
        max(min(status, 32767), -1),
        max(min(duration, 2**31 - 1), -1),
        server == NO_SERVER,
    )


def _json_row(raw: bytes) -> Row | None:
    """A line that does not match the pattern, read as JSON: the same keys in any order."""
    try:
        fields = json.loads(raw)
        # The request came after the handshake and the keep-alive idle time (see the template).
        millis = int(fields["t"]) + max(int(fields["th"]), 0) + max(int(fields["ti"]), 0)
        status, duration = int(fields["status"]), int(fields["duration_ms"])
        server, method = fields["server"], fields["method"]
    except (ValueError, KeyError, TypeError):
        return None
    if not (isinstance(server, str) and isinstance(method, str) and method):
        return None
    texts = tuple(
        _text(fields.get(name))
        for name in ("client_id", "kommune", "service", "access", "environment")
    )
    return _row(millis, (*texts, method, _text(fields.get("path"))), status, duration, server)  # type: ignore[arg-type]


def line_parse(raw: bytes) -> Row | None:
    """The row of one line of the gateway's format, or None for anything else."""
    if not raw.startswith(LINE_START):
        return None
    try:
        # HAProxy's JSON escapes every "/" as "\/"; outside its strings a line has no "\".
        line = raw.decode().replace("\\/", "/")
    except UnicodeDecodeError:
        return None
    match = None if "\\" in line else _LINE.fullmatch(line)
    if match is None:
        return _json_row(raw)
    t, th, ti, client_id, kommune, service, access, environment, method, path, *rest = (
        match.groups()
    )
    status, duration, server = rest
    if not method:
        return None
    # The request came after the handshake and the keep-alive idle time (see the template).
    millis = int(t) + max(int(th), 0) + max(int(ti), 0)
    texts = (
        client_id or "",
        kommune or "",
        service or "",
        access or "",
        environment or "",
        method,
        path or "",
    )
    return _row(millis, texts, int(status), int(duration), server)


def line_format(
    *,
    at: datetime.datetime,
    client_id: str = "",
    kommune: str = "",
    service: str = "",
    access: str = "",
    environment: str = "",
    method: str = "GET",
    path: str,
    status: int,
    duration_ms: int = 1,
    refused: bool | None = None,
) -> bytes:
    """A line as the gateway writes it (for the benchmark, the demo and tests): the same keys,
    "-" for what no rule set, HAProxy's JSON escaping (``/`` as ``\\/``)."""

    def text(value: str) -> str:
        return json.dumps(value or "-", ensure_ascii=False)[1:-1].replace("/", "\\/")

    millis = (at - _EPOCH) // datetime.timedelta(milliseconds=1)
    if refused is None:
        refused = status in (400, 401, 403, 404, 405, 411, 413, 415)
    return (
        f'{{"v":1,"t":{millis},"th":0,"ti":0,"client_id":"{text(client_id)}",'
        f'"kommune":"{text(kommune)}","service":"{text(service)}","access":"{text(access)}",'
        f'"environment":"{text(environment)}","method":"{method}","path":"{text(path)}",'
        f'"status":{status},"duration_ms":{duration_ms},'
        f'"server":"{NO_SERVER if refused else "upstream"}"}}\n'
    ).encode()


# --- The file -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """Whole lines read from one file, and where the cursor stands after them."""

    lines: list[bytes]
    device: int
    inode: int
    head: bytes
    offset: int
    #: The cursor moved to another file (a rotation) or back to the start (a truncation).
    moved: bool = False


def _head(handle: IO[bytes]) -> bytes:
    return os.pread(handle.fileno(), HEAD_BYTES, 0)


def _lines(handle: IO[bytes], offset: int, limit: int, *, final: bool) -> tuple[list[bytes], int]:
    """The whole lines from ``offset``, at most ``limit`` bytes of them, and the offset after
    them. A line cut short waits, unless the file is ``final`` (no one writes to it any more).
    A line longer than ``limit`` is passed over in pieces of ``limit`` bytes, each counted as a
    line that is no entry (the format's lines are under 2 KiB)."""
    data = os.pread(handle.fileno(), limit, offset)
    end = data.rfind(b"\n") + 1
    if end == 0:
        if len(data) == limit or (final and data):
            return [data], offset + len(data)
        return [], offset
    if final and len(data) < limit:
        end = len(data)
    return data[:end].splitlines(), offset + end


def _same_file(handle: IO[bytes], cursor: AccessLogCursor) -> bool:
    stat = os.fstat(handle.fileno())
    if (stat.st_dev, stat.st_ino) != (cursor.device, cursor.inode):
        return False
    head = bytes(cursor.head)
    return _head(handle)[: len(head)] == head


def _rotated(path: Path, cursor: AccessLogCursor) -> IO[bytes] | None:
    """The file the cursor was reading, renamed beside ``path`` (``access.log.1``), opened."""
    try:
        siblings = list(os.scandir(path.parent))
    except FileNotFoundError:
        return None
    for entry in siblings:
        if entry.name == path.name or not entry.name.startswith(path.name):
            continue
        if entry.inode() != cursor.inode:
            continue
        try:
            handle = open(entry.path, "rb")  # noqa: SIM115 - returned, closed by the caller
        except OSError:
            continue
        if _same_file(handle, cursor):
            return handle
        handle.close()
    return None


@contextmanager
def _opened(path: Path) -> Iterator[IO[bytes] | None]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        yield None
        return
    with handle:
        yield handle


def _identity(handle: IO[bytes]) -> tuple[int, int]:
    stat = os.fstat(handle.fileno())
    return stat.st_dev, stat.st_ino


def batch_read(path: Path, cursor: AccessLogCursor, limit: int = BATCH_BYTES) -> Batch | None:
    """The next lines for ``cursor`` (see the module's docstring), or None when there are none
    and the cursor stays where it is."""
    with _opened(path) as current:
        known = cursor.inode is not None
        if known and (current is None or not _same_file(current, cursor)):
            # The file the cursor was in is no longer at ``path``: rotated, or replaced.
            # Whether the gateway writes to the new file yet is read before the old file's
            # rest: once it does, it never writes to the old one again.
            moved_on = current is not None and os.fstat(current.fileno()).st_size > 0
            old = _rotated(path, cursor)
            if old is not None:
                with old:
                    lines, offset = _lines(old, cursor.offset, limit, final=moved_on)
                    if lines:
                        device, inode = _identity(old)
                        return Batch(lines, device, inode, bytes(cursor.head), offset)
                if not moved_on:
                    return None  # the gateway may still write to the old file
            elif current is None:
                return None
            logger.info("access log %s: the cursor moves to a new file", path)
            offset, moved = 0, True
        elif current is None:
            return None
        else:
            offset, moved = cursor.offset, not known
            if os.fstat(current.fileno()).st_size < offset:
                logger.warning("access log %s was truncated: reading it from the start", path)
                offset, moved = 0, True
        if current is None:  # never: each branch above returned, or holds the file
            return None
        lines, end = _lines(current, offset, limit, final=False)
        head = _head(current)
        device, inode = _identity(current)
        if not lines and not moved:
            return None
        return Batch(lines, device, inode, head, end, moved=moved)


# --- Into the database --------------------------------------------------------------------------


def _traffic_add(rows: list[Row]) -> None:
    """Add the rows' calls to the national counts per local day and service, in the rows'
    transaction (one statement: PostgreSQL and SQLite both take ON CONFLICT ... DO UPDATE)."""
    zone = timezone.get_default_timezone()
    counts: Counter[tuple[datetime.date, str]] = Counter()
    refusals: Counter[tuple[datetime.date, str]] = Counter()
    for row in rows:
        key = (row[0].astimezone(zone).date(), row[3])
        counts[key] += 1
        refusals[key] += row[10]
    if not counts:
        return
    table = GatewayTrafficDay._meta.db_table
    values = ", ".join(["(%s, %s, %s, %s)"] * len(counts))
    params: list[Any] = []
    for (day, service), calls in counts.items():
        params += [day, service, calls, refusals[(day, service)]]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (day, service, calls, refused) VALUES {values} "  # noqa: S608 - the table's name, and placeholders
            f"ON CONFLICT (day, service) DO UPDATE SET calls = {table}.calls + excluded.calls, "
            f"refused = {table}.refused + excluded.refused",
            params,
        )


def _rows_insert(rows: list[Row]) -> None:
    """COPY on PostgreSQL (several times faster than INSERT for a batch of thousands); a bulk
    INSERT elsewhere."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        table = DataAccessEntry._meta.db_table
        with connection.cursor() as cursor:
            raw = cursor.cursor  # psycopg's own cursor, under Django's wrapper
            with raw.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    DataAccessEntry.objects.bulk_create(
        (DataAccessEntry(**dict(zip(COLUMNS, row, strict=True))) for row in rows),
        batch_size=500,
    )


@dataclass
class Collected:
    """What one collection loaded: entries, lines that were none, and the batches."""

    entries: int = 0
    skipped: int = 0
    batches: int = 0


def log_collect(
    *,
    path: Path,
    source: str = "gateway",
    limit: int = BATCH_BYTES,
    max_batches: int = 0,
    stopping: Callable[[], bool] = lambda: False,
) -> Collected:
    """Load the lines of ``path`` the cursor of ``source`` has not loaded yet, batch by batch,
    until it has caught up (or after ``max_batches``, when not 0, or once ``stopping()`` says
    so between batches). Each batch commits its rows and the cursor together; run it again at
    any time, from any process."""
    AccessLogCursor.objects.get_or_create(source=source)
    done = Collected()
    while (not max_batches or done.batches < max_batches) and not stopping():
        with transaction.atomic():
            cursor = AccessLogCursor.objects.select_for_update().get(source=source)
            batch = batch_read(path, cursor, limit)
            if batch is None:
                break
            rows = [row for row in map(line_parse, batch.lines) if row is not None]
            _rows_insert(rows)
            _traffic_add(rows)
            skipped = len(batch.lines) - len(rows)
            cursor.device, cursor.inode, cursor.offset = batch.device, batch.inode, batch.offset
            cursor.head = batch.head
            cursor.lines += len(rows)
            cursor.skipped += skipped
            cursor.save()
        done.entries += len(rows)
        done.skipped += skipped
        done.batches += 1
    return done


def lines_write(path: Path, lines: Iterable[bytes]) -> None:
    """Append lines to an access log file (as the gateway would), for the demo and the bench."""
    with open(path, "ab") as out:
        out.writelines(lines)
