"""Pages for a vendor's admins and developers: its products.

A product's system type decides what its clients may be granted. The vendor declares it; NHN
verifies it before production goes by it. As in the API, admins register and change products
and developers read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.forms import service_errors_add
from tenants import services
from tenants.forms.vendor import ProductFilterForm, ProductForm
from tenants.models import OAuthClient, Organisation, Product, Role
from tenants.pages import Acting, listing, organisation_page, person_of

VENDOR = (Organisation.Kind.VENDOR,)
MEMBERS = (Role.VENDOR_ADMIN, Role.VENDOR_DEVELOPER)


@dataclass(frozen=True)
class Verification:
    """Where NHN's verification of a product stands, in colour and words."""

    label: str | Promise
    color: str
    detail: str


def verification(product: Product) -> Verification:
    if product.verified_at is None:
        return Verification(
            gettext_lazy("Awaiting NHN's verification"),
            "warning",
            _(
                "Its clients can be used in the test environment now. Production waits until "
                "NHN has verified the system type."
            ),
        )
    verified_as = Product.SystemType(product.verified_system_type).label
    if product.reverification_requested_at is not None:
        return Verification(
            gettext_lazy("Change awaits NHN"),
            "warning",
            _(
                "The test environment goes by your new declaration. Production goes by what NHN "
                "verified (%(type)s) until NHN has checked the change."
            )
            % {"type": verified_as},
        )
    return Verification(
        gettext_lazy("Verified by NHN"),
        "success",
        _("Verified as %(type)s%(epic)s on %(date)s.")
        % {
            "type": verified_as,
            "epic": _(", Epic") if product.verified_is_epic else "",
            "date": date_format(timezone.localtime(product.verified_at), "DATE_FORMAT"),
        },
    )


def _products(acting: Acting) -> QuerySet[Product]:
    """The acting vendor's products (every logged-in person may read products, as in the API;
    these pages show the vendor's own)."""
    return Product.objects.filter(vendor=acting.organisation)


def _crumbs(acting: Acting, *more: tuple[str, str]) -> list[tuple[str, str]]:
    return [(reverse("tenants:products", args=[acting.orgnr]), _("Products")), *more]


@organisation_page(kinds=VENDOR, roles=MEMBERS)
def products(request: HttpRequest, acting: Acting) -> HttpResponse:
    """The vendor's products, their system types and NHN's verification."""
    form = ProductFilterForm(request.GET)
    filters = form.filters()
    rows = _products(acting)
    if filters.get("system_type"):
        rows = rows.filter(system_type=filters["system_type"])
    if filters.get("status") == "verified":
        rows = rows.filter(verified_at__isnull=False, reverification_requested_at__isnull=True)
    elif filters.get("status") == "awaiting":
        rows = rows.exclude(verified_at__isnull=False, reverification_requested_at__isnull=True)
    clients = (
        OAuthClient.objects.active()
        .filter(product=OuterRef("pk"))
        .order_by()
        .values("product")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    rows = rows.annotate(
        n_clients=Coalesce(Subquery(clients, output_field=IntegerField()), Value(0))
    )
    product_list = listing(
        request,
        rows,
        sorts={
            "name": "name",
            "system_type": ("system_type", "name"),
            "created": "created_at",
        },
        default="name",
    )
    return render(
        request,
        "tenants/vendor/products.html",
        {
            "form": form,
            "listing": product_list,
            "rows": [(p, verification(p)) for p in product_list.rows],
            "filtered": any(filters.values()),
            "can_edit": acting.can(Role.VENDOR_ADMIN),
        },
    )


@organisation_page(kinds=VENDOR, roles=(Role.VENDOR_ADMIN,))
def product_new(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Register a product: its name, system type and whether it is Epic."""
    form = ProductForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            product = services.product_register(
                vendor=acting.organisation,
                name=form.cleaned_data["name"],
                system_type=form.cleaned_data["system_type"],
                is_epic=form.cleaned_data["is_epic"],
                actor=person_of(request),
            )
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(
                request,
                _(
                    "The product %(name)s is registered. You can register clients for it and "
                    "use them in the test environment now; NHN verifies the system type before "
                    "it is used in production."
                )
                % {"name": product.name},
            )
            return redirect("tenants:product", acting.orgnr, product.pk)
    return render(
        request,
        "tenants/vendor/product_new.html",
        {
            "form": form,
            "crumbs": _crumbs(
                acting,
                (reverse("tenants:product_new", args=[acting.orgnr]), _("Register a product")),
            ),
        },
    )


def _declared_message(product: Product, before: tuple[str, bool]) -> str:
    if (product.system_type, product.is_epic) == before:
        return _("The product %(name)s is updated.") % {"name": product.name}
    if product.reverification_requested_at is not None:
        return _(
            "The change is recorded and counts in the test environment now. Production goes by "
            "what NHN verified until NHN has checked the change."
        )
    if product.verified_at is not None:
        return _(
            "The change is recorded. It is what NHN verified, so it counts in test and "
            "production alike."
        )
    return _(
        "The change is recorded and counts in the test environment now. NHN verifies the "
        "system type before the product is used in production."
    )


@organisation_page(kinds=VENDOR, roles=MEMBERS)
def product_detail(request: HttpRequest, acting: Acting, product_id: Any) -> HttpResponse:
    """One product: NHN's verification, and (for admins) declaring a change."""
    product = get_object_or_404(_products(acting), pk=product_id)
    can_edit = acting.can(Role.VENDOR_ADMIN)
    if request.method == "POST" and not can_edit:
        raise PermissionDenied
    initial = {"name": product.name, "system_type": product.system_type, "is_epic": product.is_epic}
    form = ProductForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        before = (product.system_type, product.is_epic)
        try:
            product = services.product_declare(
                product=product,
                actor=person_of(request),
                name=form.cleaned_data["name"],
                system_type=form.cleaned_data["system_type"],
                is_epic=form.cleaned_data["is_epic"],
            )
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(request, _declared_message(product, before))
            return redirect("tenants:product", acting.orgnr, product.pk)
    url = reverse("tenants:product", args=[acting.orgnr, product.pk])
    return render(
        request,
        "tenants/vendor/product.html",
        {
            "product": product,
            "verification": verification(product),
            "form": form,
            "can_edit": can_edit,
            "n_clients": OAuthClient.objects.active().filter(product=product).count(),
            "crumbs": _crumbs(acting, (url, product.name)),
        },
    )


urlpatterns: list[URLPattern] = [
    path("products/", products, name="products"),
    path("products/new/", product_new, name="product_new"),
    path("products/<uuid:product_id>/", product_detail, name="product"),
]
