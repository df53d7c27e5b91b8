"""One run at a time, across processes and hosts: the lock every periodic task takes.

Beat may run on two machines at once (a second one started for availability, or two left
running by a deploy): each sends every periodic task, so two runs of the same task can start
together. Each periodic task runs under a lock named after it (:class:`OneAtATime`, its Celery
base): a run that finds the lock taken returns at once and does nothing. Runs one after the
other are harmless on their own: every periodic task is idempotent (it reads the state and does
what is still to be done), the lock keeps two from acting on the same reading.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
from collections.abc import Iterator
from typing import Any

from celery import Task
from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable signed 64-bit number for ``name``: PostgreSQL's advisory locks take a bigint."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def lock_try(name: str) -> Iterator[bool]:
    """Hold the lock ``name`` if it is free (yields True), else yield False at once.

    PostgreSQL: a session advisory lock, shared by every process and host using the database,
    released by PostgreSQL if the process dies. SQLite (``make run``'s default, one host): an
    exclusive ``flock`` on a file in the var directory, which the kernel releases likewise.
    """
    if connection.vendor == "postgresql":
        key = lock_key(name)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            (locked,) = cursor.fetchone()
        if not locked:
            yield False
            return
        try:
            yield True
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    with open(settings.VAR_DIR / f"{name}.lock", "a+b") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


class OneAtATime(Task):  # type: ignore[type-arg]
    """The base of every periodic task (``portal.celery``'s beat schedule; a test checks each):
    the run holds the lock named after the task, and a second run that starts while the first
    one holds it returns None without running."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with lock_try(f"task:{self.name}") as locked:
            if not locked:
                logger.info("%s skipped: another run holds its lock", self.name)
                return None
            return super().__call__(*args, **kwargs)
