"""Ingesting the gateway's data-access log: lines in the gateway's own format, written into a
file as HAProxy appends them, then loaded by the collector (``provisioning.access_log``,
``manage.py gateway_log_collect``), batch by batch, each batch committed with its cursor.

The figure is the collector's time for the whole file, from the first read to the last commit,
into the bench's PostgreSQL with the table's indexes in place. A smaller scale than ``full``
loads fewer lines and gives the time scaled to a million lines (the collector's cost per line
is flat: batches of the same size, appended rows, B-tree indexes)."""

from __future__ import annotations

import datetime
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from bench.scale import Scale
from provisioning.access_log import line_format, log_collect
from provisioning.models import AccessLogCursor, DataAccessEntry
from tenants.models import OAuthClient, Organisation

#: Lines loaded at each scale.
LINES = {"full": 1_000_000, "quick": 100_000, "tiny": 2_000}
#: The calls the lines are made of: services with their resource types, and the answers (one in
#: ten refused).
RESOURCES = [
    ("patient", "Patient"),
    ("observation", "Observation"),
    ("care-plan", "CarePlan"),
    ("episode-of-care", "EpisodeOfCare"),
    ("journaling", "Bundle"),
    ("medication-dispense", "MedicationDispense"),
]
ANSWERS = [200] * 8 + [403, 404]
SOURCE = "bench"


def _templates(kommuner: list[str], client_ids: list[str], count: int) -> list[bytes]:
    """``count`` lines of the gateway's format, each with a ``%d`` for its time in
    milliseconds and one for its resource id: made by the collector's own formatter, so they
    are the format the gateway writes."""
    made = []
    for n in range(count):
        kommune = kommuner[n % len(kommuner)]
        service, resource = RESOURCES[n % len(RESOURCES)]
        status = ANSWERS[n % len(ANSWERS)]
        line = line_format(
            at=datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC),
            client_id=client_ids[n % len(client_ids)],
            kommune=kommune,
            service=service,
            access="read",
            environment="production",
            path=f"/{kommune}/fhir/{resource}/ID",
            status=status,
            duration_ms=10 + n % 40,
        )
        made.append(line.replace(b'"t":0,', b'"t":%d,', 1).replace(b"\\/ID", b"\\/%d", 1))
    return made


def log_write(path: Path, lines: int, kommuner: list[str], client_ids: list[str]) -> int:
    """Write ``lines`` lines of calls over the last 30 days into ``path``; its size in bytes."""
    templates = _templates(kommuner, client_ids, 2_000)
    end = int(time.time() * 1000)
    step = 30 * 86_400_000 // lines
    start = end - step * lines
    with path.open("wb") as out:
        for first in range(0, lines, 50_000):
            out.write(
                b"".join(
                    templates[n % len(templates)] % (start + n * step, n)
                    for n in range(first, min(first + 50_000, lines))
                )
            )
    return path.stat().st_size


def reads(readers: list[tuple[str, Any, str]], samples: int) -> dict[str, dict[str, float]]:
    """p50/p95 (ms) and queries of reading the log once it holds the lines: each of ``readers``
    (label, user, path) in-process, as the page and API benchmarks do."""
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    results = {}
    for label, user, path in readers:
        client = Client()
        client.force_login(user)
        client.get(path)  # warm: the session and the caches
        times, queries = [], 0
        for _ in range(samples):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code}")
            queries = max(queries, len(captured.captured_queries))
        times.sort()
        results[label] = {
            "p50": round(times[len(times) // 2], 1),
            "p95": round(times[min(len(times) - 1, int(len(times) * 0.95))], 1),
            "queries": queries,
        }
    return results


def run(
    scale: Scale, readers: Sequence[tuple[str, Any, str]] = (), samples: int = 5
) -> dict[str, Any]:
    """Write the scale's lines, time the collector loading them all, read them as ``readers``,
    then empty the table."""
    lines = LINES.get(scale.name, 100_000)
    kommuner = list(
        Organisation.objects.kommuner().order_by("orgnr").values_list("orgnr", flat=True)
    ) or ["958935420"]
    client_ids = list(
        OAuthClient.objects.exclude(client_id="")
        .order_by("client_id")
        .values_list("client_id", flat=True)[:500]
    ) or ["tilgang-bench"]
    AccessLogCursor.objects.filter(source=SOURCE).delete()
    before = DataAccessEntry.objects.count()
    with tempfile.TemporaryDirectory(dir=settings.VAR_DIR) as directory:
        path = Path(directory) / "access.log"
        size = log_write(path, lines, kommuner, client_ids)
        started = time.perf_counter()
        done = log_collect(path=path, source=SOURCE)
        seconds = time.perf_counter() - started
    loaded = DataAccessEntry.objects.count() - before
    if done.entries != lines or loaded != lines or done.skipped:
        raise RuntimeError(f"{lines} lines written, {done.entries} loaded ({loaded} rows)")
    print(f"data access: {lines} lines ({size / 2**20:.0f} MiB) in {seconds:.1f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {DataAccessEntry._meta.db_table}")
    read = reads(list(readers), samples)
    # The rows are the bench's own: the figures after this one must not read them.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {DataAccessEntry._meta.db_table}")
    else:
        DataAccessEntry.objects.all().delete()
    AccessLogCursor.objects.filter(source=SOURCE).delete()
    return {
        "data_access_ingest_1m_s": round(seconds * 1_000_000 / lines, 2),
        "data_access_lines_per_s": round(lines / seconds),
        "data_access_lines": lines,
        "data_access_ingest_s": round(seconds, 2),
        "data_access_batches": done.batches,
        "data_access_file_mib": round(size / 2**20, 1),
        "data_access_reads_ms": read,
    }
