"""Who: organisations, their people and their products."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.models import Q, lookups
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.request_memo import memoised
from tenants.validators import (
    name_normalise,
    validate_kommunenummer,
    validate_name,
    validate_orgnr,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


class Kommune(models.Model):
    """An entry of the national kommune register (the 357 kommuner of 2024)."""

    number = models.CharField(
        _("kommune number"), primary_key=True, max_length=4, validators=[validate_kommunenummer]
    )
    name = models.CharField(_("name"), max_length=100)
    county_number = models.CharField(_("county number"), max_length=2)
    county_name = models.CharField(_("county"), max_length=100)

    class Meta:
        ordering = ["number"]
        verbose_name = _("kommune register entry")
        verbose_name_plural = _("kommune register")

    def __str__(self) -> str:
        return f"{self.number} {self.name}"


class OrganisationQuerySet(models.QuerySet["Organisation"]):
    def kommuner(self) -> OrganisationQuerySet:
        return self.filter(kind=Organisation.Kind.KOMMUNE)

    def visible_to(self, user: User | AnonymousUser) -> OrganisationQuerySet:
        """Organisations the user is a member of; NHN staff see all, outsiders none."""
        if not user.is_authenticated:
            return self.none()
        roles = Membership.objects.roles_of(user)
        if roles.nhn_staff:
            return self
        return self.filter(pk__in=roles.organisation_ids)


class NameField(models.CharField):  # type: ignore[type-arg]
    """A name, kept in Unicode's composed form (NFC, ``name_normalise``): on the instance when it
    is cleaned or saved, in the database, and in every lookup (a filter by either spelling of a
    name finds it, and a uniqueness check sees both as one)."""

    def to_python(self, value: Any) -> Any:
        value = super().to_python(value)
        return name_normalise(value) if isinstance(value, str) else value

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return name_normalise(value) if isinstance(value, str) else value

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = getattr(model_instance, self.attname)
        if isinstance(value, str):
            value = name_normalise(value)
            setattr(model_instance, self.attname, value)
        return value


def _composed(lookup: type[lookups.Lookup[Any]]) -> type[lookups.Lookup[Any]]:
    """``lookup`` on a name with its value composed first: Django's pattern lookups and
    ``iexact`` take their value as given, not through ``get_prep_value``, so a search typed
    with a combining ring would miss the name stored with "Å"."""

    class Composed(lookup):  # type: ignore[valid-type,misc]
        def get_prep_lookup(self) -> Any:
            value = super().get_prep_lookup()
            return name_normalise(value) if isinstance(value, str) else value

    Composed.__name__ = Composed.__qualname__ = f"Composed{lookup.__name__}"
    return Composed


for _pattern in (
    lookups.IExact,
    lookups.Contains,
    lookups.IContains,
    lookups.StartsWith,
    lookups.IStartsWith,
    lookups.EndsWith,
    lookups.IEndsWith,
):
    NameField.register_lookup(_composed(_pattern))


class Organisation(models.Model):
    class Kind(models.TextChoices):
        KOMMUNE = "kommune", _("Kommune")
        VENDOR = "vendor", _("Vendor")
        OPERATOR = "operator", _("Operator (NHN)")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    orgnr = models.CharField(
        _("organisation number"), max_length=9, unique=True, validators=[validate_orgnr]
    )
    name = NameField(_("name"), max_length=200, validators=[validate_name])
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    kommune = models.OneToOneField(
        Kommune,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="organisation",
        verbose_name=_("kommune register entry"),
    )
    epj_product = models.ForeignKey(
        "Product",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="kommuner_using",
        verbose_name=_("current EPJ"),
    )
    epj_switch_product = models.ForeignKey(
        "Product",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="kommuner_switching_to",
        verbose_name=_("planned EPJ"),
    )
    epj_switch_date = models.DateField(_("planned EPJ switch date"), null=True, blank=True)
    # Whether the kommune uses VKP (today's welfare-technology hub) today: None until it says.
    # With the switch date it decides NHN's recommended path (``tenants.transition``).
    uses_vkp = models.BooleanField(_("uses VKP today"), null=True, blank=True)
    # Set while NHN suspends a vendor: the policy refuses its clients new access. Who suspended it,
    # why, and which grants it closed are kept on ``orders.Suspension`` (orders sits above this
    # app); this is the flag every decision reads with the vendor, at no extra query.
    suspended_at = models.DateTimeField(_("suspended since"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrganisationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        permissions = [("manage_organisation", "Can manage the organisation's members and plans")]
        constraints = [
            models.CheckConstraint(
                name="tenants_organisation_kommune_iff_kind_kommune",
                condition=(Q(kind="kommune") & Q(kommune__isnull=False))
                | (~Q(kind="kommune") & Q(kommune__isnull=True)),
                violation_error_message=_(
                    "A kommune links to its register entry, and only a kommune does."
                ),
            ),
            models.CheckConstraint(
                name="tenants_organisation_epj_only_kommune",
                condition=Q(kind="kommune")
                | (
                    Q(epj_product__isnull=True)
                    & Q(epj_switch_product__isnull=True)
                    & Q(epj_switch_date__isnull=True)
                    & Q(uses_vkp__isnull=True)
                ),
                violation_error_message=_("Only a kommune has an EPJ and EPJ switch plans."),
            ),
            models.CheckConstraint(
                name="tenants_organisation_epj_switch_complete",
                condition=Q(epj_switch_product__isnull=True, epj_switch_date__isnull=True)
                | Q(epj_switch_product__isnull=False, epj_switch_date__isnull=False),
                violation_error_message=_("A planned EPJ switch names both the EPJ and the date."),
            ),
            models.CheckConstraint(
                name="tenants_organisation_only_vendor_suspended",
                condition=Q(suspended_at__isnull=True) | Q(kind="vendor"),
                violation_error_message=_("Only a vendor can be suspended."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.orgnr})"

    def epj_for(self, environment: str, on: datetime.date | None = None) -> Product | None:
        """The EPJ that counts for ``environment``, reading the planned switch.

        Production follows the switch from its date. The test environment follows it as soon as
        it is planned, so a kommune can test the new EPJ's services before it switches.
        """
        switch, when = self.epj_switch_product, self.epj_switch_date
        if switch is None or when is None:
            return self.epj_product
        switched = environment == Environment.TEST or when <= (on or timezone.localdate())
        return switch if switched else self.epj_product

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None


class Product(models.Model):
    """A vendor's system; its system type decides what it may read and write."""

    class SystemType(models.TextChoices):
        EPJ = "EPJ", _("EPJ (electronic patient record)")
        VFT = "VFT", _("VFT (welfare technology)")
        DHO = "DHO", _("DHO (digital home follow-up)")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    vendor = models.ForeignKey(
        Organisation, models.PROTECT, related_name="products", verbose_name=_("vendor")
    )
    name = NameField(_("name"), max_length=200, validators=[validate_name])
    system_type = models.CharField(_("system type"), max_length=3, choices=SystemType.choices)
    is_epic = models.BooleanField(
        _("Epic"), default=False, help_text=_("The EPJ is Epic (Helseplattformen).")
    )
    # NHN's word, which production relies on: the vendor's declaration above counts in the test
    # environment only. A new declaration does not clear it: production keeps going by what NHN
    # last verified (clearing it let one vendor's toggle revoke every other vendor's access that
    # rested on its EPJ), and ``reverification_requested_at`` asks NHN to look again.
    verified_system_type = models.CharField(
        _("verified system type"), max_length=3, choices=SystemType.choices, blank=True
    )
    verified_is_epic = models.BooleanField(_("verified as Epic"), default=False)
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    reverification_requested_at = models.DateTimeField(
        _("re-verification requested at"),
        null=True,
        blank=True,
        help_text=_("The vendor declared a new type since NHN verified it."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("product")
        verbose_name_plural = _("products")
        constraints = [
            models.UniqueConstraint(
                fields=["vendor", "name"],
                name="tenants_product_unique_name_per_vendor",
                violation_error_message=_("This vendor already has a product with that name."),
            ),
            models.CheckConstraint(
                name="tenants_product_epic_is_epj",
                condition=Q(is_epic=False) | Q(system_type="EPJ"),
                violation_error_message=_("Only an EPJ can be Epic."),
            ),
            models.CheckConstraint(
                name="tenants_product_verified_has_type",
                condition=Q(verified_at__isnull=True) | ~Q(verified_system_type=""),
            ),
            models.CheckConstraint(
                name="tenants_product_verified_epic_is_epj",
                condition=Q(verified_is_epic=False) | Q(verified_system_type="EPJ"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.system_type})"

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None

    @property
    def awaiting_verification(self) -> bool:
        """NHN has never verified it, or the vendor has declared a new type since."""
        return self.verified_at is None or self.reverification_requested_at is not None

    def system_type_in(self, environment: str) -> str | None:
        """The type the policy goes by: the declared one in test, NHN's verified one in
        production (None while unverified)."""
        if environment == Environment.TEST:
            return self.system_type
        return self.verified_system_type if self.is_verified else None

    def is_epic_in(self, environment: str) -> bool | None:
        """Whether the policy counts it as Epic; None in production while unverified."""
        if environment == Environment.TEST:
            return self.is_epic
        return self.verified_is_epic if self.is_verified else None


class Environment(models.TextChoices):
    TEST = "test", _("Test")
    PRODUCTION = "production", _("Production")


class Role(models.TextChoices):
    KOMMUNE_ADMIN = "kommune_admin", _("Kommune administrator")
    KOMMUNE_READER = "kommune_reader", _("Kommune reader")
    VENDOR_ADMIN = "vendor_admin", _("Vendor administrator")
    VENDOR_DEVELOPER = "vendor_developer", _("Vendor developer")
    NHN_OPERATOR = "nhn_operator", _("NHN operator")
    NHN_AUDITOR = "nhn_auditor", _("NHN auditor")


#: Which roles an organisation of each kind can give.
ROLES_BY_KIND: dict[str, tuple[Role, ...]] = {
    Organisation.Kind.KOMMUNE: (Role.KOMMUNE_ADMIN, Role.KOMMUNE_READER),
    Organisation.Kind.VENDOR: (Role.VENDOR_ADMIN, Role.VENDOR_DEVELOPER),
    Organisation.Kind.OPERATOR: (Role.NHN_OPERATOR, Role.NHN_AUDITOR),
}
#: The roles that administer their organisation (and hold its guardian object permissions).
ADMIN_ROLES = frozenset({Role.KOMMUNE_ADMIN, Role.VENDOR_ADMIN, Role.NHN_OPERATOR})
NHN_ROLES = frozenset({Role.NHN_OPERATOR, Role.NHN_AUDITOR})
#: A role's rank: nobody grants a role ranked above their own.
ROLE_RANK: dict[str, int] = {
    Role.KOMMUNE_READER: 1,
    Role.VENDOR_DEVELOPER: 1,
    Role.NHN_AUDITOR: 1,
    Role.KOMMUNE_ADMIN: 2,
    Role.VENDOR_ADMIN: 2,
    Role.NHN_OPERATOR: 3,
}


@dataclass(frozen=True)
class UserRoles:
    """A person's roles by organisation, read in one query once per request."""

    by_organisation: Mapping[Any, frozenset[str]]
    kinds: Mapping[Any, str]

    def in_(self, organisation: Organisation) -> frozenset[str]:
        return self.by_organisation.get(organisation.pk, frozenset())

    def has(self, *roles: str) -> bool:
        """Holds one of ``roles`` in some organisation."""
        return any(held & set(roles) for held in self.by_organisation.values())

    def member_of_kind(self, kind: str) -> bool:
        return kind in self.kinds.values()

    @property
    def organisation_ids(self) -> list[Any]:
        return list(self.by_organisation)

    @property
    def nhn_staff(self) -> bool:
        """NHN operators and auditors see every organisation."""
        return self.has(*NHN_ROLES)


NO_ROLES = UserRoles(by_organisation={}, kinds={})


class MembershipQuerySet(models.QuerySet["Membership"]):
    def of_user(self, user: User | AnonymousUser) -> MembershipQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(user__pk=user.pk)

    def roles_of(self, user: User | AnonymousUser) -> UserRoles:
        """The user's roles, read once per request (``portal.request_memo``)."""
        if not user.is_authenticated:
            return NO_ROLES
        return memoised(("roles", user.pk), lambda: self._roles_read(user.pk))

    def _roles_read(self, user_id: Any) -> UserRoles:
        by_organisation: dict[Any, set[str]] = {}
        kinds: dict[Any, str] = {}
        rows = Membership.objects.filter(user_id=user_id).values_list(
            "organisation_id", "organisation__kind", "role"
        )
        for organisation_id, kind, role in rows:
            by_organisation.setdefault(organisation_id, set()).add(role)
            kinds[organisation_id] = kind
        return UserRoles(
            by_organisation={k: frozenset(v) for k, v in by_organisation.items()}, kinds=kinds
        )

    def is_nhn_staff(self, user: User | AnonymousUser) -> bool:
        """True for NHN operators and auditors, who see every organisation."""
        return self.roles_of(user).nhn_staff

    def visible_to(self, user: User | AnonymousUser) -> MembershipQuerySet:
        """Members of the organisations the user belongs to; NHN staff see all."""
        roles = self.roles_of(user)
        if roles.nhn_staff:
            return self.all()
        return self.filter(organisation__in=roles.organisation_ids)


class Membership(models.Model):
    """A person's role in an organisation.

    Made for an e-mail address (an invitation) and bound to the person at their first login, when
    the identity claim of their login matches the address.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        Organisation, models.PROTECT, related_name="memberships", verbose_name=_("organisation")
    )
    email = models.EmailField(_("e-mail address"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="memberships",
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    bound_at = models.DateTimeField(null=True, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["organisation__name", "email"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "email"],
                name="tenants_membership_unique_email",
                violation_error_message=_("This person is already a member of the organisation."),
            ),
            models.UniqueConstraint(
                fields=["organisation", "user"],
                condition=Q(user__isnull=False),
                name="tenants_membership_unique_user",
                violation_error_message=_("This person is already a member of the organisation."),
            ),
            models.CheckConstraint(
                name="tenants_membership_bound_with_time",
                condition=Q(user__isnull=True) | Q(bound_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email}: {self.role} of {self.organisation_id}"


class OAuthClientQuerySet(models.QuerySet["OAuthClient"]):
    def visible_to(self, user: User | AnonymousUser) -> OAuthClientQuerySet:
        """The clients of the vendors the user belongs to; NHN staff see all.

        Kommune members see the clients that have asked their kommune for access (orders adds
        those; see ``orders.selectors``).
        """
        if not user.is_authenticated:
            return self.none()
        roles = Membership.objects.roles_of(user)
        if roles.nhn_staff:
            return self
        return self.filter(vendor__in=roles.organisation_ids)

    def active(self) -> OAuthClientQuerySet:
        return self.filter(removed_at__isnull=True)


class OAuthClient(models.Model):
    """An OAuth client of a vendor's product, authenticating with private_key_jwt.

    Multi-tenant: one client may serve many kommuner. The portal holds its public keys only.
    ``client_id`` is the authorization server's, set once the client is provisioned.
    """

    class Purpose(models.TextChoices):
        FHIR = "fhir", _("FHIR information services")
        PORTAL_API = "portal_api", _("The portal's own API (automation)")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    vendor = models.ForeignKey(
        Organisation, models.PROTECT, related_name="clients", verbose_name=_("owner")
    )
    product = models.ForeignKey(
        Product, models.PROTECT, null=True, blank=True, related_name="clients"
    )
    name = NameField(_("name"), max_length=200, validators=[validate_name])
    environment = models.CharField(_("environment"), max_length=10, choices=Environment.choices)
    purpose = models.CharField(
        _("purpose"), max_length=12, choices=Purpose.choices, default=Purpose.FHIR
    )
    client_id = models.CharField(
        _("client_id at the authorization server"), max_length=200, blank=True, db_index=True
    )
    # For automation clients of the portal's own API: the role they act with, and the account
    # that holds it (a membership like a person's, so every permission check applies unchanged).
    api_role = models.CharField(_("role"), max_length=20, choices=Role.choices, blank=True)
    service_user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="automation_client",
    )
    # Written by the provisioning workers, shown in the API.
    provisioning_status = models.CharField(
        _("provisioning status"),
        max_length=12,
        choices=[
            ("pending", _("Pending")),
            ("provisioned", _("Provisioned")),
            ("failed", _("Failed")),
            ("keys_expired", _("Keys expired")),
        ],
        default="pending",
    )
    provisioning_attempts = models.PositiveIntegerField(default=0)
    provisioning_error = models.TextField(blank=True)
    provisioned_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    objects = OAuthClientQuerySet.as_manager()

    class Meta:
        ordering = ["name", "created_at"]
        verbose_name = _("client")
        verbose_name_plural = _("clients")
        constraints = [
            models.CheckConstraint(
                name="tenants_oauthclient_fhir_has_product",
                condition=Q(purpose="portal_api") | Q(product__isnull=False),
                violation_error_message=_(
                    "A client for the information services names its product."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.environment})"

    @property
    def is_active(self) -> bool:
        return self.removed_at is None


def key_lifetime() -> datetime.timedelta:
    """How long a client's key is accepted after it was added (``CLIENT_KEY_LIFETIME_DAYS``)."""
    return datetime.timedelta(days=settings.CLIENT_KEY_LIFETIME_DAYS)


def key_warning_window() -> datetime.timedelta:
    """How long before its end a key is due for rotation: the first warning's days ahead."""
    days = max(settings.CLIENT_KEY_WARNING_DAYS, default=0)
    return datetime.timedelta(days=days)


class ClientKeyQuerySet(models.QuerySet["ClientKey"]):
    def valid(self, at: datetime.datetime | None = None) -> ClientKeyQuerySet:
        """Keys still accepted ``at`` (now): before their own expiry and within the lifetime."""
        at = at or timezone.now()
        return self.filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=at), created_at__gt=at - key_lifetime()
        )

    def ending_by(self, at: datetime.datetime) -> ClientKeyQuerySet:
        """Keys no longer accepted by ``at``: they expire or reach the lifetime by then."""
        return self.filter(Q(expires_at__lte=at) | Q(created_at__lte=at - key_lifetime()))


class ClientKey(models.Model):
    """One public signing key of a client (a JWK without private members).

    A key is accepted until ``valid_until``: its own ``exp`` (``expires_at``), or the key
    lifetime after it was added, whichever comes first. The provisioning workers leave a key
    past it out of what the authorization server holds, so it is no longer accepted.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(OAuthClient, models.CASCADE, related_name="keys")
    kid = models.CharField(max_length=200)
    kty = models.CharField(max_length=3)
    alg = models.CharField(max_length=5)
    jwk = models.JSONField()
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ClientKeyQuerySet.as_manager()

    class Meta:
        ordering = ["client", "created_at", "kid"]
        verbose_name = _("client key")
        verbose_name_plural = _("client keys")
        constraints = [
            models.UniqueConstraint(fields=["client", "kid"], name="tenants_clientkey_unique_kid"),
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({self.alg})"

    @property
    def lifetime_ends_at(self) -> datetime.datetime:
        return self.created_at + key_lifetime()

    @property
    def valid_until(self) -> datetime.datetime:
        """When the key stops being accepted: its own expiry or the lifetime's end."""
        if self.expires_at is not None and self.expires_at < self.lifetime_ends_at:
            return self.expires_at
        return self.lifetime_ends_at

    @property
    def ends_by_age(self) -> bool:
        """It ends because of its age (the lifetime), not its own expiry."""
        return self.valid_until == self.lifetime_ends_at

    def is_valid(self, at: datetime.datetime | None = None) -> bool:
        return self.valid_until > (at or timezone.now())

    def is_due(self, at: datetime.datetime | None = None) -> bool:
        """Due for rotation: it ends within the warning window."""
        return self.valid_until <= (at or timezone.now()) + key_warning_window()


class Profile(models.Model):
    """A person's own settings: the language the portal's e-mails speak to them.

    Set when they change the page's language while logged in (the language cookie speaks for
    one browser only; e-mails go out from workers, which have no browser to ask).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, primary_key=True, related_name="profile"
    )
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.language}"
