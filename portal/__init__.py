"""The Tilgang project package: settings, URLs and the Celery app; no models."""

from __future__ import annotations

from portal.celery import app as celery_app

__all__ = ["celery_app"]
