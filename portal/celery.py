"""The Celery app. Configuration comes from Django settings (``CELERY_*``)."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["portal"])  # the project's own tasks; apps' tasks.py are found too
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # A killed worker's job must be done within 30 s: leases are 15 s and the sweep runs often.
    "provisioning-sweep": {"task": "provisioning.sweep", "schedule": 2.0},
    "provisioning-write-gateway-files": {
        "task": "provisioning.write_gateway_files",
        "schedule": 5.0,
    },
    "provisioning-reconcile": {"task": "provisioning.reconcile", "schedule": 60.0},
    # Expiry and opening dates are days: a few minutes' delay is well inside their precision.
    "expire-delegations": {"task": "orders.expire_delegations", "schedule": 300.0},
    "release-available-items": {"task": "orders.release_available_items", "schedule": 300.0},
}


def _prepare_embedded_broker() -> None:
    """kombu's filesystem transport and the file result backend need their folders to exist."""
    folders = [
        settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in"),
        settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("processed_folder"),
    ]
    if settings.CELERY_RESULT_BACKEND.startswith("file://"):
        folders.append(settings.CELERY_RESULT_BACKEND.removeprefix("file://"))
    for folder in folders:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)


_prepare_embedded_broker()
