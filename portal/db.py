"""Database helpers shared by the apps' service functions."""

from __future__ import annotations

from typing import TypeVar

from django.db import IntegrityError, models, transaction

M = TypeVar("M", bound=models.Model)


def create_validated(instance: M) -> M:
    """Validate ``instance`` fully, then INSERT it.

    Two requests racing past ``full_clean`` meet at the unique constraint; the loser gets the same
    ValidationError the check would have given, never an IntegrityError (a 500).
    """
    instance.full_clean()
    try:
        with transaction.atomic():
            instance.save(force_insert=True)
    except IntegrityError:
        instance.validate_unique()
        instance.validate_constraints()
        raise
    return instance
