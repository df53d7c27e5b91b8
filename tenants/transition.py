"""NHN's recommended path for a kommune's move from VKP, by its EPJ switch (the rule of the EPJ
transition register).

From NHN's vendor webinar of 11 December 2025 (../shared/seeds/): the new information services
open through 2026, and no integration is built from today's VKP to new EPJ versions. So:

- a kommune switching EPJ in 2026 (or earlier) goes for the new information services;
- one switching in 2027 or later that uses VKP is considered for integration with VKP;
- one switching in 2027 or later without VKP is considered for VKP onboarding (and integration).

The year is the one place the rule is dated: ``settings.TILGANG_NEW_SERVICES_YEAR`` (2026) is the
last year of the first path. The rule reads only the dates it is given, never today's date, so a
page, the API and the tests decide the same for the same switch.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class EpjPath(models.TextChoices):
    NEW_SERVICES = "new_services", _("The new information services")
    INTEGRATE_VKP = "integrate_vkp", _("Integrate with VKP")
    CONSIDER_VKP = "consider_vkp", _("Consider VKP onboarding")
    # A switch after the new services' year, but the kommune has not said whether it uses VKP:
    # the two VKP paths differ only in that.
    VKP_UNKNOWN = "vkp_unknown", _("Say whether VKP is used")
    NO_SWITCH = "no_switch", _("No switch planned")


def new_services_year() -> int:
    """The last year in which a switch goes straight for the new information services."""
    return int(settings.TILGANG_NEW_SERVICES_YEAR)


def epj_path(
    *,
    switch_date: datetime.date | None,
    uses_vkp: bool | None,
    last_new_services_year: int | None = None,
) -> EpjPath:
    """NHN's recommended path for a kommune that switches EPJ on ``switch_date`` (None: no switch
    planned) and does or does not use VKP today (None: not recorded)."""
    if switch_date is None:
        return EpjPath.NO_SWITCH
    last = new_services_year() if last_new_services_year is None else last_new_services_year
    if switch_date.year <= last:
        return EpjPath.NEW_SERVICES
    if uses_vkp is None:
        return EpjPath.VKP_UNKNOWN
    return EpjPath.INTEGRATE_VKP if uses_vkp else EpjPath.CONSIDER_VKP
