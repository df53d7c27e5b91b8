"""Beat may run on two machines at once: every periodic task runs one at a time (its lock,
``portal.locks.OneAtATime``), so two beats sending the same task at the same moment do its work
once. The reconciler's case, with real gateways: tests/provisioning/test_gateways.py."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

import notifications.tasks
import orders.tasks
import provisioning.tasks
import recertification.tasks
import tenants.tasks
from portal import celery_app
from portal.locks import OneAtATime, lock_try

TASK_MODULES = (notifications.tasks, orders.tasks, provisioning.tasks, recertification.tasks)
TASK_MODULES += (tenants.tasks,)


@pytest.mark.parametrize("entry", sorted(celery_app.conf.beat_schedule), ids=str)
def test_every_periodic_task_takes_its_lock(entry: str) -> None:
    name = celery_app.conf.beat_schedule[entry]["task"]

    assert isinstance(celery_app.tasks[name], OneAtATime), name


@pytest.mark.django_db(transaction=True)
def test_a_periodic_task_started_while_another_run_holds_its_lock_does_nothing() -> None:
    held, release = threading.Event(), threading.Event()

    def other_beat() -> None:
        try:
            with lock_try("task:provisioning.sweep") as locked:
                assert locked
                held.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=other_beat)
    thread.start()
    try:
        assert held.wait(timeout=30)
        skipped = provisioning.tasks.sweep()
    finally:
        release.set()
        thread.join(timeout=30)

    assert skipped is None  # a run (even of nothing to do) returns a count
    assert provisioning.tasks.sweep() == 0
