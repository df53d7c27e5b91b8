"""API plumbing shared by every app: error translation and scoped lookups."""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.exceptions import Conflict

M = TypeVar("M", bound=Model)


class ConflictError(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Answer a service's ``ValidationError`` as 400 with field errors, and ``Conflict`` as 409."""
    if isinstance(exc, DjangoValidationError):
        detail: Any = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, Conflict):
        exc = ConflictError(detail=exc.message)
    return drf_exception_handler(exc, context)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's own 400s (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, a bad Host) as JSON."""
    if request.path.startswith("/api/"):
        message = (
            "The request body is too large."
            if isinstance(exception, RequestDataTooBig)
            else "Bad request."
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
