"""The menu of the organisation a page acts for, by its kind, with what waits for the person.

A context processor (settings.TEMPLATES): every page gets ``acting`` (set by
``tenants.pages.organisation_page``), ``nav_items`` and ``my_organisations`` for the switcher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise, SimpleLazyObject
from django.utils.translation import gettext_lazy as _

from notifications.models import Notification
from orders.models import AccessRequestItem, ItemStatus
from tenants.models import Membership, Organisation
from tenants.pages import Acting

KOMMUNE, VENDOR, OPERATOR = (
    Organisation.Kind.KOMMUNE,
    Organisation.Kind.VENDOR,
    Organisation.Kind.OPERATOR,
)

#: (label, URL name taking the orgnr, badge) per organisation kind, in menu order.
MENU: dict[str, list[tuple[Promise, str, str]]] = {
    KOMMUNE: [
        (_("Overview"), "orders:dashboard", ""),
        (_("Instruction"), "orders:instruction", ""),
        (_("Delegations"), "orders:delegations", ""),
        (_("Approvals"), "orders:approvals", "awaiting_kommune"),
        (_("Access"), "orders:access", ""),
        (_("Access history"), "orders:access_history", ""),
        (_("Recertification"), "recertification:page", ""),
        (_("Data access"), "provisioning:data_access", ""),
        (_("People"), "tenants:people", ""),
        (_("EHR switch"), "tenants:epj", ""),
    ],
    VENDOR: [
        (_("Overview"), "orders:dashboard", ""),
        (_("Products"), "tenants:products", ""),
        (_("Clients"), "orders:clients", ""),
        (_("New order"), "orders:order_new", ""),
        (_("Orders"), "orders:orders", "awaiting_vendor"),
        (_("Access history"), "orders:access_history", ""),
        (_("Data access"), "provisioning:data_access", ""),
        (_("People"), "tenants:people", ""),
    ],
    OPERATOR: [
        (_("Overview"), "orders:dashboard", ""),
        (_("Access matrix"), "orders:matrix", ""),
        (_("National overview"), "provisioning:national", ""),
        (_("EHR switches"), "orders:epj_register", ""),
        (_("Organisations"), "tenants:organisations", ""),
        (_("Product verification"), "tenants:product_verification", ""),
        (_("Catalogue"), "orders:availability", ""),
        (_("Provisioning jobs"), "provisioning:jobs", ""),
        (_("Vendors"), "orders:vendors", ""),
        (_("Access history"), "orders:access_history", ""),
        (_("Audit trail"), "tenants:audit", ""),
        (_("Data access"), "provisioning:data_access", ""),
        (_("People"), "tenants:people", ""),
    ],
}


@dataclass(frozen=True)
class NavItem:
    label: Promise
    url: str
    current: bool
    badge: int


def _waiting(organisation: Organisation, badge: str) -> int:
    """Items that wait for this organisation to decide."""
    if badge == "awaiting_kommune":
        items = AccessRequestItem.objects.filter(
            status=ItemStatus.AWAITING_KOMMUNE, request__kommune=organisation
        )
    else:
        items = AccessRequestItem.objects.filter(
            status=ItemStatus.AWAITING_VENDOR, request__client__vendor=organisation
        )
    return items.count()


def menu(request: HttpRequest, acting: Acting) -> list[NavItem]:
    items = []
    dashboard = reverse("orders:dashboard", args=[acting.orgnr])
    for label, name, badge in MENU.get(acting.organisation.kind, []):
        try:
            url = reverse(name, args=[acting.orgnr])
        except NoReverseMatch:
            continue  # a page not built yet; tests/pages/test_navigation.py lists them all
        current = request.path == url if url == dashboard else request.path.startswith(url)
        count = _waiting(acting.organisation, badge) if badge else 0
        items.append(NavItem(label=label, url=url, current=current, badge=count))
    return items


def _unread(request: HttpRequest) -> int:
    """The person's unread notifications, for the header (one indexed count, when shown)."""
    return Notification.objects.visible_to(request.user).unread().count()


def navigation(request: HttpRequest) -> dict[str, Any]:
    # Lazy: counted only when a template shows it (the header, for a logged-in person).
    unread = SimpleLazyObject(lambda: _unread(request))
    acting: Acting | None = getattr(request, "acting", None)
    if acting is None or not request.user.is_authenticated:
        return {
            "acting": None,
            "nav_items": [],
            "my_organisations": [],
            "notifications_unread": unread,
        }
    memberships = (
        Membership.objects.of_user(request.user)
        .select_related("organisation")
        .order_by("organisation__name", "role")
    )
    return {
        "acting": acting,
        "nav_items": menu(request, acting),
        "my_organisations": memberships,
        "notifications_unread": unread,
    }
