"""Writes of the tenants app. Each function is the one path for its change."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from guardian.shortcuts import assign_perm, get_users_with_perms, remove_perm

from portal.db import create_validated
from tenants.models import (
    ADMIN_ROLES,
    ROLES_BY_KIND,
    Kommune,
    Membership,
    Organisation,
    Product,
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
    *, orgnr: str, name: str, kind: str, kommune_number: str | None = None
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

    organisation = Organisation(orgnr=orgnr, name=name.strip(), kind=kind, kommune=kommune)
    return create_validated(organisation)


@transaction.atomic
def product_register(
    *, vendor: Organisation, name: str, system_type: str, is_epic: bool = False
) -> Product:
    """Register a vendor's product; raises ValidationError for a non-vendor or a duplicate name."""
    if vendor.kind != Organisation.Kind.VENDOR:
        raise ValidationError({"vendor": _("Only vendors have products.")})
    product = Product(vendor=vendor, name=name.strip(), system_type=system_type, is_epic=is_epic)
    return create_validated(product)


@transaction.atomic
def membership_invite(*, organisation: Organisation, email: str, role: str) -> Membership:
    """Invite a person by e-mail address; binds at once if they have logged in before.

    Raises ValidationError for a role the organisation's kind does not give, or a second
    membership of the same person in the same organisation.
    """
    email = normalize_email(email)
    if role not in ROLES_BY_KIND[organisation.kind]:
        raise ValidationError(
            {
                "role": _("A %(kind)s cannot give the role %(role)s.")
                % {
                    "kind": organisation.get_kind_display(),
                    "role": Role(role).label if role in Role.values else role,
                }
            }
        )
    membership = Membership(organisation=organisation, email=email, role=role)
    user = get_user_model().objects.filter(username=email).first()
    if user is not None:
        membership.user = user
        membership.bound_at = timezone.now()
    create_validated(membership)
    organisation_permissions_sync(organisation=organisation)
    return membership


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
        membership.user = user
        membership.bound_at = now
        membership.save(update_fields=["user", "bound_at"])
    for organisation in {m.organisation_id: m.organisation for m in pending}.values():
        organisation_permissions_sync(organisation=organisation)
    return pending


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


@transaction.atomic
def kommune_epj_set(*, kommune: Organisation, product: Product) -> Organisation:
    """Record the EPJ a kommune runs today; ValidationError unless a kommune and an EPJ."""
    if kommune.kind != Organisation.Kind.KOMMUNE:
        raise ValidationError({"kommune": _("Only a kommune has an EPJ.")})
    if product.system_type != Product.SystemType.EPJ:
        raise ValidationError(
            {"epj_product": _("%(name)s is not an EPJ.") % {"name": product.name}}
        )
    kommune = Organisation.objects.select_for_update().get(pk=kommune.pk)
    kommune.epj_product = product
    kommune.save(update_fields=["epj_product", "updated_at"])
    return kommune
