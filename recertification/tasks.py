"""Periodic work of recertification. Policy only: the logic is in ``recertification.services``."""

from __future__ import annotations

import dataclasses
import datetime

from celery import shared_task

from portal.locks import OneAtATime
from recertification import services


@shared_task(name="recertification.check", base=OneAtATime)
def check(now: str | None = None) -> dict[str, int]:
    """Revoke the access whose recertification lapsed and remind the kommuner of what is due.
    ``now`` (ISO 8601) moves the clock, for tests and a catch-up by hand."""
    moment = datetime.datetime.fromisoformat(now) if now else None
    return dataclasses.asdict(services.recertifications_check(now=moment))
