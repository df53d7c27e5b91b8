"""DRF permissions from memberships. Roles come from memberships only, never from ``is_staff``."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from tenants.models import Membership, Role


class IsNhnOperator(BasePermission):
    """The caller operates NHN's side of the portal."""

    message = "Only NHN operators may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return Membership.objects.of_user(request.user).filter(role=Role.NHN_OPERATOR).exists()
