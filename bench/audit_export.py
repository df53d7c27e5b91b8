"""The audit trail at national scale: its export through the real endpoint at a tenth of the trail
and at the whole trail (100,000 and 1,000,000 events in `make bench`), each with its time and
the peak memory of the process serving it; and `audit_verify` over the whole chain.

Each export runs in a fresh process of its own (`python -m bench.audit_export`), so one export's
memory says nothing of the other's: the process warms up on one kommune's events, resets its
peak (``/proc/self/clear_refs``), then asks `GET /api/v1/audit-events/export/?format=csv` as an
NHN auditor (in-process, Django's test client) and reads the whole stream. It reports the time,
the process's peak RSS (``VmHWM``) and how far that peak rose above the warmed-up process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

EXPORT = "/api/v1/audit-events/export/"
ROOT = Path(__file__).resolve().parent.parent


def _status(field: str) -> float:
    """A ``/proc/self/status`` memory field, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _export(username: str, warm_up_kommune: str) -> dict[str, Any]:
    """Run inside the measuring process: warm up, reset the peak, export everything."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    from django.contrib.auth.models import User
    from django.http import StreamingHttpResponse
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    client = Client()
    client.force_login(User.objects.get(username=username))

    def read(query: dict[str, str]) -> tuple[int, int]:
        response = client.get(EXPORT, {**query, "format": "csv"})
        assert response.status_code == 200, response.status_code
        size = lines = 0
        for piece in cast(Iterator[bytes], cast(StreamingHttpResponse, response).streaming_content):
            size += len(piece)
            lines += piece.count(b"\n")
        return size, lines - 1

    read({"kommune": warm_up_kommune})
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here on
    warm = _status("VmRSS")
    started, cpu = time.perf_counter(), time.process_time()
    size, rows = read({})
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = _status("VmHWM")
    return {
        "seconds": seconds,
        "cpu_s": cpu,
        "rows": rows,
        "mb": size / 1e6,
        "peak_mb": peak,
        "growth_mb": max(peak - warm, 0.0),
    }


def export_measured(username: str, warm_up_kommune: str) -> dict[str, Any]:
    """One export in a fresh process (this module's ``main``): its figures."""
    done = subprocess.run(  # noqa: S603 - this module, with the caller's environment
        [sys.executable, "-m", "bench.audit_export", username, warm_up_kommune],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the audit export failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def verify_timed() -> tuple[float, float, int]:
    """`audit_verify` over the whole chain (the same function, in this process): its time, its
    CPU time and the number of events. A broken chain stops the benchmark: seeding must chain."""
    from audit.selectors import audit_chain_verify

    started, cpu = time.perf_counter(), time.process_time()
    checked = audit_chain_verify()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if checked.broken is not None:
        raise SystemExit(f"the seeded audit chain is broken at event {checked.broken.event_id}")
    return seconds, cpu, checked.events


def audit_measures(
    *, events: int, seed_part: Any, username: str, warm_up_kommune: str
) -> dict[str, Any]:
    """Seed a tenth of ``events`` (``seed_part(count, skip)``), export it; seed the rest, export
    the whole trail; verify the chain. Returns the figures (sizes as `make bench` names them)."""
    from django.db import connection

    tenth = events // 10
    seed_part(tenth, 0)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditevent")
    small = export_measured(username, warm_up_kommune)
    seed_part(events - tenth, tenth)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditevent")
    large = export_measured(username, warm_up_kommune)
    verify_seconds, verify_cpu, verified = verify_timed()
    return {
        "audit_export_100k_s": small["seconds"],
        "audit_export_1m_s": large["seconds"],
        "audit_export_100k_peak_mb": small["peak_mb"],
        "audit_export_1m_peak_mb": large["peak_mb"],
        "audit_export_100k_growth_mb": small["growth_mb"],
        "audit_export_1m_growth_mb": large["growth_mb"],
        "audit_export_rows": [small["rows"], large["rows"]],
        "audit_export_mb": [round(small["mb"], 1), round(large["mb"], 1)],
        # CPU seconds beside the times: on a busy machine the times wait for a core.
        "audit_export_cpu_s": [small["cpu_s"], large["cpu_s"]],
        "audit_verify_1m_s": verify_seconds,
        "audit_verify_cpu_s": verify_cpu,
        "audit_verify_events": verified,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("username", help="an NHN auditor")
    parser.add_argument("warm_up_kommune", help="the orgnr whose events warm the process up")
    args = parser.parse_args()
    print(json.dumps(_export(args.username, args.warm_up_kommune)))


if __name__ == "__main__":
    main()
