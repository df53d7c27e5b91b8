"""What every page of an organisation shares: who it acts for, and how its lists page and sort.

Pages live under ``/o/<orgnr>/``: the organisation a page acts for is in its address, so a link
says whose data it shows and a person with roles in several organisations switches by following one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponseBase

from tenants.models import ROLE_RANK, Membership, Organisation, Role

P = ParamSpec("P")
M = TypeVar("M", bound=Model)

#: Rows per page of a list.
PAGE_SIZE = 25


@dataclass(frozen=True)
class Acting:
    """The organisation a page acts for and the person's roles in it."""

    organisation: Organisation
    roles: frozenset[str]

    def can(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))

    @property
    def orgnr(self) -> str:
        return self.organisation.orgnr

    @property
    def role_labels(self) -> list[str]:
        return [str(Role(role).label) for role in sorted(self.roles, key=ROLE_RANK.__getitem__)]


def person_of(request: HttpRequest) -> User:
    """The person acting on an organisation page, as the services take them
    (``organisation_page`` sent anyone not logged in to log in, so this is never anonymous)."""
    if not isinstance(request.user, User):
        raise PermissionDenied
    return request.user


# Base responses: a page may stream (a CSV download of its rows).
View = Callable[Concatenate[HttpRequest, Acting, P], HttpResponseBase]
OrgView = Callable[Concatenate[HttpRequest, str, P], HttpResponseBase]


def organisation_page(
    *, kinds: Iterable[str] = (), roles: Iterable[str] = ()
) -> Callable[[View[P]], OrgView[P]]:
    """A page of the organisation named by ``orgnr`` in the URL, for its members.

    Logged-out people are sent to log in. An organisation the person is not a member of, or a page
    its kind does not have, is 404 (nothing is learnt about it); a member without one of ``roles``
    gets 403. The view is called with the ``Acting`` in place of the orgnr.
    """
    kinds, roles = frozenset(kinds), frozenset(roles)

    def decorator(view: View[P]) -> OrgView[P]:
        @functools.wraps(view)
        def page(
            request: HttpRequest, orgnr: str, *args: P.args, **kwargs: P.kwargs
        ) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            held_by = Membership.objects.roles_of(request.user)
            organisation = (
                Organisation.objects.filter(orgnr=orgnr, pk__in=held_by.organisation_ids)
                .select_related("kommune")
                .first()
            )
            if organisation is None or (kinds and organisation.kind not in kinds):
                raise Http404
            acting = Acting(organisation=organisation, roles=held_by.in_(organisation))
            if roles and not acting.can(*roles):
                raise PermissionDenied
            request.acting = acting  # type: ignore[attr-defined] # read by portal.navigation
            return view(request, acting, *args, **kwargs)

        return page  # type: ignore[return-value] # wraps() keeps the view's annotations

    return decorator


@dataclass(frozen=True)
class Listing:
    """One page of a sorted list, and the sort it was read in (for the column headers)."""

    page_obj: Page[Any]
    sort: str

    @property
    def rows(self) -> list[Any]:
        return list(self.page_obj.object_list)


def listing(
    request: HttpRequest,
    queryset: QuerySet[M],
    *,
    sorts: Mapping[str, str | tuple[str, ...]],
    default: str,
    per_page: int = PAGE_SIZE,
) -> Listing:
    """Sort ``queryset`` by the request's ``sort`` (a key of ``sorts``, ``-`` for descending) and
    take the requested page. Unknown sorts fall back to ``default``; a page past the end is the
    last page, so a stale link never errors."""
    sort = request.GET.get("sort", default)
    key = sort.removeprefix("-")
    if key not in sorts:
        sort, key = default, default.removeprefix("-")
    fields = sorts[key]
    fields = (fields,) if isinstance(fields, str) else fields
    descending = sort.startswith("-")
    ordering = [f"-{f}" if descending else f for f in fields]
    paginator = Paginator(queryset.order_by(*ordering, "pk"), per_page)
    return Listing(page_obj=paginator.get_page(request.GET.get("page")), sort=sort)
