"""Pages take GET and POST (and HEAD, a GET without its body); the API has its own methods.

A page view reads ``request.POST`` for a POST and draws itself for anything else, so a PUT, PATCH
or DELETE would be answered as a GET. They are refused here instead, for every page and every
caller alike, before the session is read: 405 with the methods a page takes in ``Allow``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed

from portal.http import is_api_path

#: What a page answers; everything else is a 405.
PAGE_METHODS = ("GET", "HEAD", "POST")


class PageMethodsMiddleware:
    """A 405 for a method no page takes, outside the API."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in PAGE_METHODS and not is_api_path(request.path):
            return HttpResponseNotAllowed(PAGE_METHODS)
        return self.get_response(request)
