"""What: the service catalogue (and, later, access requests and grants)."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from tenants.models import Product

SYSTEM_TYPES = frozenset(Product.SystemType.values)


def validate_system_types(value: Any) -> None:
    if not isinstance(value, list) or not all(item in SYSTEM_TYPES for item in value):
        raise ValidationError(
            _("Give a list of system types among %(types)s."),
            params={"types": ", ".join(sorted(SYSTEM_TYPES))},
        )


class Environment(models.TextChoices):
    TEST = "test", _("Test")
    PRODUCTION = "production", _("Production")


class Access(models.TextChoices):
    READ = "read", _("Read")
    WRITE = "write", _("Write")


class ServiceQuerySet(models.QuerySet["Service"]):
    def with_availability(self) -> ServiceQuerySet:
        return self.prefetch_related("availabilities")


class Service(models.Model):
    """One of NHN's FHIR information services, with its scopes and who may read and write it."""

    class EpjRequirement(models.TextChoices):
        ANY = "any", _("Any EPJ")
        EPIC = "epic", _("Epic only")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.SlugField(_("code"), max_length=50, unique=True)
    position = models.PositiveSmallIntegerField(_("position in the catalogue"), default=0)
    name_nb = models.CharField(_("name (bokmål)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)
    description_nb = models.TextField(_("description (bokmål)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    fhir_resource = models.CharField(_("FHIR resource"), max_length=100)
    read_scope = models.CharField(_("read scope"), max_length=100, unique=True)
    write_scope = models.CharField(_("write scope"), max_length=100, unique=True)
    readable_by = models.JSONField(
        _("read by system types"), default=list, validators=[validate_system_types]
    )
    writable_by = models.JSONField(
        _("written by system types"), default=list, validators=[validate_system_types]
    )
    epj_requirement = models.CharField(
        _("EPJ requirement"),
        max_length=4,
        choices=EpjRequirement.choices,
        default=EpjRequirement.ANY,
    )
    planned_quarter = models.CharField(
        _("planned quarter"), max_length=7, help_text=_("As on NHN's roadmap, e.g. 2026 Q1.")
    )

    objects = ServiceQuerySet.as_manager()

    class Meta:
        ordering = ["position", "code"]
        verbose_name = _("service")
        verbose_name_plural = _("services")
        constraints = [
            models.CheckConstraint(
                name="orders_service_read_and_write_scopes_differ",
                condition=~Q(read_scope=models.F("write_scope")),
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def name(self) -> str:
        return self.name_en if (get_language() or "nb").startswith("en") else self.name_nb

    @property
    def description(self) -> str:
        return (
            self.description_en
            if (get_language() or "nb").startswith("en")
            else self.description_nb
        )

    def scope_for(self, access: str) -> str:
        return self.read_scope if access == Access.READ else self.write_scope

    def allows(self, *, system_type: str, access: str) -> bool:
        """May a product of ``system_type`` be granted ``access`` to this service?"""
        allowed = self.readable_by if access == Access.READ else self.writable_by
        return system_type in allowed

    def available_from(self, environment: str) -> datetime.date | None:
        # Reads the prefetched rows when there are any, so a list does not query per service.
        for availability in self.availabilities.all():
            if availability.environment == environment:
                return availability.available_from
        return None

    def is_available(self, environment: str, on: datetime.date | None = None) -> bool:
        start = self.available_from(environment)
        return start is not None and start <= (on or timezone.localdate())


class ServiceAvailability(models.Model):
    """From which day a service can be used in an environment; NHN operators change it."""

    service = models.ForeignKey(Service, models.CASCADE, related_name="availabilities")
    environment = models.CharField(_("environment"), max_length=10, choices=Environment.choices)
    available_from = models.DateField(_("available from"))

    class Meta:
        ordering = ["service", "environment"]
        verbose_name = _("service availability")
        verbose_name_plural = _("service availabilities")
        constraints = [
            models.UniqueConstraint(
                fields=["service", "environment"],
                name="orders_serviceavailability_unique_environment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service_id} in {self.environment} from {self.available_from}"
