"""A provisioning job's task is published once its transaction commits, without a result."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from celery import current_app

from orders.services import PROVISIONING_TASK, PUBLISH_RETRY, provisioning_job_send_on_commit

pytestmark = pytest.mark.django_db


def test_the_task_is_sent_after_commit_and_nobody_waits_for_its_result(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    job_id = uuid.uuid4()
    with (
        mock.patch.object(current_app, "send_task") as send_task,
        django_capture_on_commit_callbacks(execute=True),
    ):
        provisioning_job_send_on_commit(job_id=job_id, request_id="")
        send_task.assert_not_called()  # not before COMMIT

    # With a result, Celery's Redis backend would subscribe the web process to a result channel
    # on every send: a round trip on the order's path, for a result nobody reads.
    # One reconnect, no waiting: with the broker down the write answers, the sweeper resends.
    send_task.assert_called_once_with(
        PROVISIONING_TASK, args=[str(job_id)], ignore_result=True, retry_policy=PUBLISH_RETRY
    )
