"""Recertification: a kommune confirms, every ``RECERTIFICATION_MONTHS``, that each vendor may
keep its access to the kommune's data. What is confirmed is the kommune's continued consent for
the vendor, so there is one ``Recertification`` per kommune and vendor, holding the last
confirmation; its history is in the audit trail (``recertification.confirmed``,
``recertification.lapsed``).

A grant's clock starts when it was approved (``Grant.created_at``) or at the last confirmation
of its kommune and vendor, whichever is later; it lapses ``RECERTIFICATION_MONTHS`` later
(``recertification.selectors``). Nothing is stored per grant, so the orders app is unchanged.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenants.models import Organisation


class Recertification(models.Model):
    """A kommune's last confirmation of a vendor's access. The row is also what a confirmation
    and a lapse of the same kommune and vendor lock, so the two never cross."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kommune = models.ForeignKey(Organisation, models.PROTECT, related_name="recertifications_given")
    vendor = models.ForeignKey(
        Organisation, models.PROTECT, related_name="recertifications_received"
    )
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("confirmed by"),
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kommune", "vendor"]
        verbose_name = _("recertification")
        verbose_name_plural = _("recertifications")
        constraints = [
            models.UniqueConstraint(
                fields=["kommune", "vendor"], name="recertification_one_per_kommune_and_vendor"
            ),
            models.CheckConstraint(
                name="recertification_confirmed_by_someone",
                condition=models.Q(confirmed_at__isnull=True)
                | models.Q(confirmed_by__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"recertification of {self.vendor_id} by {self.kommune_id}"
