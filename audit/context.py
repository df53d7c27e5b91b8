"""The request id of the work under way, for audit events (set by middleware or by a task)."""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.http import HttpRequest, HttpResponse

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


#: Where the middleware also keeps the id on the request: Django logs a response's 4xx or 5xx
#: (``django.request``) after every middleware has returned, so after the variable is reset.
REQUEST_META_KEY = "tilgang.request_id"


def current_request_id() -> str:
    return request_id.get()


@contextmanager
def request_id_bound(rid: str) -> Iterator[None]:
    """What the block does is done for the request ``rid`` ("" for none): a job sent again by
    the sweeper is sent for the order that made it, not for the sweeper."""
    token = request_id.set(rid)
    try:
        yield
    finally:
        request_id.reset(token)


def request_id_of(request: HttpRequest) -> str:
    """The id the middleware gave ``request`` ("" before it ran)."""
    return str(request.META.get(REQUEST_META_KEY, ""))


class RequestIdMiddleware:
    """Tag each request with an id (the caller's X-Request-ID when sane) and echo it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        rid = given if 0 < len(given) <= 64 and given.isprintable() else uuid.uuid4().hex
        request.META[REQUEST_META_KEY] = rid
        token = request_id.set(rid)
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(token)
        response["X-Request-ID"] = rid
        return response
