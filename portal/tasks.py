"""Tasks of the project itself (the apps keep their own in their ``tasks.py``)."""

from __future__ import annotations

import socket

from celery import shared_task


@shared_task(name="portal.ping", ignore_result=False, acks_late=False)
def ping() -> dict[str, str]:
    """Answer with the worker's host name: proves a worker consumes from the configured broker."""
    return {"pong": socket.gethostname()}
