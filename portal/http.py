"""Request helpers: the API's paths, and the logged-in user of an API request."""

from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

#: Where the API's views live; everything else is a page (or a file).
API_PREFIX = "/api/"


def is_api_path(path: str) -> bool:
    """Whether ``path`` is the API's (its views answer in JSON and name their own methods)."""
    return path.startswith(API_PREFIX)


def authenticated_user(request: Request) -> User:
    """The logged-in user of an API request, typed as one.

    Every API view requires ``IsAuthenticated`` (the default permission class), so DRF has already
    answered 401 to anyone else; this narrows ``request.user`` for the service functions, which
    take a ``User`` as their actor. It is a function rather than a ``Request`` subclass in the
    views' signatures because ``create``/``destroy`` override DRF's mixins, whose ``request``
    parameter a subclass would narrow (mypy: incompatible override).
    """
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated
    return user
