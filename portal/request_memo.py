"""Values read once per request and never carried over to the next one (a person's roles).

Outside a request (tasks, commands, the shell) nothing is kept: every call computes afresh.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse

T = TypeVar("T")

_memo: contextvars.ContextVar[dict[Hashable, Any] | None] = contextvars.ContextVar(
    "request_memo", default=None
)


def memoised(key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()`` once per request for ``key``."""
    memo = _memo.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    value: T = memo[key]
    return value


def forget() -> None:
    """Drop what this request has read (after a write that changes it)."""
    memo = _memo.get()
    if memo is not None:
        memo.clear()


class RequestMemoMiddleware:
    """Give each request an empty memo."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _memo.set({})
        try:
            return self.get_response(request)
        finally:
            _memo.reset(token)
