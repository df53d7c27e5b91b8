"""Notifications: what the portal tells people, in their list in the portal and by e-mail.

A ``Notice`` is one occasion (an order waits for a kommune, a key is getting old); each person it
concerns gets a ``Notification`` of it, written in the same transaction as its cause. The
notification is also the e-mail's outbox row: a worker sends it after COMMIT, and a sweep sends
again what a lost message or a down SMTP server left unsent.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenants.models import Organisation

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


class Notice(models.Model):
    """One occasion to tell people something: its kind and what it is about (``params``, worded
    by the kind's templates in each reader's language)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(_("kind"), max_length=40)
    #: The organisation it is about, as the people it concerns know it (None: NHN-wide).
    organisation = models.ForeignKey(
        Organisation, models.PROTECT, null=True, blank=True, related_name="+"
    )
    params = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    #: Set for what is said once only (a key's 30-day warning): a second notice with the same
    #: key is not written.
    once = models.CharField(max_length=200, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("notice")
        verbose_name_plural = _("notices")

    def __str__(self) -> str:
        return f"{self.kind} {self.pk}"


class EmailStatus(models.TextChoices):
    PENDING = "pending", _("To be sent")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    NONE = "none", _("No e-mail")


class NotificationQuerySet(models.QuerySet["Notification"]):
    def visible_to(self, user: User | AnonymousUser) -> NotificationQuerySet:
        """A person's own notifications; nobody sees another's, NHN staff included."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(recipient_id=user.pk)

    def unread(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=True)


class Notification(models.Model):
    """One person's copy of a notice: in their list in the portal, and their e-mail's outbox."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    notice = models.ForeignKey(Notice, models.CASCADE, related_name="notifications")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="notifications"
    )
    #: The organisation whose role brought it to the person.
    organisation = models.ForeignKey(
        Organisation, models.PROTECT, related_name="+", verbose_name=_("organisation")
    )
    #: Where to act on it: a path of the portal.
    link = models.CharField(max_length=500, blank=True)
    email = models.EmailField(_("e-mail address"), blank=True)
    #: The language its e-mail speaks: the person's, when it was written.
    language = models.CharField(max_length=8, default=settings.LANGUAGE_CODE)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    email_status = models.CharField(
        max_length=7, choices=EmailStatus.choices, default=EmailStatus.PENDING
    )
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_next_attempt_at = models.DateTimeField(default=timezone.now)
    #: When its task was last published; the sweep sends again what waited too long since.
    email_queued_at = models.DateTimeField(null=True, blank=True)
    #: A worker sending it holds it until then; one that died lets it go when it ends.
    email_lease_until = models.DateTimeField(null=True, blank=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    email_error = models.TextField(blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "pk"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        constraints = [
            models.UniqueConstraint(
                fields=["notice", "recipient"], name="notifications_one_per_person"
            ),
        ]
        indexes = [
            models.Index(fields=["recipient", "-created_at"], name="notifications_by_person"),
            models.Index(
                fields=["recipient"],
                condition=Q(read_at__isnull=True),
                name="notifications_unread",
            ),
            models.Index(
                fields=["email_next_attempt_at"],
                condition=Q(email_status="pending"),
                name="notifications_email_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.notice_id} to {self.recipient_id}"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None
