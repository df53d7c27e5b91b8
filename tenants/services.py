"""Writes of the tenants app. Each function is the one path for its change."""

from __future__ import annotations

import datetime
import enum
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from guardian.shortcuts import assign_perm, get_users_with_perms, remove_perm

from audit.services import audit_event_record
from portal import request_memo
from portal.db import create_validated
from portal.exceptions import Conflict
from tenants.hooks import PolicyInputsChanged, policy_inputs_changed
from tenants.models import (
    ADMIN_ROLES,
    ROLE_RANK,
    ROLES_BY_KIND,
    Environment,
    Kommune,
    Membership,
    Organisation,
    Product,
    Profile,
    Role,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

#: Object permissions on an organisation, by whether the member administers it.
MEMBER_PERMISSIONS = frozenset({"view_organisation"})
ADMIN_PERMISSIONS = MEMBER_PERMISSIONS | {"change_organisation", "manage_organisation"}


def normalize_email(email: str) -> str:
    return email.strip().lower()


@transaction.atomic
def organisation_register(
    *,
    orgnr: str,
    name: str,
    kind: str,
    kommune_number: str | None = None,
    actor: User | None = None,
) -> Organisation:
    """Register an organisation (NHN operators do this); on ValidationError nothing is written."""
    kommune: Kommune | None = None
    if kind == Organisation.Kind.KOMMUNE:
        if not kommune_number:
            raise ValidationError({"kommune": _("A kommune needs its kommune number.")})
        kommune = Kommune.objects.filter(number=kommune_number).first()
        if kommune is None:
            raise ValidationError(
                {
                    "kommune": _("%(number)s is not in the kommune register.")
                    % {"number": kommune_number}
                }
            )
        if Organisation.objects.filter(kommune=kommune).exists():
            raise ValidationError(
                {
                    "kommune": _("Kommune %(number)s is already registered.")
                    % {"number": kommune_number}
                }
            )
    elif kommune_number:
        raise ValidationError({"kommune": _("Only a kommune has a kommune number.")})

    organisation = create_validated(
        Organisation(orgnr=orgnr, name=name.strip(), kind=kind, kommune=kommune)
    )
    audit_event_record(
        actor=actor,
        action="organisation.registered",
        target=organisation,
        organisation=organisation,
        after={"orgnr": orgnr, "name": organisation.name, "kind": kind, "kommune": kommune_number},
    )
    return organisation


@transaction.atomic
def product_register(
    *,
    vendor: Organisation,
    name: str,
    system_type: str,
    is_epic: bool = False,
    actor: User | None = None,
) -> Product:
    """Register a vendor's product; raises ValidationError for a non-vendor or a duplicate name."""
    if vendor.kind != Organisation.Kind.VENDOR:
        raise ValidationError({"vendor": _("Only vendors have products.")})
    _epic_check(system_type, is_epic, "is_epic")
    _name_check(vendor, name.strip())
    product = create_validated(
        Product(vendor=vendor, name=name.strip(), system_type=system_type, is_epic=is_epic)
    )
    audit_event_record(
        actor=actor,
        action="product.registered",
        target=product,
        organisation=vendor,
        after={"name": product.name, "system_type": system_type, "is_epic": is_epic},
    )
    return product


def _product_snapshot(product: Product) -> dict[str, Any]:
    return {
        "name": product.name,
        "system_type": product.system_type,
        "is_epic": product.is_epic,
        "verified_system_type": product.verified_system_type,
        "verified_is_epic": product.verified_is_epic,
        "verified": product.is_verified,
        "awaiting_verification": product.awaiting_verification,
    }


def _epic_check(system_type: str, is_epic: bool, field: str) -> None:
    if is_epic and system_type != Product.SystemType.EPJ:
        raise ValidationError({field: _("Only an EPJ can be Epic.")})


def _name_check(vendor: Organisation, name: str, *, product: Product | None = None) -> None:
    """A vendor's products have names of their own; said on the name (the unique constraint
    says it too, for a race, but about the product as a whole)."""
    others = Product.objects.filter(vendor=vendor, name=name)
    if product is not None:
        others = others.exclude(pk=product.pk)
    if others.exists():
        raise ValidationError({"name": _("This vendor already has a product with that name.")})


@transaction.atomic
def product_declare(
    *,
    product: Product,
    actor: User | None,
    name: str | None = None,
    system_type: str | None = None,
    is_epic: bool | None = None,
) -> Product:
    """The vendor changes its product. A new system type or Epic flag is only the vendor's word:
    the test environment goes by it at once (its test grants are re-evaluated); production keeps
    going by what NHN last verified, and the product awaits NHN's re-verification, which
    re-evaluates production."""
    product = Product.objects.select_for_update().get(pk=product.pk)
    before = _product_snapshot(product)
    new_type = product.system_type if system_type is None else system_type
    new_epic = product.is_epic if is_epic is None else is_epic
    _epic_check(new_type, new_epic, "is_epic")
    retyped = (new_type, new_epic) != (product.system_type, product.is_epic)
    if name is not None:
        _name_check(product.vendor, name.strip(), product=product)
        product.name = name.strip()
    product.system_type, product.is_epic = new_type, new_epic
    if retyped and product.is_verified:
        as_verified = (new_type, new_epic) == (
            product.verified_system_type,
            product.verified_is_epic,
        )
        product.reverification_requested_at = None if as_verified else timezone.now()
    product.full_clean()
    product.save(update_fields=["name", "system_type", "is_epic", "reverification_requested_at"])
    audit_event_record(
        actor=actor,
        action="product.declared",
        target=product,
        organisation=product.vendor,
        before=before,
        after=_product_snapshot(product),
    )
    if retyped:
        policy_inputs_changed(
            PolicyInputsChanged(actor=actor, products=[product], environment=Environment.TEST)
        )
    return product


@transaction.atomic
def product_verify(
    *, product: Product, system_type: str, is_epic: bool, actor: User | None
) -> Product:
    """NHN records the system type (and whether it is Epic) it has verified; production goes
    by it. Waiting items of the product's clients go on, and live grants the verified type no
    longer allows are revoked."""
    _epic_check(system_type, is_epic, "is_epic")
    product = Product.objects.select_for_update().select_related("vendor").get(pk=product.pk)
    before = _product_snapshot(product)
    product.verified_system_type = system_type
    product.verified_is_epic = is_epic
    product.verified_at = timezone.now()
    product.verified_by = actor
    product.reverification_requested_at = None
    product.full_clean()
    product.save(
        update_fields=[
            "verified_system_type",
            "verified_is_epic",
            "verified_at",
            "verified_by",
            "reverification_requested_at",
        ]
    )
    audit_event_record(
        actor=actor,
        action="product.verified",
        target=product,
        organisation=product.vendor,
        before=before,
        after=_product_snapshot(product),
    )
    policy_inputs_changed(PolicyInputsChanged(actor=actor, products=[product]))
    return product


def _role_label(role: str) -> str:
    return str(Role(role).label) if role in Role.values else role


def actor_rank(*, actor: User | None, organisation: Organisation) -> int:
    """The highest rank the actor holds over ``organisation``; NHN operators outrank everyone.

    ``None`` is the system itself (demo seeding, bootstrap), which may do anything.
    """
    if actor is None:
        return max(ROLE_RANK.values())
    roles = Membership.objects.roles_of(actor)
    held = set(roles.in_(organisation))
    if roles.has(Role.NHN_OPERATOR):
        held.add(Role.NHN_OPERATOR)
    return max((ROLE_RANK[role] for role in held), default=0)


def check_role(*, organisation: Organisation, role: str, actor: User | None) -> None:
    if role not in ROLES_BY_KIND[organisation.kind]:
        raise ValidationError(
            {
                "role": _("A %(kind)s cannot give the role %(role)s.")
                % {"kind": organisation.get_kind_display(), "role": _role_label(role)}
            }
        )
    if ROLE_RANK[role] > actor_rank(actor=actor, organisation=organisation):
        raise PermissionDenied(
            _("You cannot give the role %(role)s: it is above your own.")
            % {"role": _role_label(role)}
        )


def _admin_present(organisation: Organisation, *, without: Membership | None = None) -> bool:
    """The organisation has a logged-in, active admin, apart from ``without``.

    The one predicate of both the bootstrap rule and the last-admin rule: if the two counted
    differently (open invitations on one side only), an operator could remove the logged-in admin
    "because an invited one remains" and then bootstrap past the invitation. Open invitations do
    not count, so a mistyped first invitation can be followed by another. Nor do automation
    clients holding the role: a person administers, and operators may remove any client.
    """
    admins = Membership.objects.filter(
        organisation=organisation,
        role__in=ADMIN_ROLES,
        user__isnull=False,
        user__is_active=True,
        user__automation_client__isnull=True,
    )
    if without is not None:
        admins = admins.exclude(pk=without.pk)
    return admins.exists()


def organisation_has_admin(organisation: Organisation) -> bool:
    """The organisation has an administrator who has logged in: NHN then bootstraps no more
    (``admin_bootstrap_check``), and pages offer no bootstrap. Open invitations do not count."""
    return _admin_present(organisation)


def _admins_lock(organisation: Organisation) -> None:
    """Serialise the changes that read "is there an admin": two at once (two bootstraps, or two
    admins removing each other) would each see the other's admin and leave none, or two."""
    Organisation.objects.select_for_update().filter(pk=organisation.pk).exists()


def _outside_operator(*, actor: User | None, organisation: Organisation) -> bool:
    """``actor`` is an NHN operator who is not one of the organisation's admins."""
    if actor is None:
        return False
    roles = Membership.objects.roles_of(actor)
    return roles.has(Role.NHN_OPERATOR) and not roles.in_(organisation) & ADMIN_ROLES


def _admin_membership_check(*, membership: Membership, actor: User | None) -> None:
    """Removing or demoting an admin: never the last logged-in one, and never by an operator
    from outside while the organisation has an admin (operators bootstrap the first only).

    An open invitation or a disabled account is no admin, so it may go whenever; for an
    operator that is withdrawing a bootstrap invitation before anyone has logged in.
    """
    organisation = membership.organisation
    _admins_lock(organisation)
    if _outside_operator(actor=actor, organisation=organisation) and _admin_present(organisation):
        raise PermissionDenied(
            _("%(name)s already has an administrator, who manages its members.")
            % {"name": organisation.name}
        )
    if _admin_present(organisation) and not _admin_present(organisation, without=membership):
        raise Conflict(_("The organisation would be left without an administrator."))


def admin_bootstrap_check(*, organisation: Organisation, role: str, actor: User | None) -> bool:
    """True when ``actor`` is an NHN operator appointing the first admin of ``organisation``.

    An NHN operator who is not one of the organisation's admins does nothing else with its
    members: roles are the organisation's admins' to give (a vendor developer, for one, may rotate
    the vendor's keys). PermissionDenied for anything else, and once the organisation has an admin.
    """
    if not _outside_operator(actor=actor, organisation=organisation):
        return False
    if role not in ADMIN_ROLES:
        raise PermissionDenied(
            _(
                "NHN operators appoint only the first administrator of an organisation; its "
                "administrators manage its members."
            )
        )
    _admins_lock(organisation)
    if _admin_present(organisation):
        raise PermissionDenied(
            _("%(name)s already has an administrator, who manages its members.")
            % {"name": organisation.name}
        )
    return True


def _membership_snapshot(membership: Membership) -> dict[str, Any]:
    return {
        "email": membership.email,
        "role": membership.role,
        "bound": membership.user_id is not None,
    }


@transaction.atomic
def membership_invite(
    *, organisation: Organisation, email: str, role: str, actor: User | None = None
) -> Membership:
    """Invite a person by e-mail address; binds at once if they have logged in before.

    Raises ValidationError for a role the organisation's kind does not give or a second
    membership of the same person, and PermissionDenied for a role above the actor's own.
    """
    email = normalize_email(email)
    check_role(organisation=organisation, role=role, actor=actor)
    bootstrap = admin_bootstrap_check(organisation=organisation, role=role, actor=actor)
    membership = Membership(organisation=organisation, email=email, role=role)
    user = get_user_model().objects.filter(username=email).first()
    if user is not None:
        membership.user = user
        membership.bound_at = timezone.now()
    create_validated(membership)
    organisation_permissions_sync(organisation=organisation)
    audit_event_record(
        actor=actor,
        action="membership.bootstrapped" if bootstrap else "membership.invited",
        target=membership,
        organisation=organisation,
        after={**_membership_snapshot(membership), **({"bootstrap": True} if bootstrap else {})},
    )
    return membership


@transaction.atomic
def membership_role_change(*, membership: Membership, role: str, actor: User | None) -> Membership:
    """Change a member's role; never above the actor's own, never leaving no admin."""
    membership = (
        Membership.objects.select_for_update().select_related("organisation").get(pk=membership.pk)
    )
    organisation = membership.organisation
    check_role(organisation=organisation, role=role, actor=actor)
    if ROLE_RANK[membership.role] > actor_rank(actor=actor, organisation=organisation):
        raise PermissionDenied(_("You cannot change the role of someone ranked above you."))
    if membership.role == role:
        return membership
    bootstrap = admin_bootstrap_check(organisation=organisation, role=role, actor=actor)
    if membership.role in ADMIN_ROLES and role not in ADMIN_ROLES:
        _admin_membership_check(membership=membership, actor=actor)
    before = _membership_snapshot(membership)
    membership.role = role
    membership.save(update_fields=["role"])
    organisation_permissions_sync(organisation=organisation)
    audit_event_record(
        actor=actor,
        action="membership.bootstrapped" if bootstrap else "membership.role_changed",
        target=membership,
        organisation=organisation,
        before=before,
        after={**_membership_snapshot(membership), **({"bootstrap": True} if bootstrap else {})},
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: User | None) -> None:
    """Remove a member; the last administrator of an organisation stays."""
    membership = (
        Membership.objects.select_for_update().select_related("organisation").get(pk=membership.pk)
    )
    organisation = membership.organisation
    if ROLE_RANK[membership.role] > actor_rank(actor=actor, organisation=organisation):
        raise PermissionDenied(_("You cannot remove someone ranked above you."))
    if membership.role in ADMIN_ROLES:
        _admin_membership_check(membership=membership, actor=actor)
    audit_event_record(
        actor=actor,
        action="membership.removed",
        target=membership,
        organisation=organisation,
        before=_membership_snapshot(membership),
    )
    membership.delete()
    organisation_permissions_sync(organisation=organisation)


@transaction.atomic
def memberships_bind(*, user: User, identity: str) -> list[Membership]:
    """Bind the invitations made for ``identity`` to the person who just logged in with it."""
    pending = list(
        Membership.objects.select_for_update()
        .filter(email=normalize_email(identity), user__isnull=True)
        .select_related("organisation")
    )
    now = timezone.now()
    for membership in pending:
        before = _membership_snapshot(membership)
        membership.user = user
        membership.bound_at = now
        membership.save(update_fields=["user", "bound_at"])
        audit_event_record(
            actor=user,
            action="membership.bound",
            target=membership,
            organisation=membership.organisation,
            before=before,
            after=_membership_snapshot(membership),
        )
    for organisation in {m.organisation_id: m.organisation for m in pending}.values():
        organisation_permissions_sync(organisation=organisation)
    return pending


def person_language_set(*, user: User, language: str) -> Profile:
    """Remember the language a person reads the portal in, for what reaches them outside it
    (e-mails). A personal setting, not a change of anyone's access: no audit event.
    ValidationError for a language the portal does not speak."""
    if language not in dict(settings.LANGUAGES):
        raise ValidationError({"language": _("The portal does not speak that language.")})
    profile, _created = Profile.objects.update_or_create(user=user, defaults={"language": language})
    return profile


def person_language(user: Any) -> str:
    """The language a person chose (bokmål until they choose)."""
    language = Profile.objects.filter(user_id=user.pk).values_list("language", flat=True).first()
    return language or settings.LANGUAGE_CODE


def organisation_permissions_sync(*, organisation: Organisation) -> None:
    """Make the guardian object permissions on ``organisation`` match its memberships.

    Every bound member may view it; its admins may also change and manage it. The one function
    that writes these permissions, called after every membership change, so they never drift.
    """
    wanted: dict[int, set[str]] = {}
    bound = Membership.objects.filter(organisation=organisation, user__isnull=False)
    for user_id, role in bound.values_list("user_id", "role"):
        if user_id is not None:  # excluded by the filter; narrows the type
            perms = ADMIN_PERMISSIONS if role in ADMIN_ROLES else MEMBER_PERMISSIONS
            wanted.setdefault(user_id, set()).update(perms)

    current = cast(
        "dict[User, list[str]]",
        get_users_with_perms(
            organisation, attach_perms=True, with_superusers=False, with_group_users=False
        ),
    )
    users = {user.pk: user for user in current}
    missing = set(wanted) - set(users)
    users.update({user.pk: user for user in get_user_model().objects.filter(pk__in=missing)})
    have = {user.pk: set(perms) for user, perms in current.items()}

    for user_id, user in users.items():
        for perm in wanted.get(user_id, set()) - have.get(user_id, set()):
            assign_perm(perm, user, organisation)
        for perm in have.get(user_id, set()) - wanted.get(user_id, set()):
            remove_perm(perm, user, organisation)
    request_memo.forget()  # roles and permissions read earlier in this request are stale


class Unchanged(enum.Enum):
    """An argument left out: the value stays as it is."""

    UNCHANGED = "unchanged"


UNCHANGED = Unchanged.UNCHANGED


@transaction.atomic
def kommune_epj_set(
    *,
    kommune: Organisation,
    product: Product | None,
    switch_product: Product | None = None,
    switch_date: datetime.date | None = None,
    uses_vkp: bool | None | Unchanged = UNCHANGED,
    actor: User | None = None,
) -> Organisation:
    """Record the EPJ a kommune runs, its agreed switch (product and date) and whether it uses
    VKP today (None: not said; left out: as it was), for NHN's transition register and the
    policy's Epic rule. ValidationError unless a kommune and EPJ products. Audited as
    ``kommune.epj_recorded``; only a change of EPJ re-evaluates the kommune's access."""
    if kommune.kind != Organisation.Kind.KOMMUNE:
        raise ValidationError({"kommune": _("Only a kommune has an EPJ.")})
    for field, value in (("epj_product", product), ("switch_product", switch_product)):
        if value is not None and value.system_type != Product.SystemType.EPJ:
            raise ValidationError({field: _("%(name)s is not an EPJ.") % {"name": value.name}})
    if (switch_product is None) != (switch_date is None):
        raise ValidationError(
            {"switch_date": _("A planned EPJ switch names both the EPJ and the date.")}
        )
    kommune = Organisation.objects.select_for_update().get(pk=kommune.pk)
    before = _epj_snapshot(kommune)
    _epj_save(
        kommune,
        product=product,
        switch_product=switch_product,
        switch_date=switch_date,
        uses_vkp=kommune.uses_vkp if uses_vkp is UNCHANGED else uses_vkp,
    )
    after = _epj_snapshot(kommune)
    audit_event_record(
        actor=actor,
        action="kommune.epj_recorded",
        target=kommune,
        organisation=kommune,
        before=before,
        after=after,
    )
    # Whether VKP is used decides NHN's advice, not access: only the EPJ fields are the policy's.
    if {k: v for k, v in after.items() if k != "uses_vkp"} != {
        k: v for k, v in before.items() if k != "uses_vkp"
    }:
        policy_inputs_changed(PolicyInputsChanged(actor=actor, kommune=kommune))
    return kommune


def _epj_save(
    kommune: Organisation,
    *,
    product: Product | None,
    switch_product: Product | None,
    switch_date: datetime.date | None,
    uses_vkp: bool | None,
) -> None:
    """Set and save a (locked) kommune's EPJ, planned switch and VKP answer."""
    kommune.epj_product = product
    kommune.epj_switch_product = switch_product
    kommune.epj_switch_date = switch_date
    kommune.uses_vkp = uses_vkp
    kommune.full_clean()
    kommune.save(
        update_fields=[
            "epj_product",
            "epj_switch_product",
            "epj_switch_date",
            "uses_vkp",
            "updated_at",
        ]
    )


def _epj_snapshot(kommune: Organisation) -> dict[str, Any]:
    return {
        "epj_product": str(kommune.epj_product_id) if kommune.epj_product_id else None,
        "switch_product": (
            str(kommune.epj_switch_product_id) if kommune.epj_switch_product_id else None
        ),
        "switch_date": kommune.epj_switch_date.isoformat() if kommune.epj_switch_date else None,
        "uses_vkp": kommune.uses_vkp,
    }


EPJ_SWITCH_ACTOR = "system:epj-switch"


def kommune_epj_switches_apply(*, today: datetime.date | None = None) -> int:
    """Make each planned EPJ switch whose date has come the kommune's current EPJ (run by a
    periodic task), so the grants it no longer allows are revoked. Production already reads a
    switch from its date (``Organisation.epj_for``), but nothing re-evaluated the grants on that
    day. One transaction per kommune: one failure does not hold back the others. Returns how
    many kommuner switched."""
    day = today or timezone.localdate()
    due = Organisation.objects.filter(
        kind=Organisation.Kind.KOMMUNE, epj_switch_date__lte=day
    ).values_list("pk", flat=True)
    switched = 0
    for pk in list(due):
        with transaction.atomic():
            kommune = Organisation.objects.select_for_update().filter(pk=pk).first()
            if kommune is None or kommune.epj_switch_date is None or kommune.epj_switch_date > day:
                continue  # changed since the read above
            before = _epj_snapshot(kommune)
            _epj_save(
                kommune,
                product=kommune.epj_switch_product,
                switch_product=None,
                switch_date=None,
                uses_vkp=kommune.uses_vkp,
            )
            audit_event_record(
                actor=None,
                actor_label=EPJ_SWITCH_ACTOR,
                action="kommune.epj_switched",
                target=kommune,
                organisation=kommune,
                before=before,
                after=_epj_snapshot(kommune),
            )
            policy_inputs_changed(PolicyInputsChanged(actor=None, kommune=kommune))
            switched += 1
    return switched
