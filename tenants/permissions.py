"""Who may change what. Roles come from memberships only, never from ``is_staff``.

Visibility is the querysets' job (``visible_to``): outsiders never reach these checks and get 404.
These answer the next question, for members: may this person do this here (403 otherwise)?
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from guardian.core import ObjectPermissionChecker
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from portal.request_memo import memoised
from tenants.models import ADMIN_ROLES, Membership, Organisation, Role

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def roles_in(user: User | AnonymousUser, organisation: Organisation) -> frozenset[str]:
    return Membership.objects.roles_of(user).in_(organisation)


def is_nhn_operator(user: User | AnonymousUser) -> bool:
    return Membership.objects.roles_of(user).has(Role.NHN_OPERATOR)


def is_admin_of(user: User | AnonymousUser, organisation: Organisation) -> bool:
    """The organisation's admins hold its guardian object permission ``manage_organisation``
    (read once per request and organisation; only users hold these permissions, not groups)."""
    if not (user.is_authenticated and user.is_active):
        return False
    return "manage_organisation" in memoised(
        ("perms", user.pk, organisation.pk),
        lambda: set(ObjectPermissionChecker(user).get_user_perms(organisation)),
    )


def require_admin(user: User | AnonymousUser, organisation: Organisation) -> None:
    if not is_admin_of(user, organisation):
        raise PermissionDenied(
            _("Only an administrator of %(name)s may do this.") % {"name": organisation.name}
        )


def require_role(user: User | AnonymousUser, organisation: Organisation, *roles: str) -> None:
    if not roles_in(user, organisation) & set(roles):
        raise PermissionDenied(
            _("This needs the role %(roles)s in %(name)s.")
            % {
                "roles": _(" or ").join(str(Role(r).label) for r in roles),
                "name": organisation.name,
            }
        )


class IsNhnOperator(BasePermission):
    """The caller operates NHN's side of the portal."""

    message = gettext_lazy("Only NHN operators may do this.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_nhn_operator(request.user)


class IsNhnStaff(BasePermission):
    """The caller is an NHN operator or auditor."""

    message = gettext_lazy("Only NHN staff may see this.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return Membership.objects.is_nhn_staff(request.user)


def audit_readable_organisations(user: User | AnonymousUser) -> list[Any] | None:
    """Whose audit events ``user`` may read: None (all) for NHN staff, otherwise the ids of the
    organisations they administer."""
    roles = Membership.objects.roles_of(user)
    if roles.nhn_staff:
        return None
    return [
        organisation_id
        for organisation_id, held in roles.by_organisation.items()
        if held & ADMIN_ROLES
    ]
