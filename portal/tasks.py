"""Tasks of the project itself (the apps keep their own in their ``tasks.py``)."""

from __future__ import annotations

import socket

from celery import shared_task
from django.db import connection


@shared_task(name="portal.ping", ignore_result=False, acks_late=False)
def ping() -> dict[str, str]:
    """Answer with the worker's host name and its database session: proves a worker consumes from
    the configured broker, and keeps its database connection from one task to the next."""
    session = ""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            session = str(cursor.fetchone()[0])
    return {"pong": socket.gethostname(), "database_session": session}
