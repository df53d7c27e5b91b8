"""Leaks on purpose, for tests/portal/test_leaks.py: run alone, in a pytest of its own (its name
keeps it out of the suite's collection), to show that tests/leaks.py fails the session. The
caller picks one probe with ``-k``."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings

from audit.services import audit_event_record


def test_a_secret_logged() -> None:
    logging.getLogger("portal.probe").warning("the key is %s", settings.TILGANG_ENCRYPTION_KEY)


@pytest.mark.django_db
def test_a_secret_in_an_audit_event() -> None:
    audit_event_record(
        actor=None, action="probe", object_type="probe", after={"key": settings.SECRET_KEY}
    )
