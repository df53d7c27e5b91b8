"""Every URL of the portal, from the URL configuration, with its arguments filled in: the hostile
input tests go over all of them, so a new page or endpoint is covered without a hand list."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

#: ``<type:name>`` (path()) and ``(?P<name>...)`` (DRF's router) in a route.
_ARGUMENT = re.compile(r"<(?:(?P<type>\w+):)?(?P<name>\w+)>|\(\?P<(?P<group>\w+)>[^)]*\)")


@dataclass(frozen=True)
class Route:
    name: str  # namespace:name
    route: str  # the route with its arguments as <name>
    arguments: tuple[str, ...]
    callback: Callable[..., Any]

    @property
    def is_api(self) -> bool:
        return self.route.startswith("api/")

    def url(self, values: dict[str, str]) -> str:
        return "/" + re.sub(r"<(\w+)>", lambda m: values[m.group(1)], self.route)

    def accepts_post(self) -> bool:
        """Whether the view behind the route takes a POST (a DRF action, a view with ``post`` or
        a function view that is not marked GET-only)."""
        view = self.callback
        actions = getattr(view, "actions", None)  # DRF viewset routes: method -> action
        if actions is not None:
            return "post" in actions
        view_class = getattr(view, "view_class", None) or getattr(view, "cls", None)
        if view_class is not None:
            return hasattr(view_class, "post")
        allowed = _allowed_methods(view)
        return allowed is None or "POST" in allowed


def _allowed_methods(view: Callable[..., Any]) -> set[str] | None:
    """The methods of ``require_http_methods`` (Django keeps them in the closure), or None."""
    for cell in getattr(view, "__closure__", None) or ():
        contents = cell.cell_contents
        if (
            isinstance(contents, (list, tuple, set))
            and contents
            and all(isinstance(m, str) and m.isupper() for m in contents)
        ):
            return set(contents)
        if callable(contents) and contents is not view:
            inner = _allowed_methods(contents)
            if inner is not None:
                return inner
    return None


def every_route() -> Iterator[Route]:
    """Each named URL once (DRF's ``.json`` suffix variants and the API root left out)."""

    def walk(patterns: list[Any], prefix: str, namespace: str | None) -> Iterator[Route]:
        for pattern in patterns:
            text = prefix + str(pattern.pattern).lstrip("^").rstrip("$")
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, text, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern):
                if "format" in text or pattern.name in (None, "api-root"):
                    continue
                names: list[str] = []

                def placeholder(match: re.Match[str], names: list[str] = names) -> str:
                    name = match.group("name") or match.group("group")
                    names.append(name)
                    return f"<{name}>"

                route = _ARGUMENT.sub(placeholder, text)
                full = f"{namespace}:{pattern.name}" if namespace else pattern.name
                yield Route(full, route, tuple(names), pattern.callback)

    seen: set[str] = set()
    for route in walk(get_resolver().url_patterns, "", None):
        if route.route not in seen:
            seen.add(route.route)
            yield route


def argument_values(world: Any, organisation: Any) -> dict[str, str]:
    """A real object of ``world`` (tests.conftest.World) for each kind of path argument, in
    ``organisation``'s address, so a view gets as far as it can."""
    return {
        "orgnr": organisation.orgnr,
        "vendor_orgnr": world.vendor.orgnr,
        "target": world.vendor.orgnr,
        "pk": str(world.client.pk),
        "client_id": str(world.client.pk),
        "key_id": str(world.client.keys.get().pk),
        "product_id": str(world.product.pk),
        "job_id": str(world.client.pk),
        "code": "patient",
        "environment": "production",
        "version": "1",
        "slug": "services",
    }
