"""Liveness and readiness probes, answered as JSON."""

from __future__ import annotations

import logging
import math

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers; says nothing about its dependencies."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "not ready"
        logger.warning("readiness: database unreachable: %s", type(exc).__name__)
        return type(exc).__name__
    return None


def _broker_ok() -> str | None:
    broker = Connection(
        settings.CELERY_BROKER_URL,
        transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        connect_timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT,
    )
    try:
        broker.ensure_connection(
            max_retries=1, timeout=math.ceil(settings.CELERY_BROKER_CONNECTION_TIMEOUT)
        )
    except Exception as exc:  # kombu raises the transport's own errors
        logger.warning("readiness: broker unreachable: %s", type(exc).__name__)
        return type(exc).__name__
    finally:
        broker.release()
    return None


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the database and the Celery broker both answer; 503 otherwise."""
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    ready = all(error is None for error in checks.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {
            name: "ok" if error is None else f"unreachable ({error})"
            for name, error in checks.items()
        },
    }
    return JsonResponse(body, status=200 if ready else 503)
