"""Celery tasks of notifications. Policy only: the logic is in ``notifications.mail`` and
``notifications.services``."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from notifications import mail, services
from portal.locks import OneAtATime


@shared_task(name="notifications.email_send", bind=True, acks_late=True, max_retries=None)
def email_send(self: Task[Any, Any], notification_ids: list[str]) -> int:
    """Send the e-mails of these notifications. acks_late is safe: each is claimed with a lease
    and recorded once sent. Those that failed for now come back together after a delay; the
    rows count the attempts and fail for good after the configured maximum."""
    outcome = mail.emails_send(notification_ids=notification_ids)
    if outcome.retry_ids:
        raise self.retry(args=(outcome.retry_ids,), countdown=outcome.retry_in)
    return outcome.sent


@shared_task(name="notifications.sweep", base=OneAtATime, ignore_result=True)
def sweep() -> int:
    """Send again the e-mails whose message was lost or never sent (the broker was down)."""
    return services.emails_sweep()
