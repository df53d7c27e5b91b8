"""Periodic work of the tenants app. Policy only: the logic is in ``tenants.services``."""

from __future__ import annotations

from celery import shared_task

from portal.locks import OneAtATime
from tenants import services


@shared_task(name="tenants.epj_switches_apply", base=OneAtATime)
def epj_switches_apply() -> int:
    """Make the planned EPJ switches whose date has come the kommuner's current EPJ."""
    return services.kommune_epj_switches_apply()
