"""Pages for NHN's operators and auditors: the organisations (registered by orgnr, kommuner from
the kommune register, each with its first administrator) and the verification of products.
Auditors read every page; only operators change anything (403 for auditors)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _

from portal.forms import service_errors_add
from tenants.forms.nhn import (
    AdminBootstrapForm,
    OrganisationFilterForm,
    OrganisationRegisterForm,
    ProductFilterForm,
    ProductVerifyForm,
)
from tenants.models import (
    ADMIN_ROLES,
    ROLES_BY_KIND,
    Kommune,
    Membership,
    OAuthClient,
    Organisation,
    Product,
    Role,
)
from tenants.pages import Acting, listing, organisation_page, person_of
from tenants.services import (
    membership_invite,
    organisation_has_admin,
    organisation_register,
    product_verify,
)
from tenants.templatetags.tilgang import orgnr as orgnr_grouped

OPERATOR = (Organisation.Kind.OPERATOR,)
NHN_STAFF = (Role.NHN_OPERATOR, Role.NHN_AUDITOR)


def _admin_role(kind: str) -> str:
    """The role that administers an organisation of ``kind``."""
    return next(role for role in ROLES_BY_KIND[kind] if role in ADMIN_ROLES)


def _write_check(request: HttpRequest, acting: Acting) -> None:
    """Auditors read NHN's pages; a change needs an operator."""
    if request.method == "POST" and not acting.can(Role.NHN_OPERATOR):
        raise PermissionDenied


def _crumbs(acting: Acting, *tail: tuple[str, str]) -> list[tuple[str, str]]:
    return [(reverse("orders:dashboard", args=[acting.orgnr]), _("Overview")), *tail]


# --- Organisations ------------------------------------------------------------------------------


@organisation_page(kinds=OPERATOR, roles=NHN_STAFF)
def organisations(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Every organisation: kommuner, vendors and NHN, found by name or orgnr."""
    form = OrganisationFilterForm(request.GET)
    rows = Organisation.objects.visible_to(request.user).select_related("kommune")
    if kind := form.value("kind"):
        rows = rows.filter(kind=kind)
    if search := form.value("q").strip():
        rows = rows.filter(
            Q(name__icontains=search) | Q(orgnr="".join(search.split())) | Q(kommune__number=search)
        )
    page = listing(
        request,
        rows,
        sorts={"name": "name", "orgnr": "orgnr", "kind": ("kind", "name"), "created": "created_at"},
        default="name",
    )
    context = {
        "form": form,
        "listing": page,
        "filtered": bool(form.value("kind") or search),
        "can_edit": acting.can(Role.NHN_OPERATOR),
        "crumbs": _crumbs(acting, (request.path, _("Organisations"))),
    }
    return render(request, "tenants/nhn/organisations.html", context)


@organisation_page(kinds=OPERATOR, roles=(Role.NHN_OPERATOR,))
def organisation_new(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Register an organisation by orgnr (a kommune from the kommune register) and invite its
    first administrator, in one transaction: a refusal of either leaves nothing behind."""
    form = OrganisationRegisterForm(request.POST if request.method == "POST" else None)
    actor = person_of(request)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        email = data["admin_email"]
        try:
            with transaction.atomic():
                organisation = organisation_register(
                    orgnr=data["orgnr"],
                    name=data["name"],
                    kind=data["kind"],
                    kommune_number=data["kommune"] or None,
                    actor=actor,
                )
                if email:
                    try:
                        membership_invite(
                            organisation=organisation,
                            email=email,
                            role=_admin_role(organisation.kind),
                            actor=actor,
                        )
                    except ValidationError as error:
                        raise ValidationError({"admin_email": error.messages}) from error
                    except PermissionDenied as error:
                        raise ValidationError({"admin_email": str(error)}) from error
        except ValidationError as error:
            service_errors_add(form, error)
        else:
            names = {"name": organisation.name, "orgnr": orgnr_grouped(organisation.orgnr)}
            if email:
                message = _(
                    "%(name)s (%(orgnr)s) is registered. %(email)s becomes its administrator at "
                    "their first login with that address, and then invites the others."
                ) % {**names, "email": email}
            else:
                message = (
                    _("%(name)s (%(orgnr)s) is registered. Next, appoint its first administrator.")
                    % names
                )
            messages.success(request, message)
            return redirect("tenants:organisation", acting.orgnr, organisation.orgnr)
    context = {
        "form": form,
        # The register's kommuner not yet registered, offered as the kommune number is typed.
        "register": Kommune.objects.filter(organisation__isnull=True).order_by("number"),
        "crumbs": _crumbs(
            acting,
            (reverse("tenants:organisations", args=[acting.orgnr]), _("Organisations")),
            (request.path, _("Register an organisation")),
        ),
    }
    return render(request, "tenants/nhn/organisation_new.html", context)


@organisation_page(kinds=OPERATOR, roles=NHN_STAFF)
def organisation(request: HttpRequest, acting: Acting, target: str) -> HttpResponse:
    """One organisation: its register entry, people, products and clients; an operator appoints
    its first administrator here while it has none."""
    _write_check(request, acting)
    found = get_object_or_404(
        Organisation.objects.visible_to(request.user).select_related(
            "kommune", "epj_product", "epj_switch_product"
        ),
        orgnr=target,
    )
    members = Membership.objects.visible_to(request.user).filter(organisation=found)
    people = members.aggregate(
        active=Count("pk", filter=Q(user__isnull=False)),
        invited=Count("pk", filter=Q(user__isnull=True)),
    )
    has_admin = organisation_has_admin(found)
    form = AdminBootstrapForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        try:
            membership_invite(
                organisation=found,
                email=email,
                role=_admin_role(found.kind),
                actor=person_of(request),
            )
        except ValidationError as error:
            service_errors_add(form, error, fields={"__all__": "email", "role": "email"})
        except PermissionDenied as error:  # it has an administrator now: say so beside the field
            form.add_error("email", str(error))
        else:
            messages.success(
                request,
                _(
                    "%(email)s is invited as administrator of %(name)s: they become it at their "
                    "first login with that address."
                )
                % {"email": email, "name": found.name},
            )
            return redirect("tenants:organisation", acting.orgnr, found.orgnr)
    context = {
        "organisation": found,
        "people": people,
        "admins": members.filter(role__in=ADMIN_ROLES).select_related("user").order_by("email"),
        "has_admin": has_admin,
        "form": form,
        "can_edit": acting.can(Role.NHN_OPERATOR),
        "products": Product.objects.filter(vendor=found).order_by("name"),
        "clients": OAuthClient.objects.visible_to(request.user)
        .filter(vendor=found)
        .active()
        .count(),
        "crumbs": _crumbs(
            acting,
            (reverse("tenants:organisations", args=[acting.orgnr]), _("Organisations")),
            (request.path, found.name),
        ),
    }
    return render(request, "tenants/nhn/organisation.html", context)


# --- Product verification -----------------------------------------------------------------------

AWAITING = Q(verified_at__isnull=True) | Q(reverification_requested_at__isnull=False)


@organisation_page(kinds=OPERATOR, roles=NHN_STAFF)
def product_verification(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Products awaiting NHN's verification (new, or declared anew since), and those verified."""
    form = ProductFilterForm(request.GET)
    state = form.value("state", ProductFilterForm.AWAITING)
    rows = Product.objects.filter(
        vendor__in=Organisation.objects.visible_to(request.user)
    ).select_related("vendor", "verified_by")
    if state == ProductFilterForm.AWAITING:
        rows = rows.filter(AWAITING)
    elif state == ProductFilterForm.VERIFIED:
        rows = rows.exclude(AWAITING)
    if search := form.value("q").strip():
        rows = rows.filter(Q(name__icontains=search) | Q(vendor__name__icontains=search))
    page = listing(
        request,
        rows,
        sorts={
            "product": "name",
            "vendor": ("vendor__name", "name"),
            "declared": ("system_type", "name"),
            "created": "created_at",
        },
        default="created",
    )
    context = {
        "form": form,
        "state": state,
        "listing": page,
        "can_edit": acting.can(Role.NHN_OPERATOR),
        "crumbs": _crumbs(acting, (request.path, _("Product verification"))),
    }
    return render(request, "tenants/nhn/product_verification.html", context)


@organisation_page(kinds=OPERATOR, roles=NHN_STAFF)
def product_verify_page(request: HttpRequest, acting: Acting, product_id: str) -> HttpResponse:
    """What the vendor declared beside what NHN verified, and the operator's verification."""
    _write_check(request, acting)
    product = get_object_or_404(
        Product.objects.filter(
            vendor__in=Organisation.objects.visible_to(request.user)
        ).select_related("vendor", "verified_by"),
        pk=product_id,
    )
    form = ProductVerifyForm(
        request.POST if request.method == "POST" else None,
        initial={"system_type": product.system_type, "is_epic": product.is_epic},
    )
    if request.method == "POST" and form.is_valid():
        try:
            product = product_verify(
                product=product,
                system_type=form.cleaned_data["system_type"],
                is_epic=form.cleaned_data["is_epic"],
                actor=person_of(request),
            )
        except ValidationError as error:
            service_errors_add(form, error)
        else:
            verified = Product.SystemType(product.verified_system_type).label
            messages.success(
                request,
                (
                    _(
                        "%(product)s is verified as %(type)s, Epic. Production goes by this now: "
                        "orders that waited for it go on, and access it does not allow is closed."
                    )
                    if product.verified_is_epic
                    else _(
                        "%(product)s is verified as %(type)s. Production goes by this now: "
                        "orders that waited for it go on, and access it does not allow is closed."
                    )
                )
                % {"product": product.name, "type": verified},
            )
            return redirect("tenants:product_verification", acting.orgnr)
    context = {
        "product": product,
        "form": form,
        "can_edit": acting.can(Role.NHN_OPERATOR),
        "crumbs": _crumbs(
            acting,
            (
                reverse("tenants:product_verification", args=[acting.orgnr]),
                _("Product verification"),
            ),
            (request.path, product.name),
        ),
    }
    return render(request, "tenants/nhn/product_verify.html", context)


urlpatterns: list[URLPattern] = [
    path("organisations/", organisations, name="organisations"),
    path("organisations/new/", organisation_new, name="organisation_new"),
    path("organisations/<str:target>/", organisation, name="organisation"),
    path("product-verification/", product_verification, name="product_verification"),
    path("product-verification/<uuid:product_id>/", product_verify_page, name="product_verify"),
]
