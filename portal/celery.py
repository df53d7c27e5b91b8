"""The Celery app. Configuration comes from Django settings (``CELERY_*``)."""

from __future__ import annotations

import contextvars
import logging.config
import os
from pathlib import Path
from typing import Any

from celery import Celery, Task
from celery.signals import (
    before_task_publish,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_ready,
)
from django.conf import settings
from django.db import close_old_connections

from audit.context import current_request_id, request_id
from portal.heap import startup_objects_freeze

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["portal"])  # the project's own tasks; apps' tasks.py are found too
app.autodiscover_tasks()

# Beat may run on two machines at once: every task below has ``portal.locks.OneAtATime`` as its
# base (one run at a time; tests/test_periodic.py checks each) and is idempotent.
app.conf.beat_schedule = {
    # A killed worker's job must be done within 30 s: leases are 15 s and the sweep runs often.
    "provisioning-sweep": {"task": "provisioning.sweep", "schedule": 2.0},
    "provisioning-write-gateway-files": {
        "task": "provisioning.write_gateway_files",
        "schedule": 5.0,
    },
    # Each gateway compared with the database: a gateway that was down (or missed a change)
    # converges within 30 s of answering again (10 s, plus the run). Cheap: a `show map` each.
    "provisioning-reconcile-gateways": {
        "task": "provisioning.reconcile_gateways",
        "schedule": 10.0,
    },
    # The whole, with the authorization server's registrations (one HTTP read each).
    "provisioning-reconcile": {"task": "provisioning.reconcile", "schedule": 60.0},
    # Expiry and opening dates are days: a few minutes' delay is well inside their precision.
    "expire-delegations": {"task": "orders.expire_delegations", "schedule": 300.0},
    "release-available-items": {"task": "orders.release_available_items", "schedule": 300.0},
    # E-mails whose message was lost (the broker was down, a worker died) are sent on.
    "notifications-sweep": {"task": "notifications.sweep", "schedule": 30.0},
    # Key age is counted in days; hourly, so a warning or the limit is at most an hour late.
    "client-keys-age-check": {"task": "orders.client_keys_age_check", "schedule": 3600.0},
    # Recertification counts days; checked hourly (idempotent), so a lapse or a reminder is at
    # most an hour into its day, and a beat that was down catches up soon.
    "recertification-check": {"task": "recertification.check", "schedule": 3600.0},
    # A switch date is a day; hourly, so a beat that was down at midnight catches up soon.
    "apply-epj-switches": {"task": "tenants.epj_switches_apply", "schedule": 3600.0},
    # Retention is counted in days: hourly keeps the log within an hour of it, in small chunks.
    "purge-data-access-log": {"task": "provisioning.data_access_purge", "schedule": 3600.0},
}


@task_prerun.connect
@task_postrun.connect
def _database_connections_age(**kwargs: Any) -> None:
    """Around each task as Django does around each request: drop a connection that is broken or
    older than CONN_MAX_AGE, keep the rest (settings.CELERY_DB_REUSE_MAX)."""
    close_old_connections()


#: The message header that carries the request id of the work that sent a task.
REQUEST_ID_HEADER = "request_id"
#: The request id each running task set, to put back what was there when it ends.
_request_id_tokens: dict[str, contextvars.Token[str]] = {}


@setup_logging.connect
def _logging_configure(loglevel: int | str | None = None, **kwargs: Any) -> None:
    """Workers and beat log as the web does (settings.LOGGING: JSON lines with the request id
    and the task), not in Celery's own format: with a receiver here Celery leaves logging to us.
    ``--loglevel`` still sets the level."""
    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)


@before_task_publish.connect
def _request_id_send(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Each task sent while a request (or a task) is under way carries its request id, so the
    worker's log lines and audit events name the request that set it off. Sent by the web on
    commit or by a task; a provisioning job is sent, the first time or again, under the
    request id it keeps (``ProvisioningJob.request_id``)."""
    rid = current_request_id()
    if rid and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, rid)


@task_prerun.connect
def _request_id_restore(task_id: str, task: Task[Any, Any], **kwargs: Any) -> None:
    """The task runs under the request id its message carried ("" when none)."""
    rid = getattr(task.request, REQUEST_ID_HEADER, None) or ""
    _request_id_tokens[task_id] = request_id.set(str(rid)[:64])


@task_postrun.connect
def _request_id_forget(task_id: str, **kwargs: Any) -> None:
    token = _request_id_tokens.pop(task_id, None)
    if token is not None:
        try:
            request_id.reset(token)
        except ValueError:  # set in another context (a pool of threads): end it here all the same
            request_id.set("")


@worker_process_init.connect  # each pool process, as it starts
@worker_ready.connect  # the worker's own process, which takes the messages
def _startup_objects_freeze(**kwargs: Any) -> None:
    """The app and its tasks are loaded: keep them out of the garbage collector's full
    collections (``portal.heap``)."""
    startup_objects_freeze()


def _prepare_embedded_broker() -> None:
    """kombu's filesystem transport and the file result backend need their folders to exist."""
    folders = [
        settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in"),
        settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("processed_folder"),
        settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("control_folder"),
    ]
    if settings.CELERY_RESULT_BACKEND.startswith("file://"):
        folders.append(settings.CELERY_RESULT_BACKEND.removeprefix("file://"))
    for folder in folders:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)


_prepare_embedded_broker()
