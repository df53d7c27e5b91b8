from __future__ import annotations

import datetime

from django.utils import timezone

from orders.models import Grant
from recertification.selectors import lapses_on
from tests.notifications.smtp import (  # noqa: F401 - fixtures
    mailer,
    mailer_process,
    smtp_server,
)


def at(day: datetime.date, hour: int = 12) -> datetime.datetime:
    """A moment on ``day`` in the portal's time zone: the clock the tests move."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour)))


def lapse_day(grant: Grant) -> datetime.date:
    """The day ``grant`` lapses when its kommune never confirms its vendor."""
    grant.refresh_from_db()
    return lapses_on(grant.created_at, None)


def days_before(day: datetime.date, days: int) -> datetime.datetime:
    return at(day - datetime.timedelta(days=days))
