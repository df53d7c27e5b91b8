"""The self-service policy (DESIGN.md section 5): what makes "no onboarding project" true.

An access-request item is approved when all of these hold, checked in this order; the first that
fails decides, with a reason a person can act on:

0. the client's vendor is not suspended by NHN -> rejected (lifting the suspension restores the
   grants it closed; what was refused meanwhile is ordered again);
1. the client's system type may have that access to the service (the catalogue) -> rejected.
   In production the type is the one NHN verified; an unverified product whose declared type
   would do -> awaiting_verification (NHN's verification releases it);
2. the kommune's EPJ meets the service's EPJ requirement (reading the switch plan) -> rejected;
   in production, whether the EPJ is Epic is NHN's word too -> awaiting_verification;
3. production only: a signed instruction of the kommune covers the service -> awaiting_kommune;
4. vendor-initiated: a delegation in force covers the service and the access, or a kommune admin
   approved the item -> awaiting_kommune; kommune-initiated: the client's vendor consented ->
   awaiting_vendor;
5. the service is available in the client's environment -> awaiting_availability.

The service codes (tjenstlig behov) of the grant are those the vendor asked for that the kommune
allowed: on the delegation item, on its admin's approval, or in its own order.

Pure: everything it needs is passed in, so it is tested without a database.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import translation
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from orders.models import Access, AccessRequest, Delegation, Instruction, ItemStatus, Service
from tenants.models import Environment, Organisation, Product

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
    "product_unverified": _(
        "%(product)s is declared a %(system_type)s, but NHN has not yet verified its system type. "
        "Production access waits for that verification; this item then goes on by itself."
    ),
    "epj_unverified": _(
        "%(service)s is only for kommuner on Epic, and NHN has not yet verified whether "
        "%(kommune)s's EPJ %(epj)s is Epic. The item goes on by itself once NHN has."
    ),
    "vendor_consent_missing": _(
        "%(kommune)s ordered this for a client of %(vendor)s, so an administrator of %(vendor)s "
        "must consent before it is granted."
    ),
    "not_available": _(
        "%(service)s opens in %(environment)s on %(date)s; the item is granted by itself then."
    ),
    "not_scheduled": _(
        "%(service)s has no opening date in %(environment)s yet; the item is granted by itself "
        "when NHN opens it."
    ),
    "rejected_by_kommune": _("Rejected by %(person)s for %(kommune)s."),
    "rejected_by_kommune_because": _("Rejected by %(person)s for %(kommune)s: %(reason)s"),
    "withdrawn": _("Withdrawn by %(person)s."),
    "client_removed": _("The client was removed before the item was granted."),
    "vendor_suspended": _(
        "%(vendor)s is suspended by NHN, so its clients are granted no new access. Order again "
        "once NHN has lifted the suspension."
    ),
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
    english = (translation.get_language() or "nb").startswith("en")
    service_name = worded.get("service_en" if english else "service_nb")
    if service_name:  # reasons stored before the names were kept name the service by its code
        worded["service"] = service_name
    if isinstance(worded.get("date"), str):
        with contextlib.suppress(ValueError):
            day = datetime.date.fromisoformat(worded["date"])
            worded["date"] = date_format(day, "DATE_FORMAT")
    return str(REASONS[code]) % worded


@dataclass(frozen=True)
class Context:
    """What the policy looks at for one item."""

    service: Service
    access: str
    system_type: str  # NHN's verified type in production, the declared one in test
    environment: str
    kommune: Organisation
    vendor_name: str
    initiated_by: str
    instruction: Instruction | None  # the kommune's instruction in force, if any
    delegation: Delegation | None  # a delegation in force covering service and access, if any
    kommune_approved: bool = False
    today: datetime.date | None = None
    #: False for a production client whose product NHN has not verified; ``system_type`` is then
    #: the vendor's declaration, enough to refuse but never to grant.
    product_verified: bool = True
    product_name: str = ""
    vendor_consented: bool = False
    service_codes: tuple[str, ...] = ()  # asked for
    delegation_codes: tuple[str, ...] = ()  # allowed by the delegation item
    kommune_codes: tuple[str, ...] | None = None  # allowed by the approving kommune admin
    vendor_suspended: bool = False  # NHN has suspended the client's vendor


@dataclass(frozen=True)
class Decision:
    status: ItemStatus
    reason_code: str = ""
    reason_params: dict[str, Any] = field(default_factory=dict)
    instruction: Instruction | None = None
    delegation: Delegation | None = None
    service_codes: tuple[str, ...] = ()

    @property
    def approved(self) -> bool:
        return self.status == ItemStatus.APPROVED


def decide(ctx: Context) -> Decision:
    service = ctx.service
    names = {
        "service": service.code,
        # Both names, so that the reason reads in the reader's language (reason_text).
        "service_nb": service.name_nb,
        "service_en": service.name_en,
        "kommune": ctx.kommune.name,
        "environment": ctx.environment,  # a code: worded when read (reason_text)
    }

    # 0. A vendor NHN has suspended gets nothing new, whatever else holds.
    if ctx.vendor_suspended:
        return Decision(
            ItemStatus.REJECTED, "vendor_suspended", {**names, "vendor": ctx.vendor_name}
        )

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

    # 1b. Production goes by NHN's verification, never by the vendor's word alone.
    if not ctx.product_verified:
        return Decision(
            ItemStatus.AWAITING_VERIFICATION,
            "product_unverified",
            {**names, "product": ctx.product_name, "system_type": ctx.system_type},
        )

    # 2. The EPJ requirement, reading the kommune's switch plan.
    if service.epj_requirement == Service.EpjRequirement.EPIC:
        epj = ctx.kommune.epj_for(ctx.environment, on=ctx.today)
        if epj is None:
            return Decision(ItemStatus.REJECTED, "epj_unknown", names)
        epic = epj.is_epic_in(ctx.environment)
        if epic is None:
            return Decision(
                ItemStatus.AWAITING_VERIFICATION, "epj_unverified", {**names, "epj": epj.name}
            )
        if not epic:
            return Decision(ItemStatus.REJECTED, "epj_not_epic", {**names, "epj": epj.name})

    # 3. Production needs the kommune's instruction to NHN to cover the service.
    instruction = None
    if ctx.environment == Environment.PRODUCTION:
        covered = ctx.instruction is not None and ctx.instruction.covers(service)
        if not covered:
            return Decision(ItemStatus.AWAITING_KOMMUNE, "instruction_missing", names)
        instruction = ctx.instruction

    # 4. A vendor's request needs a delegation, or a kommune admin's approval; a kommune's
    # order for a vendor's client needs that vendor's consent.
    delegation = None
    codes = ctx.service_codes
    if ctx.initiated_by == AccessRequest.Initiator.VENDOR:
        if ctx.kommune_approved:
            allowed = ctx.service_codes if ctx.kommune_codes is None else ctx.kommune_codes
            codes = tuple(c for c in ctx.service_codes if c in allowed)
        elif ctx.delegation is None:
            return Decision(
                ItemStatus.AWAITING_KOMMUNE,
                "delegation_missing",
                {**names, "vendor": ctx.vendor_name},
                instruction=instruction,
            )
        else:
            delegation = ctx.delegation
            codes = tuple(c for c in ctx.service_codes if c in ctx.delegation_codes)
    elif not ctx.vendor_consented:
        return Decision(
            ItemStatus.AWAITING_VENDOR,
            "vendor_consent_missing",
            {**names, "vendor": ctx.vendor_name},
            instruction=instruction,
        )

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

    return Decision(
        ItemStatus.APPROVED, instruction=instruction, delegation=delegation, service_codes=codes
    )


#: Why a grant was revoked (``Grant.revoke_reason_code``) or where provisioning left it
#: (``Grant.status_reason_code``); the parameters are filled in the reader's language.
GRANT_REASONS: dict[str, Any] = {
    "product_unverified": _(
        "%(product)s is no longer verified by NHN, and production access needs that."
    ),
    "not_verified_as": _(
        "%(product)s is no longer verified as %(allowed)s, the system type that may %(access)s "
        "%(service)s."
    ),
    "not_declared_as": _(
        "%(product)s is no longer declared as %(allowed)s, the system type that may %(access)s "
        "%(service)s."
    ),
    "not_epic": _("%(kommune)s no longer runs Epic, which %(service)s needs."),
    "epj_unverified": _(
        "%(kommune)s's EPJ %(epj)s is not verified by NHN as Epic, which %(service)s needs."
    ),
    "instruction_uncovered": _("Instruction version %(version)s no longer covers the service."),
    "delegation_revoked": _("The delegation it rested on was revoked."),
    "delegation_expired": _("The delegation it rested on expired."),
    "client_removed": _("The client was removed."),
    "revoked_by": _("Revoked by %(person)s."),
    "vendor_suspended": _(
        "Closed while NHN suspends %(vendor)s (%(reason)s); lifting the suspension restores it."
    ),
    # Recertification: a kommune confirms each vendor's access again every N months.
    "recertification_lapsed": _(
        "%(kommune)s did not confirm the access of %(vendor)s again in time, so it lapsed."
    ),
    "recertification_declined": _(
        "Not confirmed again by %(person)s for %(kommune)s when the access of %(vendor)s was "
        "recertified."
    ),
    # For provisioning's status reasons (``Grant.status_reason_code``).
    "keys_expired": _(
        "Every public key of the client has expired: its grants are closed at the gateway until "
        "a new key is registered."
    ),
    "gave_up": _("Gave up after %(attempts)s attempts. Last error: %(error)s"),
}


def grant_reason_text(code: str, params: dict[str, Any], stored: str = "") -> str:
    """A grant's reason worded in the active language; ``stored`` (a person's own words, or a
    reason stored before the codes) when there is no code."""
    if not code:
        return stored
    worded = dict(params)
    for name, choices in WORDED_PARAMS.items():
        if name in worded:
            worded[name] = str(choices(worded[name]).label).lower()
    if isinstance(worded.get("allowed"), list):
        worded["allowed"] = str(_(" or ")).join(worded["allowed"]) or "-"
    return str(GRANT_REASONS[code]) % worded


def grant_objection(
    *,
    service: Service,
    access: str,
    product: Product | None,
    environment: str,
    kommune: Organisation,
    today: datetime.date | None = None,
) -> tuple[str, dict[str, Any]]:
    """Why rules 1 and 2 no longer allow a live grant: a code of ``GRANT_REASONS`` and its
    parameters (``("", {})`` when they do). Rules 3 and 4 have their own revocations
    (instruction signed, delegation revoked); availability never takes a grant away."""
    names: dict[str, Any] = {
        "service": service.code,
        "kommune": kommune.name,
        "access": access,  # a code: worded when read
        "product": product.name if product is not None else "-",
    }
    allowed = service.readable_by if access == Access.READ else service.writable_by
    names["allowed"] = list(allowed)
    system_type = product.system_type_in(environment) if product is not None else None
    if environment == Environment.PRODUCTION and system_type is None:
        return "product_unverified", names
    if system_type is None or not service.allows(system_type=system_type, access=access):
        code = "not_verified_as" if environment == Environment.PRODUCTION else "not_declared_as"
        return code, names
    if service.epj_requirement == Service.EpjRequirement.EPIC:
        epj = kommune.epj_for(environment, on=today)
        epic = epj.is_epic_in(environment) if epj is not None else False
        if epic is None and epj is not None:
            return "epj_unverified", {**names, "epj": epj.name}
        if not epic:
            return "not_epic", names
    return "", {}
