"""What: the service catalogue (and, later, access requests and grants)."""

from __future__ import annotations

import datetime
import uuid
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from portal.db import InSubquery
from tenants.models import Environment, Membership, OAuthClient, Organisation, Product

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

QS = TypeVar("QS", bound=models.QuerySet[Any])

SYSTEM_TYPES = frozenset(Product.SystemType.values)


def validate_system_types(value: Any) -> None:
    if not isinstance(value, list) or not all(item in SYSTEM_TYPES for item in value):
        raise ValidationError(
            _("Give a list of system types among %(types)s."),
            params={"types": ", ".join(sorted(SYSTEM_TYPES))},
        )


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

    @property
    def resource_type(self) -> str:
        """The FHIR resource type in request paths (journaling's documents are Bundles)."""
        return self.fhir_resource.split()[0]

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


def _visible_to_either_side(
    queryset: QS, user: User | AnonymousUser, *, vendor: Literal["vendor", "client"]
) -> QS:
    """Rows of kommuner or vendors the user belongs to; NHN staff see all, unfiltered, so that
    ordered lists can walk an index instead of sorting behind an OR.

    ``vendor`` is ``"vendor"`` for rows that name the vendor, ``"client"`` for rows that name a
    client of it. Both sides are index conditions PostgreSQL can OR together (the organisation
    ids are known from the memoised roles; the clients are an ``InSubquery``): with the vendor
    reached through a join, a vendor's list of grants read every grant.
    """
    roles = Membership.objects.roles_of(user)
    if roles.nhn_staff:
        return queryset.all()
    ids = roles.organisation_ids
    if not ids:
        return queryset.none()
    vendor_side: Q | InSubquery = Q(vendor_id__in=ids)
    if vendor == "client":
        clients = OAuthClient.objects.filter(vendor_id__in=ids).order_by().values("pk")
        vendor_side = InSubquery("client_id", clients)
    return queryset.filter(Q(kommune_id__in=ids) | vendor_side)


# --- Data-processing instructions ---------------------------------------------------------------


class InstructionQuerySet(models.QuerySet["Instruction"]):
    def visible_to(self, user: User | AnonymousUser) -> InstructionQuerySet:
        """A kommune's instructions, for its members and NHN staff."""
        if Membership.objects.is_nhn_staff(user):
            return self.all()  # no filter at all: ordered lists can walk an index
        return self.filter(kommune__in=Organisation.objects.visible_to(user))

    def signed(self) -> InstructionQuerySet:
        return self.filter(signed_at__isnull=False)

    def current_for(self, kommune: Organisation) -> Instruction | None:
        """The kommune's newest signed version: the one in force. The services it covers
        (``covered_service_ids``) come in the same statement, read through the many-to-many
        table with the instruction joined; only when that finds no row is it asked again."""
        newest = self.signed().filter(kommune=kommune).order_by("-version").values("pk")[:1]
        coverage = list(
            Instruction.services.through.objects.filter(
                instruction_id=models.Subquery(newest)
            ).select_related("instruction")
        )
        if not coverage:  # none in force, or one that covers no service
            uncovering = self.filter(pk=models.Subquery(newest)).first()
            if uncovering is not None:
                uncovering.covered_service_ids = frozenset()
            return uncovering
        instruction: Instruction = coverage[0].instruction
        instruction.covered_service_ids = frozenset(row.service_id for row in coverage)
        return instruction


class Instruction(models.Model):
    """A kommune's data-processing instruction to NHN (databehandlerinstruks, GDPR art. 28(3)).

    A draft may be edited, and may be incomplete while it is filled in step by step; only a
    complete one is signed (``orders.services.instruction_missing``). Once signed by a named
    kommune admin it is immutable. Signing a new version supersedes the one before; grants keep
    the version they were approved under.
    """

    class SharingScope(models.TextChoices):
        KOMMUNE_ONLY = "kommune_only", _("Inside the kommune only")
        NAMED_ORGANISATIONS = (
            "named_organisations",
            _("Named organisations with a need to know (tjenstlig behov)"),
        )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kommune = models.ForeignKey(Organisation, models.PROTECT, related_name="instructions")
    version = models.PositiveIntegerField(_("version"))
    subject_matter = models.TextField(_("subject matter"), blank=True)
    duration = models.CharField(_("duration"), max_length=200, blank=True)
    nature_and_purpose = models.TextField(_("nature and purpose"), blank=True)
    personal_data_categories = models.JSONField(
        _("categories of personal data"), default=list, blank=True
    )
    data_subject_categories = models.JSONField(
        _("categories of data subjects"), default=list, blank=True
    )
    services = models.ManyToManyField(
        Service, related_name="instructions", verbose_name=_("services")
    )
    sharing_scope = models.CharField(
        _("sharing scope"),
        max_length=20,
        choices=SharingScope.choices,
        default=SharingScope.KOMMUNE_ONLY,
    )
    shared_with = models.JSONField(_("organisations shared with (orgnr)"), default=list, blank=True)
    retention = models.CharField(_("retention"), max_length=500, blank=True)
    sub_processors_acknowledged = models.JSONField(
        _("sub-processors acknowledged"), default=list, blank=True
    )
    contact_name = models.CharField(_("contact person"), max_length=200, blank=True)
    contact_email = models.EmailField(_("contact e-mail"), blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=40, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    signed_by_name = models.CharField(_("signed by"), max_length=200, blank=True)
    signed_at = models.DateTimeField(_("signed at"), null=True, blank=True)
    superseded_at = models.DateTimeField(_("superseded at"), null=True, blank=True)

    objects = InstructionQuerySet.as_manager()

    class Meta:
        ordering = ["kommune", "-version"]
        verbose_name = _("data-processing instruction")
        verbose_name_plural = _("data-processing instructions")
        constraints = [
            models.UniqueConstraint(
                fields=["kommune", "version"], name="orders_instruction_unique_version"
            ),
            models.CheckConstraint(
                name="orders_instruction_signed_by_someone",
                condition=Q(signed_at__isnull=True) | Q(signed_by__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"instruction v{self.version} of {self.kommune_id}"

    @property
    def status(self) -> str:
        if self.signed_at is None:
            return "draft"
        return "superseded" if self.superseded_at else "signed"

    @cached_property
    def covered_service_ids(self) -> frozenset[Any]:
        """The ids of the services this instruction covers. Read from its services when first
        asked; a loader that read them with the instruction sets it instead (the order's policy
        inputs do, in one statement)."""
        return frozenset(service.pk for service in self.services.all())

    def covers(self, service: Service) -> bool:
        return service.pk in self.covered_service_ids


# --- Delegations --------------------------------------------------------------------------------


class DelegationQuerySet(models.QuerySet["Delegation"]):
    def visible_to(self, user: User | AnonymousUser) -> DelegationQuerySet:
        """For members of the delegating kommune or of the vendor, and NHN staff."""
        return _visible_to_either_side(self, user, vendor="vendor")

    def in_force(self, on: datetime.date | None = None) -> DelegationQuerySet:
        day = on or timezone.localdate()
        return self.filter(
            Q(valid_until__isnull=True) | Q(valid_until__gte=day),
            revoked_at__isnull=True,
            valid_from__lte=day,
        )


class Delegation(models.Model):
    """A kommune lets a vendor's requests for these services be approved without asking it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kommune = models.ForeignKey(Organisation, models.PROTECT, related_name="delegations_given")
    vendor = models.ForeignKey(Organisation, models.PROTECT, related_name="delegations_received")
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    expired_at = models.DateTimeField(_("expiry handled at"), null=True, blank=True)

    objects = DelegationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("delegation")
        verbose_name_plural = _("delegations")
        constraints = [
            models.CheckConstraint(
                name="orders_delegation_valid_period",
                condition=Q(valid_until__isnull=True) | Q(valid_until__gte=models.F("valid_from")),
                violation_error_message=_("A delegation cannot end before it starts."),
            ),
        ]

    def __str__(self) -> str:
        return f"delegation {self.kommune_id} -> {self.vendor_id}"

    #: Its items in the order the API shows them: a Prefetch's ``to_attr`` or the new ones.
    ordered_items: list[DelegationItem]

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        today = timezone.localdate()
        if self.valid_until is not None and self.valid_until < today:
            return "expired"
        return "active" if self.valid_from <= today else "scheduled"


class DelegationItem(models.Model):
    """One (service, access) a kommune delegates to a vendor, with the tjenstlig-behov service
    codes the vendor may use for it. Read covers read only; write covers write only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    delegation = models.ForeignKey(Delegation, models.CASCADE, related_name="items")
    service = models.ForeignKey(Service, models.PROTECT, related_name="+")
    access = models.CharField(_("access"), max_length=5, choices=Access.choices)
    service_codes = models.JSONField(_("service codes"), default=list, blank=True)

    class Meta:
        ordering = ["delegation", "service__position", "access"]
        verbose_name = _("delegation item")
        verbose_name_plural = _("delegation items")
        constraints = [
            models.UniqueConstraint(
                fields=["delegation", "service", "access"],
                name="orders_delegationitem_unique_per_delegation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service_id} {self.access}"


# --- Access requests and grants -----------------------------------------------------------------


class AccessRequestQuerySet(models.QuerySet["AccessRequest"]):
    def visible_to(self, user: User | AnonymousUser) -> AccessRequestQuerySet:
        """For members of the kommune asked and of the client's vendor, and NHN staff."""
        return _visible_to_either_side(self, user, vendor="client")


class AccessRequest(models.Model):
    """An order: a client asks a kommune for a set of (service, access) items."""

    class Initiator(models.TextChoices):
        KOMMUNE = "kommune", _("The kommune")
        VENDOR = "vendor", _("The vendor")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(OAuthClient, models.PROTECT, related_name="access_requests")
    kommune = models.ForeignKey(Organisation, models.PROTECT, related_name="access_requests")
    initiated_by = models.CharField(_("initiated by"), max_length=7, choices=Initiator.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name=_("requested by")
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AccessRequestQuerySet.as_manager()
    #: Its items in the order the API shows them: a Prefetch's ``to_attr`` or the new ones.
    ordered_items: list[AccessRequestItem]

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("access request")
        verbose_name_plural = _("access requests")

    def __str__(self) -> str:
        return f"request {self.pk} for {self.kommune_id}"


class ItemStatus(models.TextChoices):
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    AWAITING_KOMMUNE = "awaiting_kommune", _("Awaiting the kommune")
    AWAITING_AVAILABILITY = "awaiting_availability", _("Awaiting availability")
    AWAITING_VERIFICATION = "awaiting_verification", _("Awaiting NHN's verification")
    AWAITING_VENDOR = "awaiting_vendor", _("Awaiting the vendor")
    WITHDRAWN = "withdrawn", _("Withdrawn")


WAITING_STATUSES = frozenset(
    {
        ItemStatus.AWAITING_KOMMUNE,
        ItemStatus.AWAITING_AVAILABILITY,
        ItemStatus.AWAITING_VERIFICATION,
        ItemStatus.AWAITING_VENDOR,
    }
)


class AccessRequestItem(models.Model):
    """One (service, access) of a request, with the policy's decision and its reason."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(AccessRequest, models.CASCADE, related_name="items")
    service = models.ForeignKey(Service, models.PROTECT, related_name="+")
    access = models.CharField(_("access"), max_length=5, choices=Access.choices)
    service_codes = models.JSONField(_("service codes"), default=list, blank=True)
    status = models.CharField(_("status"), max_length=21, choices=ItemStatus.choices)
    # The reason is kept as a code and its parameters, and worded in the reader's language.
    reason_code = models.CharField(_("reason code"), max_length=40, blank=True)
    reason_params = models.JSONField(default=dict, blank=True)
    kommune_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The codes the kommune admin allowed when approving (None: not approved by a person).
    kommune_service_codes = models.JSONField(null=True, blank=True)
    vendor_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    grant = models.ForeignKey(
        "Grant", models.PROTECT, null=True, blank=True, related_name="request_items"
    )

    class Meta:
        ordering = ["request", "service__position", "access"]
        verbose_name = _("access request item")
        verbose_name_plural = _("access request items")
        constraints = [
            models.UniqueConstraint(
                fields=["request", "service", "access"], name="orders_item_unique_per_request"
            ),
            models.CheckConstraint(
                name="orders_item_approved_has_grant",
                condition=~Q(status="approved") | Q(grant__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service_id} {self.access}: {self.status}"


class GrantStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PROVISIONING = "provisioning", _("Provisioning")
    ACTIVE = "active", _("Active")
    FAILED = "failed", _("Failed")
    REVOKING = "revoking", _("Revoking")
    REVOKED = "revoked", _("Revoked")


#: Grants that hold (or are about to hold) access: at most one per client, kommune, service, access.
LIVE_GRANT_STATUSES = (
    GrantStatus.PENDING,
    GrantStatus.PROVISIONING,
    GrantStatus.ACTIVE,
    GrantStatus.FAILED,
)
#: Grants the gateway lets through: only those whose scope the authorization server accepted. A
#: grant being provisioned is not one of them yet (fail closed), nor is a failed one.
PASSING_GRANT_STATUSES = (GrantStatus.ACTIVE,)


class GrantQuerySet(models.QuerySet["Grant"]):
    def visible_to(self, user: User | AnonymousUser) -> GrantQuerySet:
        """For members of the kommune and of the client's vendor, and NHN staff."""
        return _visible_to_either_side(self, user, vendor="client")

    def live(self) -> GrantQuerySet:
        return self.filter(status__in=LIVE_GRANT_STATUSES)

    def passing(self) -> GrantQuerySet:
        """Those that pass the gateway: active ones, whose scope the authorization server has
        accepted. With those being provisioned they make the client's registered scope."""
        return self.filter(status__in=PASSING_GRANT_STATUSES)


class Grant(models.Model):
    """Client x kommune x service x access. Never deleted: revoked, so history stays."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(OAuthClient, models.PROTECT, related_name="grants")
    kommune = models.ForeignKey(Organisation, models.PROTECT, related_name="grants")
    service = models.ForeignKey(Service, models.PROTECT, related_name="grants")
    access = models.CharField(_("access"), max_length=5, choices=Access.choices)
    scope = models.CharField(_("scope"), max_length=100)
    service_codes = models.JSONField(_("service codes"), default=list, blank=True)
    instruction = models.ForeignKey(
        Instruction, models.PROTECT, null=True, blank=True, related_name="grants"
    )
    delegation = models.ForeignKey(
        Delegation, models.PROTECT, null=True, blank=True, related_name="grants"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_automatically = models.BooleanField(_("approved by policy"), default=False)
    status = models.CharField(
        _("status"), max_length=12, choices=GrantStatus.choices, default=GrantStatus.PENDING
    )
    status_changed_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    # A reason is kept as a code of ``orders.policy.GRANT_REASONS`` and its parameters, worded in
    # the reader's language when read (``policy.grant_reason_text``). The text fields hold words a
    # person wrote (a revocation's own reason), and the reasons of rows stored before the codes.
    revoke_reason = models.CharField(_("reason for revocation"), max_length=300, blank=True)
    revoke_reason_code = models.CharField(max_length=40, blank=True)
    revoke_reason_params = models.JSONField(default=dict, blank=True)
    # Why provisioning left the grant where it is (a refusal by the authorization server, keys
    # that all expired); empty once it is active.
    status_reason = models.CharField(_("reason for the status"), max_length=300, blank=True)
    status_reason_code = models.CharField(max_length=40, blank=True)
    status_reason_params = models.JSONField(default=dict, blank=True)

    objects = GrantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("grant")
        verbose_name_plural = _("grants")
        constraints = [
            models.UniqueConstraint(
                fields=["client", "kommune", "service", "access"],
                condition=Q(status__in=LIVE_GRANT_STATUSES),
                name="orders_grant_one_live_per_item",
            ),
        ]
        indexes = [
            models.Index(fields=["kommune", "status"], name="orders_grant_kommune_idx"),
            models.Index(fields=["client", "status"], name="orders_grant_client_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} for {self.client_id} in {self.kommune_id} ({self.status})"


# --- Who had access when -----------------------------------------------------------------------


class GrantPeriodQuerySet(models.QuerySet["GrantPeriod"]):
    def visible_to(self, user: User | AnonymousUser) -> GrantPeriodQuerySet:
        """For members of the kommune and of the client's vendor, and NHN staff."""
        return _visible_to_either_side(self, user, vendor="vendor")

    def at(self, moment: datetime.datetime) -> GrantPeriodQuerySet:
        """The periods that held access at ``moment``: started at or before it and not ended
        by then (half-open: a period ending at ``moment`` no longer holds it)."""
        return self.filter(
            Q(ended_at__isnull=True) | Q(ended_at__gt=moment), started_at__lte=moment
        )

    def overlapping(
        self, start: datetime.datetime | None, end: datetime.datetime | None
    ) -> GrantPeriodQuerySet:
        """The periods that held access at some moment of ``[start, end)``; either end may be
        open (None: since the beginning, or until now and on)."""
        periods = self
        if end is not None:
            periods = periods.filter(started_at__lt=end)
        if start is not None:
            periods = periods.filter(Q(ended_at__isnull=True) | Q(ended_at__gt=start))
        return periods


class GrantPeriod(models.Model):
    """One stretch of time in which a grant had access, with the terms it rested on then.

    "Had access" means: from the moment the grant became ``active`` (the authorization server
    accepted its scope; the gateway lets it through from then on) until the moment it stopped
    being active (its revocation was decided, or the client's keys all expired), as a half-open
    interval ``[started_at, ended_at)``; ``ended_at`` is None while it lasts. The gateway follows
    each change within seconds (README, "Who had access when").

    Written in the same transaction as the status change, by the functions that make it
    (``orders.services.grant_periods_open``/``grant_periods_close``): a grant can have several
    periods (its keys expired and a new key opened it again; a new decision changed its terms),
    and a grant revoked and granted again is a new grant with periods of its own. The grant's
    kommune, client, vendor, service and access never change; they are copied here so that the
    history is read through indexes of its own. Never deleted.
    """

    class End(models.TextChoices):
        REVOKED = "revoked", _("Revoked")
        KEYS_EXPIRED = "keys_expired", _("Closed: the client's keys expired")
        TERMS_CHANGED = "terms_changed", _("Decided again")

    grant = models.ForeignKey(Grant, models.PROTECT, related_name="periods")
    # Each of these three leads an index of its own below.
    kommune = models.ForeignKey(Organisation, models.PROTECT, related_name="+", db_index=False)
    vendor = models.ForeignKey(Organisation, models.PROTECT, related_name="+", db_index=False)
    client = models.ForeignKey(OAuthClient, models.PROTECT, related_name="+", db_index=False)
    service = models.ForeignKey(Service, models.PROTECT, related_name="+")
    access = models.CharField(_("access"), max_length=5, choices=Access.choices)
    scope = models.CharField(_("scope"), max_length=100)
    # The terms of the grant while this period lasted (a new decision starts a new period).
    service_codes = models.JSONField(_("service codes"), default=list, blank=True)
    instruction = models.ForeignKey(
        Instruction, models.PROTECT, null=True, blank=True, related_name="+"
    )
    delegation = models.ForeignKey(
        Delegation, models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_automatically = models.BooleanField(_("approved by policy"), default=False)
    started_at = models.DateTimeField(_("from"))
    ended_at = models.DateTimeField(_("until"), null=True, blank=True)
    end = models.CharField(_("ended by"), max_length=13, choices=End.choices, blank=True)

    objects = GrantPeriodQuerySet.as_manager()

    class Meta:
        ordering = ["started_at", "pk"]
        verbose_name = _("period of access")
        verbose_name_plural = _("periods of access")
        constraints = [
            models.UniqueConstraint(
                fields=["grant"],
                condition=Q(ended_at__isnull=True),
                name="orders_grantperiod_one_open_per_grant",
            ),
            models.CheckConstraint(
                name="orders_grantperiod_ends_after_start",
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
            ),
            models.CheckConstraint(
                name="orders_grantperiod_ended_says_why",
                condition=(
                    Q(ended_at__isnull=True, end="") | (Q(ended_at__isnull=False) & ~Q(end=""))
                ),
            ),
        ]
        indexes = [
            # Every question names a moment or a period, mostly within one kommune, vendor or
            # client: the start bounds the scan, and the end, in the index too, is checked
            # there (a count of the country's answer reads the index alone).
            models.Index(
                fields=["kommune", "started_at", "ended_at"], name="orders_period_kommune_idx"
            ),
            models.Index(
                fields=["vendor", "started_at", "ended_at"], name="orders_period_vendor_idx"
            ),
            models.Index(
                fields=["client", "started_at", "ended_at"], name="orders_period_client_idx"
            ),
            models.Index(fields=["started_at", "ended_at"], name="orders_period_started_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.grant_id} from {self.started_at} until {self.ended_at}"

    @property
    def approval(self) -> str:
        """``policy`` when the rules approved it (a delegation), ``person`` when someone did."""
        return "policy" if self.approved_automatically else "person"


# --- Suspensions of vendors ---------------------------------------------------------------------


class Suspension(models.Model):
    """NHN suspends a vendor: its live grants close through provisioning and its clients get no
    new access until the suspension is lifted, which restores what it closed (``closed``).

    At most one suspension of a vendor is in force; ``Organisation.suspended_at`` mirrors it for
    the policy, which reads the vendor with every decision."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    vendor = models.ForeignKey(Organisation, models.PROTECT, related_name="suspensions")
    reason = models.CharField(_("reason"), max_length=500)
    suspended_at = models.DateTimeField(_("suspended at"), default=timezone.now)
    suspended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name=_("suspended by")
    )
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("lifted by"),
    )

    class Meta:
        ordering = ["-suspended_at"]
        verbose_name = _("suspension")
        verbose_name_plural = _("suspensions")
        constraints = [
            models.UniqueConstraint(
                fields=["vendor"],
                condition=Q(lifted_at__isnull=True),
                name="orders_suspension_one_in_force_per_vendor",
            ),
            models.CheckConstraint(
                name="orders_suspension_lifted_by_someone",
                condition=Q(lifted_at__isnull=True) | Q(lifted_by__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"suspension of {self.vendor_id} from {self.suspended_at:%Y-%m-%d}"

    @property
    def in_force(self) -> bool:
        return self.lifted_at is None


class SuspendedGrant(models.Model):
    """A grant a suspension closed, and what lifting it made of it: the grant that restores it,
    or why the policy did not grant it again (a reason code of ``orders.policy.REASONS``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    suspension = models.ForeignKey(Suspension, models.PROTECT, related_name="closed")
    grant = models.ForeignKey(Grant, models.PROTECT, related_name="suspended_by")
    restored_grant = models.ForeignKey(
        Grant, models.PROTECT, null=True, blank=True, related_name="restores"
    )
    not_restored_code = models.CharField(max_length=40, blank=True)
    not_restored_params = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["suspension", "grant"]
        verbose_name = _("grant closed by a suspension")
        verbose_name_plural = _("grants closed by suspensions")
        constraints = [
            models.UniqueConstraint(
                fields=["suspension", "grant"], name="orders_suspendedgrant_unique_per_suspension"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.grant_id} closed by {self.suspension_id}"


# --- The provisioning outbox ---------------------------------------------------------------------


class ProvisioningJob(models.Model):
    """A durable request to bring one client's outside state (authorization server, gateway) in
    line with the database; written in the same transaction as the change it serves.

    The job carries no desired state: the worker reads it when it runs, so the latest state wins
    and jobs for one client coalesce.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(OAuthClient, models.PROTECT, related_name="provisioning_jobs")
    grant = models.ForeignKey(
        Grant, models.PROTECT, null=True, blank=True, related_name="provisioning_jobs"
    )
    reason = models.CharField(_("reason"), max_length=40)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The fencing token of the claim holding the lease: every renewal, release and record checks
    # it, so a worker whose lease was taken over can change nothing of the new claim.
    lease_token = models.UUIDField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # When its message was last published: the sweeper re-sends only jobs whose message is overdue.
    sent_at = models.DateTimeField(null=True, blank=True)
    coalesced_into = models.ForeignKey(
        "self", models.SET_NULL, null=True, blank=True, related_name="coalesced"
    )
    last_error = models.TextField(blank=True)
    #: The request that made the job (or sent it again): every sending of its task carries it,
    #: so the worker's lines and audit events name that request however late the job runs.
    request_id = models.CharField(_("request id"), max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name = _("provisioning job")
        verbose_name_plural = _("provisioning jobs")
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="orders_job_due_idx"),
            models.Index(fields=["client", "status"], name="orders_job_client_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.reason} for {self.client_id} ({self.status})"
