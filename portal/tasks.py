"""Tasks of the project itself (the apps keep their own in their ``tasks.py``)."""

from __future__ import annotations

import gc
import socket

from celery import shared_task
from django.db import connection


@shared_task(name="portal.ping", ignore_result=False, acks_late=False)
def ping() -> dict[str, str]:
    """Answer with the worker's host name, its database session and how many objects it keeps
    out of garbage collection: proves a worker consumes from the configured broker, keeps its
    database connection from one task to the next, and froze what it loaded at start-up."""
    session = ""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            session = str(cursor.fetchone()[0])
    return {
        "pong": socket.gethostname(),
        "database_session": session,
        "frozen_objects": str(gc.get_freeze_count()),
    }
