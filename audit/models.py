"""Append-only, hash-chained audit events: who changed what, when, in which organisation, and
why (the chain: ``audit/chain.py``)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.chain import CONTENT, GENESIS, canonical, link


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise TypeError("audit events are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("audit events are append-only")

    def bulk_create(
        self,
        objs: Iterable[AuditEvent],
        batch_size: int | None = None,
        ignore_conflicts: bool = False,
        update_conflicts: bool = False,
        update_fields: Collection[str] | None = None,
        unique_fields: Collection[str] | None = None,
    ) -> list[AuditEvent]:
        """Append ``objs`` to the chain, in their order."""
        if ignore_conflicts or update_conflicts:
            raise TypeError("audit events are appended, never merged")
        events = list(objs)
        if not events:
            return events
        with _chained(events):
            return super().bulk_create(events, batch_size=batch_size)


class AuditEvent(models.Model):
    """One change. The organisation is kept by id and orgnr, not by foreign key: the audit log sits
    below every other app and outlives what it describes."""

    # Set when the event is made, not when it is written: its hash covers the time, and is taken
    # before the INSERT.
    occurred_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    # Kept when the person is deleted (DO_NOTHING, no constraint): the hash covers the id, and
    # the label still names them.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    actor_label = models.CharField(_("actor"), max_length=200)
    organisation_id = models.UUIDField(null=True, blank=True, db_index=True)
    organisation_orgnr = models.CharField(_("organisation number"), max_length=9, blank=True)
    action = models.CharField(_("action"), max_length=60, db_index=True)
    object_type = models.CharField(_("object type"), max_length=60)
    object_id = models.CharField(_("object id"), max_length=64)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True)
    #: SHA-256 (hex) of the previous event's hash and this event's content (``audit.chain``).
    chain_hash = models.CharField(_("chain hash"), max_length=64, default="", editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [
            # The trail is read newest first; the id breaks ties between events of one moment.
            models.Index(fields=["-occurred_at", "-id"], name="audit_event_newest_idx"),
            models.Index(fields=["object_type", "object_id"], name="audit_event_object_idx"),
            models.Index(
                fields=["organisation_id", "-occurred_at"], name="audit_event_org_time_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise TypeError("audit events are append-only")
        with _chained([self]):
            super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("audit events are append-only")


class ChainHead(models.Model):
    """The one row that every append of audit events locks (SELECT ... FOR UPDATE) until its
    transaction ends. Appends take turns: each reads the hash of the last event committed before
    it, and takes its ids after that event's, so id order is chain order under any number of
    writers. On SQLite, whose writers already take turns for the whole transaction, the lock is
    a no-op."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)

    class Meta:
        verbose_name = _("audit chain head")

    def __str__(self) -> str:
        return "audit chain head"


def chain_tail_locked() -> tuple[int, str]:
    """Lock the chain's head until the transaction ends (call it in one), and return the id and
    hash of the last event: what the next event, written in this transaction, links to."""
    for _attempt in range(2):
        if ChainHead.objects.select_for_update().filter(pk=1).values_list("pk", flat=True):
            last = AuditEvent.objects.order_by("-id").values_list("id", "chain_hash").first()
            return last if last is not None else (0, GENESIS)
        # Made by the migration; made again after a test's flush emptied every table.
        ChainHead.objects.bulk_create([ChainHead(pk=1)], ignore_conflicts=True)
    raise RuntimeError("the audit chain's head row cannot be locked")


@contextmanager
def _chained(events: list[AuditEvent]) -> Iterator[None]:
    """Hash ``events`` after the chain's last event, under the head's lock; the block INSERTs
    them (in one statement or several, in their order). The lock is held until the transaction
    ends, so keep what follows an audit write in a transaction short."""
    # No savepoint: a failed audit write fails the whole transaction anyway, and two fewer
    # statements per write.
    with transaction.atomic(savepoint=False):
        last_id, previous = chain_tail_locked()
        for event in events:
            content = canonical(*(getattr(event, name) for name in CONTENT))
            event.chain_hash = previous = link(previous, content)
        yield
        ids = [event.pk for event in events]
        # The chain's order is the ids' order: an INSERT that numbered its rows otherwise (no
        # database here does) must not leave a chain that verifies in another order.
        if not all(isinstance(pk, int) for pk in ids) or ids != sorted(ids) or ids[0] <= last_id:
            raise RuntimeError(f"audit events were numbered out of chain order: {ids}")
