"""Sending the notifications' e-mails: the mailer worker's side of the outbox.

A task takes notification ids, claims those due with a lease (a conditional update, so two
workers never send the same one at once), sends them over one SMTP connection, and records each
outcome under its lease. A refusal of the address fails that e-mail; any other failure (no
answer, a 4xx, a dropped connection) comes back with exponential backoff and jitter until
``NOTIFICATIONS_EMAIL_MAX_ATTEMPTS``. At least once: a worker killed between the server's
answer and the record sends it again (its Message-ID stays the same).
"""

from __future__ import annotations

import datetime
import logging
import random
import smtplib
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from notifications.models import EmailStatus, Notification
from notifications.render import email_texts

logger = logging.getLogger(__name__)

#: The server refused the address or the sender: sending it again would be refused again.
PERMANENT = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused)
# A task delivered a little early (clock skew, jitter) may still claim.
EARLY = datetime.timedelta(seconds=1)


@dataclass
class Outcome:
    sent: int = 0
    failed: int = 0
    #: To try again, in ``retry_in`` seconds.
    retry_ids: list[str] = field(default_factory=list)
    retry_in: float = 0.0


def backoff(attempts: int) -> float:
    """About 1, 2, 4, ... s with full jitter, at most the configured cap."""
    ceiling = min(settings.NOTIFICATIONS_EMAIL_BACKOFF_MAX_SECONDS, 2 ** max(attempts - 1, 0))
    return float(ceiling) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


def _claim(ids: list[Any]) -> list[Notification]:
    """Take the due, unsent ones among ``ids`` with a lease; the others are not ours to send
    (sent, not due, or held by a live lease)."""
    now = timezone.now()
    lease_until = now + datetime.timedelta(seconds=settings.NOTIFICATIONS_EMAIL_LEASE_SECONDS)
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                pk__in=ids,
                email_status=EmailStatus.PENDING,
                email_next_attempt_at__lte=now + EARLY,
            )
            .filter(Q(email_lease_until__isnull=True) | Q(email_lease_until__lt=now))
            .select_related("notice", "organisation")
            .order_by("created_at", "pk")
        )
        Notification.objects.filter(pk__in=[row.pk for row in rows]).update(
            email_lease_until=lease_until, email_attempts=F("email_attempts") + 1
        )
    for row in rows:
        row.email_lease_until = lease_until
        row.email_attempts += 1
    return rows


def _held(row: Notification) -> Any:
    """This claim's row, while it still holds it (its lease value is the fence)."""
    return Notification.objects.filter(
        pk=row.pk, email_status=EmailStatus.PENDING, email_lease_until=row.email_lease_until
    )


def _sent(row: Notification) -> None:
    _held(row).update(
        email_status=EmailStatus.SENT,
        email_sent_at=timezone.now(),
        email_lease_until=None,
        email_error="",
    )


def _failed(row: Notification, error: str, outcome: Outcome) -> None:
    """A failed attempt: again later, or failed for good after the last attempt."""
    error = error[:1000]
    if row.email_attempts >= settings.NOTIFICATIONS_EMAIL_MAX_ATTEMPTS:
        _held(row).update(
            email_status=EmailStatus.FAILED, email_lease_until=None, email_error=error
        )
        outcome.failed += 1
        logger.warning("e-mail of notification %s failed for good: %s", row.pk, error)
        return
    delay = backoff(row.email_attempts)
    now = timezone.now()
    _held(row).update(
        email_lease_until=None,
        email_next_attempt_at=now + datetime.timedelta(seconds=delay),
        email_queued_at=now,  # the task's retry is its message
        email_error=error,
    )
    outcome.retry_ids.append(str(row.pk))
    outcome.retry_in = max(outcome.retry_in, delay)


def message_of(row: Notification) -> EmailMessage:
    texts = email_texts(row)
    return EmailMessage(
        subject=texts.subject,
        body=texts.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[row.email],
        headers={
            # The same on every attempt: a copy sent twice is recognisably the same message.
            "Message-ID": f"<{row.pk}@{settings.NOTIFICATIONS_MESSAGE_ID_DOMAIN}>",
            "Auto-Submitted": "auto-generated",
            "Content-Language": row.language,
        },
    )


def emails_send(*, notification_ids: list[Any]) -> Outcome:
    """Send the e-mails of these notifications that are due; see the module's docstring."""
    outcome = Outcome()
    rows = _claim(notification_ids)
    if not rows:
        return outcome
    connection = get_connection(fail_silently=False)
    try:
        connection.open()
    except (smtplib.SMTPException, OSError) as exc:
        for row in rows:
            _failed(row, f"{type(exc).__name__}: {exc}", outcome)
        return outcome
    try:
        for index, row in enumerate(rows):
            try:
                connection.send_messages([message_of(row)])
            except PERMANENT as exc:
                row.email_attempts = settings.NOTIFICATIONS_EMAIL_MAX_ATTEMPTS
                _failed(row, f"{type(exc).__name__}: {exc}", outcome)
            except (smtplib.SMTPException, OSError) as exc:
                # The connection is gone or the server answers 4xx: this one and the rest later.
                for rest in rows[index:]:
                    _failed(rest, f"{type(exc).__name__}: {exc}", outcome)
                break
            else:
                _sent(row)
                outcome.sent += 1
    finally:
        try:
            connection.close()
        except (smtplib.SMTPException, OSError):
            logger.info("closing the SMTP connection failed", exc_info=True)
    return outcome
