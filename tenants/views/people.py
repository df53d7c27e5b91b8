"""Pages for every organisation's members: people, invitations and roles.

"Who may act for us here?" Every member reads; the organisation's administrators invite, change
roles and remove, through the same service functions as the API (``tenants.services``), so the
rules (roles of this kind only, nobody above their own rank, never the last administrator) and
their wording are the same at both doors.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _

from portal.exceptions import Conflict
from portal.forms import service_errors_add
from tenants import services
from tenants.forms.people import InviteForm, PeopleFilterForm, RoleForm
from tenants.models import ADMIN_ROLES, Membership, Role
from tenants.pages import Acting, listing, organisation_page, person_of

#: The list's sortable columns.
SORTS: dict[str, str | tuple[str, ...]] = {
    "email": "email",
    "role": ("role", "email"),
    "since": "created_at",
}


def _may_manage(acting: Acting) -> bool:
    return acting.can(*ADMIN_ROLES)


def _require_manager(acting: Acting) -> None:
    if not _may_manage(acting):
        raise PermissionDenied


def _members(request: HttpRequest, acting: Acting) -> Any:
    return Membership.objects.visible_to(request.user).filter(organisation=acting.organisation)


def _role_label(role: str) -> str:
    return str(Role(role).label).lower() if role in Role.values else role


def _crumbs(acting: Acting, *more: tuple[str, str]) -> list[tuple[str, str]]:
    return [
        (reverse("orders:dashboard", args=[acting.orgnr]), acting.organisation.name),
        (reverse("tenants:people", args=[acting.orgnr]), _("People")),
        *more,
    ]


@organisation_page()
def people(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Members and open invitations, with their roles."""
    members = _members(request, acting).select_related("user")
    filters = PeopleFilterForm(request.GET, organisation=acting.organisation)
    if filters.is_valid():
        if q := filters.cleaned_data["q"].strip():
            members = members.filter(email__icontains=q)
        if role := filters.cleaned_data["role"]:
            members = members.filter(role=role)
        if filters.cleaned_data["status"] == "member":
            members = members.filter(user__isnull=False)
        elif filters.cleaned_data["status"] == "invited":
            members = members.filter(user__isnull=True)
    page = listing(request, members, sorts=SORTS, default="email")
    filtered = any(request.GET.get(name) for name in ("q", "role", "status"))
    return render(
        request,
        "tenants/people/people.html",
        {
            "listing": page,
            "filters": filters,
            "filtered": filtered,
            "may_manage": _may_manage(acting),
            "me": request.user.pk,
        },
    )


@organisation_page()
def person_invite(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Invite a person by e-mail address with a role of this kind of organisation."""
    _require_manager(acting)
    form = InviteForm(
        request.POST if request.method == "POST" else None, organisation=acting.organisation
    )
    if request.method == "POST" and form.is_valid():
        try:
            membership = services.membership_invite(
                organisation=acting.organisation,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                actor=person_of(request),
            )
        except (ValidationError, PermissionDenied, Conflict) as error:
            service_errors_add(form, error)
        else:
            names = {
                "email": membership.email,
                "role": _role_label(membership.role),
                "organisation": acting.organisation.name,
            }
            if membership.user_id is not None:
                text = _(
                    "%(email)s is now %(role)s in %(organisation)s. It applies from their next "
                    "page."
                )
            else:
                text = _(
                    "%(email)s is invited as %(role)s. The role applies when they log in with "
                    "that address; until then the list shows them as invited."
                )
            messages.success(request, text % names)
            return redirect("tenants:people", acting.orgnr)
    return render(
        request,
        "tenants/people/invite.html",
        {
            "form": form,
            "crumbs": _crumbs(
                acting,
                (reverse("tenants:person_invite", args=[acting.orgnr]), _("Invite a person")),
            ),
        },
    )


@organisation_page()
def person(request: HttpRequest, acting: Acting, pk: str) -> HttpResponse:
    """One member or invitation: the role, and (for administrators) a change of it."""
    membership = get_object_or_404(_members(request, acting).select_related("user"), pk=pk)
    form = RoleForm(
        request.POST if request.method == "POST" else None,
        organisation=acting.organisation,
        initial={"role": membership.role},
    )
    if request.method == "POST":
        _require_manager(acting)
        if form.is_valid():
            try:
                membership = services.membership_role_change(
                    membership=membership,
                    role=form.cleaned_data["role"],
                    actor=person_of(request),
                )
            except (ValidationError, PermissionDenied, Conflict) as error:
                service_errors_add(form, error)
            else:
                messages.success(
                    request,
                    _("%(email)s is now %(role)s. It applies from their next page.")
                    % {"email": membership.email, "role": _role_label(membership.role)},
                )
                return redirect("tenants:people", acting.orgnr)
    url = reverse("tenants:person", args=[acting.orgnr, membership.pk])
    return render(
        request,
        "tenants/people/person.html",
        {
            "membership": membership,
            "form": form,
            "may_manage": _may_manage(acting),
            "crumbs": _crumbs(acting, (url, membership.email)),
        },
    )


@organisation_page()
def person_remove(request: HttpRequest, acting: Acting, pk: str) -> HttpResponse:
    """Remove a member or withdraw an invitation, after asking."""
    _require_manager(acting)
    membership = get_object_or_404(_members(request, acting).select_related("user"), pk=pk)
    error = ""
    if request.method == "POST":
        try:
            services.membership_remove(
                membership=membership,
                actor=person_of(request),
            )
        except (PermissionDenied, Conflict) as refusal:
            error = refusal.message if isinstance(refusal, Conflict) else str(refusal)
        else:
            messages.success(
                request,
                _(
                    "%(email)s no longer has a role in %(organisation)s. Their access ends at "
                    "their next page."
                )
                % {"email": membership.email, "organisation": acting.organisation.name},
            )
            if membership.user_id == request.user.pk:
                return redirect("tenants:home")  # they were themselves: nothing left to see here
            return redirect("tenants:people", acting.orgnr)
    person_url = reverse("tenants:person", args=[acting.orgnr, membership.pk])
    url = reverse("tenants:person_remove", args=[acting.orgnr, membership.pk])
    return render(
        request,
        "tenants/people/remove.html",
        {
            "membership": membership,
            "error": error,
            "is_me": membership.user_id == request.user.pk,
            "crumbs": _crumbs(acting, (person_url, membership.email), (url, _("Remove"))),
        },
    )


urlpatterns: list[URLPattern] = [
    path("people/", people, name="people"),
    path("people/invite/", person_invite, name="person_invite"),
    path("people/<uuid:pk>/", person, name="person"),
    path("people/<uuid:pk>/remove/", person_remove, name="person_remove"),
]
