"""The load of `make bench` (issue 14): simulated users mixing page views as logged-in people,
API reads with automation clients' tokens and orders, against the bench's gunicorn.

Run by ``bench/load.py`` as ``locust -f bench/locustfile.py --headless ...`` in a process of its
own (locust patches the standard library for gevent, which Django's side must not share). What
the users use comes prepared in the JSON file named by ``BENCH_LOAD_PLAN`` (session cookies,
bearer tokens, the pages, the paths, the order's client and kommuner); the summary is written to
``BENCH_LOAD_OUT`` when locust quits.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task
from locust.env import Environment

PLAN: dict[str, Any] = json.loads(Path(os.environ["BENCH_LOAD_PLAN"]).read_text())
#: Errors listed in the summary, at most (their count is always whole).
ERRORS_SHOWN = 10


class Portal(HttpUser):
    """One person or system: each turn a page, an API read or an order, then a pause as a
    person takes (reading the page, typing)."""

    wait_time = between(PLAN["think_s"][0], PLAN["think_s"][1])

    def on_start(self) -> None:
        self.person = random.choice(PLAN["people"])  # noqa: S311 - not security
        self.system = random.choice(PLAN["systems"])  # noqa: S311
        self.client.cookies.set(PLAN["session_cookie"], self.person["cookie"])

    def _expect(self, method: str, path: str, status: int, name: str, **kw: Any) -> None:
        # No redirects followed: a page that sends the person to the login is an error here,
        # not the login page's 200.
        with self.client.request(
            method, path, name=name, allow_redirects=False, catch_response=True, **kw
        ) as response:
            if response.status_code != status:
                response.failure(f"{response.status_code}: {response.text[:200]}")

    @task(4)
    def page(self) -> None:
        path = random.choice(self.person["pages"])  # noqa: S311
        self._expect("GET", path, 200, f"page {path}")

    @task(4)
    def api_read(self) -> None:
        path = random.choice(self.system["paths"])  # noqa: S311
        headers = {"Authorization": f"Bearer {self.system['token']}", "Accept": "application/json"}
        self._expect("GET", path, 200, f"api {path}", headers=headers)

    @task(1)
    def order(self) -> None:
        order = PLAN["order"]
        service, access = random.choice(order["items"])  # noqa: S311
        body = {
            "client": order["client"],
            "kommune": random.choice(order["kommuner"]),  # noqa: S311
            "items": [{"service": service, "access": access}],
        }
        headers = {"Authorization": f"Bearer {order['token']}"}
        self._expect("POST", "/api/v1/access-requests/", 201, "order", json=body, headers=headers)


@events.quitting.add_listener
def _summary(environment: Environment, **_kw: Any) -> None:
    """Write p50, p95 (ms), throughput and every error to ``BENCH_LOAD_OUT``."""
    stats = environment.stats
    total = stats.total
    exceptions = environment.runner.exceptions.values() if environment.runner else []
    errors = [
        {"name": e.name, "method": e.method, "error": str(e.error), "count": e.occurrences}
        for e in stats.errors.values()
    ] + [{"name": "exception", "error": x["msg"], "count": x["count"]} for x in exceptions]
    by_name = {
        name: {
            "n": entry.num_requests,
            "p50": entry.get_response_time_percentile(0.5),
            "p95": entry.get_response_time_percentile(0.95),
        }
        for (name, _method), entry in stats.entries.items()
    }
    summary = {
        "requests": total.num_requests,
        "errors": total.num_failures + sum(x["count"] for x in exceptions),
        "p50_ms": total.get_response_time_percentile(0.5),
        "p95_ms": total.get_response_time_percentile(0.95),
        "rps": total.total_rps,
        "by_name": by_name,
        "error_samples": errors[:ERRORS_SHOWN],
    }
    Path(os.environ["BENCH_LOAD_OUT"]).write_text(json.dumps(summary, indent=2))
