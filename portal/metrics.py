"""What the processes count as they work, for Prometheus: request latency in the web, pushes to
the gateway in the workers.

Several processes count at once (gunicorn's workers, Celery's pool processes), so every count is
kept in prometheus_client's multiprocess mode: each process writes its own file under
``PROMETHEUS_MULTIPROC_DIR`` (settings), and ``/metrics`` adds up the files of every process of
the host, dead ones too, so a counter never goes back while the host runs. What the database
knows (jobs, grants, activation times, the reconciler's heals) is not counted here but read when
Prometheus scrapes (``provisioning.metrics``): right whichever process did the work, and on
every host alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Histogram

REQUEST_LATENCY = Histogram(
    "tilgang_http_request_duration_seconds",
    "Time the portal took to answer a request, by view (the URL pattern's name, never the raw "
    "path), method and status class.",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
GATEWAY_PUSHES = Counter(
    "tilgang_gateway_pushes",
    "Changes the workers made at the gateway (HAProxy's runtime API, its files, a reload), by "
    "operation; failed ones included.",
    ["operation"],
)
GATEWAY_PUSH_FAILURES = Counter(
    "tilgang_gateway_push_failures",
    "Changes at the gateway that failed, by operation and error: unavailable (no answer; the "
    "job retries) or refused (HAProxy answered an error).",
    ["operation", "error"],
)

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def view_label(request: HttpRequest) -> str:
    """The URL pattern's name (or its view's dotted path), or ``unmatched`` for a path no
    pattern took: a label from a fixed set, whatever paths callers make up."""
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else "unmatched"


class RequestMetricsMiddleware:
    """Time every request, first in and last out (settings.MIDDLEWARE)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in _METHODS else "other"
        REQUEST_LATENCY.labels(
            view=view_label(request), method=method, status=f"{response.status_code // 100}xx"
        ).observe(time.perf_counter() - started)
        return response
