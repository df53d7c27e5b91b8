"""Who had access when, at national scale: the seeded grants' history, and the p95 of the API's
questions (a moment in one kommune, a period in one kommune, a period across the country).

The seed makes its grants directly (active, with no worker involved), so their periods are
written here the way the runner writes them, in two statements: each active grant has had
access since a moment in the last 60 days, and every third one also had an earlier period that
ended when its client's keys expired. The questions ask about moments and periods spread over
those 60 days, so the answers mix grants that had access then and grants that did not yet.
"""

from __future__ import annotations

import datetime
import gc
import random
import time
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.seed import World

#: How far back the seeded history reaches.
HISTORY_DAYS = 60

_COPIED = (
    "grant_id, kommune_id, vendor_id, client_id, service_id, access, scope, service_codes, "
    "instruction_id, delegation_id, approved_by_id, approved_automatically"
)
_FROM_GRANTS = (
    "g.id, g.kommune_id, c.vendor_id, g.client_id, g.service_id, g.access, g.scope, "
    "g.service_codes, g.instruction_id, g.delegation_id, g.approved_by_id, "
    "g.approved_automatically"
)


def seed_periods(now: datetime.datetime | None = None) -> int:
    """Periods for the seeded grants that have none (PostgreSQL). Returns how many."""
    now = now or timezone.now()
    span = HISTORY_DAYS * 86400
    with connection.cursor() as cursor:
        # The current period: since a moment of the last 60 days, still open.
        cursor.execute(
            f"""
            INSERT INTO orders_grantperiod ({_COPIED}, started_at, ended_at, "end")
            SELECT {_FROM_GRANTS},
                   %(now)s - make_interval(secs => abs(hashtext(g.id::text)) %% %(span)s),
                   NULL, ''
            FROM orders_grant g JOIN tenants_oauthclient c ON c.id = g.client_id
            WHERE g.status = 'active'
              AND NOT EXISTS (SELECT 1 FROM orders_grantperiod p WHERE p.grant_id = g.id)
            """,  # noqa: S608 - constants only; the values are parameters
            {"now": now, "span": span},
        )
        current = cursor.rowcount
        # Every third grant: an earlier period, closed when its client's keys expired.
        cursor.execute(
            f"""
            INSERT INTO orders_grantperiod ({_COPIED}, started_at, ended_at, "end")
            SELECT {_FROM_GRANTS},
                   p.started_at - interval '2 days'
                       - make_interval(secs => abs(hashtext(g.id::text || 'x')) %% %(span)s),
                   p.started_at - interval '2 days', 'keys_expired'
            FROM orders_grantperiod p
            JOIN orders_grant g ON g.id = p.grant_id
            JOIN tenants_oauthclient c ON c.id = g.client_id
            WHERE p.ended_at IS NULL AND abs(hashtext(g.id::text)) %% 3 = 0
              AND p.started_at > %(now)s - interval '1 day' * %(days)s
            """,  # noqa: S608
            {"now": now, "span": span, "days": HISTORY_DAYS},
        )
        earlier = cursor.rowcount
    return int(current) + int(earlier)


def _summary(values: list[float]) -> dict[str, float]:
    """As the driver's: the nearest rank."""
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]

    return {"n": len(ordered), "p50": rank(0.5), "p95": rank(0.95), "max": ordered[-1]}


def _cases(world: World, rng: random.Random) -> dict[str, tuple[Any, Any]]:
    """Each question: who asks, and a function giving the next query string."""
    now = timezone.now()
    orgnrs = [k.orgnr for k in world.kommuner]

    def moment() -> str:
        return (now - datetime.timedelta(seconds=rng.randrange(HISTORY_DAYS * 86400))).isoformat()

    def period() -> dict[str, str]:
        end = now - datetime.timedelta(seconds=rng.randrange(HISTORY_DAYS * 86400))
        return {"from": (end - datetime.timedelta(days=30)).isoformat(), "to": end.isoformat()}

    services = ["patient", "observation", "journaling", "care-plan"]
    return {
        "at, one kommune and service (NHN)": (
            world.auditor,
            lambda: {
                "kommune": rng.choice(orgnrs),
                "service": rng.choice(services),
                "at": moment(),
            },
        ),
        "at, one kommune (NHN)": (
            world.auditor,
            lambda: {"kommune": rng.choice(orgnrs), "at": moment()},
        ),
        "at, own kommune (kommune admin)": (world.kommune_admin, lambda: {"at": moment()}),
        "30 days, one kommune (NHN)": (
            world.auditor,
            lambda: {"kommune": rng.choice(orgnrs), **period()},
        ),
        "30 days, the country (NHN)": (world.auditor, period),
        "at, the country (NHN)": (world.auditor, lambda: {"at": moment()}),
    }


def measure(world: World, samples: int, seed: int = 13) -> dict[str, Any]:
    """p50/p95 (ms) and queries of each question through the API, in-process (the Django test
    client, as the driver's ``api_latency``, whose test environment the caller has set up);
    ``access_history_p95_ms`` is the worst p95."""
    gc.collect()
    gc.freeze()
    rng = random.Random(seed)  # noqa: S311 - which kommuner and moments, not a secret
    results: dict[str, dict[str, float]] = {}
    rows: dict[str, int] = {}
    for label, (user, params) in _cases(world, rng).items():
        client = Client(HTTP_ACCEPT="application/json")
        client.force_login(user)
        client.get("/api/v1/access-history/", params())  # warm
        times, cpu, queries, found = [], [], 0, 0
        for _ in range(samples):
            query = params()
            with CaptureQueriesContext(connection) as captured:
                started, used = time.perf_counter(), time.process_time()
                response = client.get("/api/v1/access-history/", query)
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - used) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"access-history {query} answered {response.status_code}")
            queries = max(queries, len(captured.captured_queries))
            found = max(found, response.json()["count"])
        # The web side's CPU time (the database's is not in it): on a busy machine the wall
        # clock also counts the waits for a core.
        results[label] = {**_summary(times), "cpu_p50": _summary(cpu)["p50"], "queries": queries}
        rows[label] = found
    return {
        "access_history_p95_ms": max(v["p95"] for v in results.values()),
        "access_history": results,
        "access_history_rows_max": rows,
    }
