"""The one way to write an audit event: every service function calls it in its transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from django.db import models

from audit.context import current_request_id
from audit.models import AuditEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

SYSTEM = "system"

#: The events of the innermost ``audit_events_batched`` block, written when it ends.
_batch: ContextVar[list[AuditEvent] | None] = ContextVar("audit_batch", default=None)


@contextmanager
def audit_events_batched() -> Iterator[None]:
    """Write the events recorded in the block with one INSERT when it ends, not one each: for a
    service that records many in one transaction (an order for every kommune records over a
    thousand). Use it inside that transaction; when the block raises, its events go with it.
    In a block that is already batched, the outer block writes them."""
    if _batch.get() is not None:
        yield
        return
    events: list[AuditEvent] = []
    token = _batch.set(events)
    try:
        yield
    finally:
        _batch.reset(token)
    if events:
        AuditEvent.objects.bulk_create(events)


def audit_event_record(
    *,
    actor: User | AnonymousUser | None,
    action: str,
    target: models.Model | None = None,
    organisation: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor_label: str | None = None,
    object_type: str = "",
    object_id: str = "",
) -> AuditEvent:
    """Append one event (at the end of an ``audit_events_batched`` block, when in one).
    ``organisation`` is any object with ``pk`` and ``orgnr`` (or None).

    ``actor`` None means the system did it (a periodic task, the reconciler); ``actor_label`` then
    says which part of the system. Something that is no model (the gateway's map) is named by
    ``object_type`` and ``object_id`` instead of ``target``.
    """
    user = actor if actor is not None and actor.is_authenticated else None
    label = actor_label or (user.get_username() if user is not None else SYSTEM)
    event = AuditEvent(
        actor=user,
        actor_label=label,
        organisation_id=getattr(organisation, "pk", None),
        organisation_orgnr=getattr(organisation, "orgnr", "") or "",
        action=action,
        object_type=target._meta.label_lower if target is not None else object_type,
        object_id=str(target.pk) if target is not None else object_id,
        before=before,
        after=after,
        request_id=current_request_id(),
    )
    batch = _batch.get()
    if batch is not None:
        batch.append(event)
    else:
        event.save()
    return event
