"""Load (issue 14): simulated users against the bench's gunicorn, PostgreSQL and Redis with the
seeded national data, by locust (headless) in a process of its own (``bench/locustfile.py``).

The driver prepares what the users need here, in-process: sessions of logged-in people (the
rows Django's login writes), fresh bearer tokens of automation clients, and the order's client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: A person's pause between two requests (s): reading a page, typing.
THINK_S = (0.5, 1.5)


def session_cookie(user: Any) -> str:
    """A logged-in session of the person, as Django's login makes it (its row in the database);
    the cookie's value."""
    client = Client()
    client.force_login(user)
    return str(client.cookies[settings.SESSION_COOKIE_NAME].value)


def run(
    *,
    users: int,
    seconds: int,
    web: str,
    people: list[tuple[Any, list[str]]],
    systems: list[tuple[str, list[str]]],
    order_token: str,
    order_client: str,
    kommuner: list[str],
    items: list[tuple[str, str]],
    workdir: Path,
) -> dict[str, Any]:
    """Run ``users`` users for ``seconds`` s; p50 and p95 (ms) of every request, requests per
    second and the errors (any answer other than the one expected, or an exception in a user).

    ``people``: each person with the pages they view; ``systems``: each automation client's
    bearer token with the API paths it reads; orders go to ``order_client`` for one of
    ``kommuner`` and one of ``items`` each, with ``order_token``."""
    plan = {
        "think_s": THINK_S,
        "session_cookie": settings.SESSION_COOKIE_NAME,
        "people": [{"cookie": session_cookie(user), "pages": pages} for user, pages in people],
        "systems": [{"token": token, "paths": paths} for token, paths in systems],
        "order": {
            "token": order_token,
            "client": order_client,
            "kommuner": kommuner,
            "items": [list(item) for item in items],
        },
    }
    workdir.mkdir(parents=True, exist_ok=True)
    plan_file, out_file = workdir / "load-plan.json", workdir / "load.json"
    plan_file.write_text(json.dumps(plan))
    out_file.unlink(missing_ok=True)
    result = subprocess.run(
        [
            str(BIN / "locust"),
            "-f",
            str(ROOT / "bench" / "locustfile.py"),
            "--headless",
            "--users",
            str(users),
            "--spawn-rate",
            str(users),  # all at once: the figure is for that many users, not a ramp
            "--run-time",
            f"{seconds}s",
            "--stop-timeout",
            "10",
            "--host",
            web,
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "BENCH_LOAD_PLAN": str(plan_file),
            "BENCH_LOAD_OUT": str(out_file),
        },
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    (workdir / "locust.log").write_text(result.stdout + result.stderr)
    if not out_file.exists():
        raise SystemExit(f"locust wrote no summary ({result.returncode}): {result.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(out_file.read_text())
    print(
        f"load: {users} users for {seconds} s: {summary['requests']} requests, "
        f"{summary['errors']} errors, p50 {summary['p50_ms']:.0f} ms, "
        f"p95 {summary['p95_ms']:.0f} ms, {summary['rps']:.1f} requests/s",
        flush=True,
    )
    return {
        "load_users": users,
        "load_seconds": seconds,
        "load_requests": summary["requests"],
        "load_errors": summary["errors"],
        "load_p50_ms": summary["p50_ms"],
        "load_p95_ms": summary["p95_ms"],
        "load_rps": summary["rps"],
        "load_by_request": summary["by_name"],
        "load_error_samples": summary["error_samples"],
    }
