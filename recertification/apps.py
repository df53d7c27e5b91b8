from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecertificationConfig(AppConfig):
    name = "recertification"
    verbose_name = _("Recertification")
    default_auto_field = "django.db.models.BigAutoField"
