"""The self-service policy (DESIGN.md section 5): what makes "no onboarding project" true.

An access-request item is approved when all of these hold, checked in this order; the first that
fails decides, with a reason a person can act on:

1. the client's system type may have that access to the service (the catalogue) -> rejected;
2. the kommune's EPJ meets the service's EPJ requirement (reading the switch plan) -> rejected;
3. production only: a signed instruction of the kommune covers the service -> awaiting_kommune;
4. vendor-initiated only: a delegation in force covers the service, or a kommune admin approved
   the item -> awaiting_kommune;
5. the service is available in the client's environment -> awaiting_availability.

Pure: everything it needs is passed in, so it is tested without a database.
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from orders.models import Access, AccessRequest, Delegation, Instruction, ItemStatus, Service
from tenants.models import Environment, Organisation

#: Reason codes and their wording; the parameters are filled in the reader's language.
REASONS: dict[str, Any] = {
    "system_type": _(
        "A %(system_type)s product may not %(access)s %(service)s: the catalogue lets only "
        "%(allowed)s do that."
    ),
    "epj_not_epic": _(
        "%(service)s is only for kommuner on Epic, and %(kommune)s runs %(epj)s in %(environment)s."
    ),
    "epj_unknown": _(
        "%(service)s is only for kommuner on Epic, and %(kommune)s has not recorded its EPJ. A "
        "kommune admin can record it, with any planned switch."
    ),
    "instruction_missing": _(
        "%(kommune)s has no signed data-processing instruction covering %(service)s. A kommune "
        "admin must sign one before production access is granted; this item then goes on by itself."
    ),
    "delegation_missing": _(
        "No delegation from %(kommune)s to %(vendor)s covers %(service)s, so a kommune admin of "
        "%(kommune)s must approve this item."
    ),
    "not_available": _(
        "%(service)s opens in %(environment)s on %(date)s; the item is granted by itself then."
    ),
    "not_scheduled": _(
        "%(service)s has no opening date in %(environment)s yet; the item is granted by itself "
        "when NHN opens it."
    ),
    "rejected_by_kommune": _("Rejected by %(person)s for %(kommune)s."),
    "withdrawn": _("Withdrawn by %(person)s."),
    "client_removed": _("The client was removed before the item was granted."),
}


#: Parameters kept as codes and worded when read, so a reason reads wholly in the reader's
#: language, whichever language the decision was made in.
WORDED_PARAMS: dict[str, type[models.TextChoices]] = {"access": Access, "environment": Environment}


@functools.cache
def _codes_by_word(choices: type[models.TextChoices]) -> dict[str, str]:
    """Each code, and its label in every language: reasons stored before the parameters were
    kept as codes hold the label of the language they were decided in."""
    words = {value: value for value in choices.values}
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            words.update({str(label).lower(): value for value, label in choices.choices})
    return words


def reason_text(code: str, params: dict[str, Any]) -> str:
    """The reason worded in the active language ('' for none)."""
    if not code:
        return ""
    worded = dict(params)
    for name, choices in WORDED_PARAMS.items():
        value = _codes_by_word(choices).get(str(worded.get(name, "")).lower())
        if value is not None:
            worded[name] = str(choices(value).label).lower()
    return str(REASONS[code]) % worded


@dataclass(frozen=True)
class Context:
    """What the policy looks at for one item."""

    service: Service
    access: str
    system_type: str
    environment: str
    kommune: Organisation
    vendor_name: str
    initiated_by: str
    instruction: Instruction | None  # the kommune's instruction in force, if any
    delegation: Delegation | None  # a delegation in force covering the service, if any
    kommune_approved: bool = False
    today: datetime.date | None = None


@dataclass(frozen=True)
class Decision:
    status: ItemStatus
    reason_code: str = ""
    reason_params: dict[str, Any] = field(default_factory=dict)
    instruction: Instruction | None = None
    delegation: Delegation | None = None

    @property
    def approved(self) -> bool:
        return self.status == ItemStatus.APPROVED


def decide(ctx: Context) -> Decision:
    service = ctx.service
    names = {
        "service": service.code,
        "kommune": ctx.kommune.name,
        "environment": ctx.environment,  # a code: worded when read (reason_text)
    }

    # 1. The catalogue: who may read and who may write.
    if not service.allows(system_type=ctx.system_type, access=ctx.access):
        allowed = service.readable_by if ctx.access == Access.READ else service.writable_by
        return Decision(
            ItemStatus.REJECTED,
            "system_type",
            {
                **names,
                "system_type": ctx.system_type,
                "access": ctx.access,
                "allowed": ", ".join(allowed) or "-",
            },
        )

    # 2. The EPJ requirement, reading the kommune's switch plan.
    if service.epj_requirement == Service.EpjRequirement.EPIC:
        epj = ctx.kommune.epj_for(ctx.environment, on=ctx.today)
        if epj is None:
            return Decision(ItemStatus.REJECTED, "epj_unknown", names)
        if not epj.is_epic:
            return Decision(ItemStatus.REJECTED, "epj_not_epic", {**names, "epj": epj.name})

    # 3. Production needs the kommune's instruction to NHN to cover the service.
    instruction = None
    if ctx.environment == Environment.PRODUCTION:
        covered = ctx.instruction is not None and ctx.instruction.covers(service)
        if not covered:
            return Decision(ItemStatus.AWAITING_KOMMUNE, "instruction_missing", names)
        instruction = ctx.instruction

    # 4. A vendor's request needs a delegation, or a kommune admin's approval.
    delegation = None
    if ctx.initiated_by == AccessRequest.Initiator.VENDOR and not ctx.kommune_approved:
        if ctx.delegation is None:
            return Decision(
                ItemStatus.AWAITING_KOMMUNE,
                "delegation_missing",
                {**names, "vendor": ctx.vendor_name},
                instruction=instruction,
            )
        delegation = ctx.delegation

    # 5. The service must be open in the environment; otherwise the item waits for it.
    if not service.is_available(ctx.environment, on=ctx.today):
        opens = service.available_from(ctx.environment)
        if opens is None:
            return Decision(ItemStatus.AWAITING_AVAILABILITY, "not_scheduled", names)
        return Decision(
            ItemStatus.AWAITING_AVAILABILITY,
            "not_available",
            {**names, "date": opens.isoformat()},
            instruction=instruction,
            delegation=delegation,
        )

    return Decision(ItemStatus.APPROVED, instruction=instruction, delegation=delegation)
