"""Periodic work of the ordering journey. Policy only: the logic is in ``orders.services``."""

from __future__ import annotations

from celery import shared_task

from orders import services
from portal.locks import OneAtATime


@shared_task(name="orders.expire_delegations", base=OneAtATime)
def expire_delegations() -> int:
    """Revoke the grants of delegations whose last day has passed."""
    return services.delegations_expire()


@shared_task(name="orders.release_available_items", base=OneAtATime)
def release_available_items() -> int:
    """Grant items that waited for their service to open."""
    return services.items_release_available()


@shared_task(name="orders.client_keys_age_check", base=OneAtATime)
def client_keys_age_check() -> int:
    """Warn of keys near the key lifetime (or their expiry) and close those past it."""
    return services.client_keys_age_check()
