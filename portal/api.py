"""API plumbing shared by every app: error translation, scoped lookups and paginated lists."""

from __future__ import annotations

import math
from typing import Any, TypeVar

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.pagination import CursorPagination, LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.exceptions import Conflict
from portal.http import is_api_path

M = TypeVar("M", bound=Model)


class ConflictError(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = gettext_lazy("The request conflicts with the current state.")
    default_code = "conflict"


class TooManyRequests(exceptions.Throttled):
    """429 with Retry-After, its text translated: DRF's own formats the seconds into its
    message before looking it up, so that message is never translated."""

    def __init__(self, wait: float) -> None:
        seconds = math.ceil(wait)
        exceptions.APIException.__init__(
            self,
            ngettext(
                "Too many requests. Try again in %(seconds)d second.",
                "Too many requests. Try again in %(seconds)d seconds.",
                seconds,
            )
            % {"seconds": seconds},
            "throttled",
        )
        self.wait = seconds


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Answer a service's ``ValidationError`` as 400 with field errors, and ``Conflict`` as 409."""
    if isinstance(exc, DjangoValidationError):
        detail: Any = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, Conflict):
        exc = ConflictError(detail=exc.message)
    elif isinstance(exc, exceptions.Throttled) and (wait := getattr(exc, "wait", None)):
        exc = TooManyRequests(wait)
    return drf_exception_handler(exc, context)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's own 400s (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, a bad Host) as JSON."""
    if is_api_path(request.path):
        message = (
            _("The request body is too large.")
            if isinstance(exception, RequestDataTooBig)
            else _("Bad request.")
        )
        return JsonResponse({"detail": message}, status=400)
    return defaults.bad_request(request, exception)


def get_or_404(queryset: QuerySet[M], message: str, **lookup: Any) -> M:
    """The one object of ``queryset`` (already scoped to the caller) matching ``lookup``, or a 404
    that says what was not found."""
    found = queryset.filter(**lookup).first()
    if found is None:
        raise exceptions.NotFound(message)
    return found


# --- Paginated lists ----------------------------------------------------------------------------
# A rendered page is garbage the moment its response is sent, but only the cyclic collector could
# free it: DRF's list serializer, its child and the ReturnList refer to each other and keep the
# page's rows, and Django's prefetch caches tie each row to its related rows both ways. A list of
# 100 rows left up to 7,000 such objects; a full collection of a few pages' worth took 40-70 ms at
# national scale. Dropping those references once the page is serialized lets reference counting
# free the page at once.
#
# Why private attributes: neither framework offers a way to drop these references. The code below
# writes Django's ``Model._state.fields_cache`` and ``_prefetched_objects_cache`` (and reads
# ``QuerySet._result_cache``), and DRF's ``BaseSerializer._args`` and ``_data``. It is kept because
# the gain is the benchmark's, not a guess: ``make bench``'s ``api_p95_ms`` (worst list endpoint)
# went from 139 ms to 40-47 ms over seven full runs, and full collections during the API
# measurement from 24-55 ms to about 9 ms (commit c1bb312, docs/benchmarks.md "Lists free their
# page at once"). If a Django or DRF upgrade renames one of them, ``tests/portal/test_page_release``
# fails (rows left to the collector, or the list errors): re-measure before adapting this.


def _row_release(row: Model, seen: set[int]) -> None:
    """Forget what ties ``row`` to other rows: cached relations, prefetch caches (their querysets
    point back at the row) and ``Prefetch(to_attr=...)`` lists (their rows cache the row)."""
    if id(row) in seen:
        return
    seen.add(id(row))
    related: list[Any] = list(row._state.fields_cache.values())
    row._state.fields_cache = {}
    for queryset in row.__dict__.pop("_prefetched_objects_cache", {}).values():
        related.extend(queryset._result_cache or ())
    for value in vars(row).values():
        if isinstance(value, list):
            related.extend(value)
    for other in related:
        if isinstance(other, Model):
            _row_release(other, seen)


def page_release(data: Any) -> list[Any]:
    """The serialized page as a plain list; the serializers and rows behind it let go."""
    serializer = getattr(data, "serializer", None)
    rows = list(data)
    if serializer is not None:
        seen: set[int] = set()
        for row in serializer.instance or ():
            if isinstance(row, Model):
                _row_release(row, seen)
        for part in (serializer, getattr(serializer, "child", None)):
            if part is not None:
                part.instance = None
                part._args = ()
                part.__dict__.pop("_data", None)
    return rows


#: The most rows one page of any list holds, whatever ``?limit=`` asks: a page is read, serialized
#: and held in memory at once, so its size is the server's call, not the caller's.
LIST_LIMIT_MAX = 200


class Pagination(LimitOffsetPagination):
    """``?limit=&offset=`` (the default for every list); the page is released once rendered."""

    max_limit = LIST_LIMIT_MAX

    def get_paginated_response(self, data: Any) -> Response:
        return super().get_paginated_response(page_release(data))


class CursorPaginationReleased(CursorPagination):
    """A cursor for long, growing lists; the page is released once rendered."""

    max_page_size = LIST_LIMIT_MAX

    def get_paginated_response(self, data: Any) -> Response:
        response = super().get_paginated_response(page_release(data))
        self.page = []  # the links are written; the view (kept by its request) need not keep rows
        return response
