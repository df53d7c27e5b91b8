"""Hostile input refused at the door, in one place for every page and endpoint.

- Control characters in the path, a query parameter or a form field: PostgreSQL's text cannot
  hold NUL at all (psycopg raises DataError, a 500, wherever such a value reaches a query: a
  filter, a ``<str:orgnr>`` path converter, a ``ModelChoiceField`` keyed by orgnr), and no path,
  filter or name of ours needs the others. Tabs and line breaks stay allowed in bodies, where a
  free-text field may hold them.
- JSON bodies: the same characters in any key or string (a JSONField's contents too, which no
  serializer field looks into), and nesting deeper than any of our bodies has: Python's parser
  answers 100,000 levels of ``[[[...`` with RecursionError, which DRF's parser lets through.

Each is a 400 that names the parameter or field; nothing reaches a view, a form or the database.
A page's posted form is the exception, so that the error stands beside the field and what was typed
stays: the view gets the form with the control characters taken out of the values that held them,
and every page form bound to it (``portal.forms.PageForm``, which every form of the portal derives
from) adds the error to those fields, so it is not valid and is drawn again. A control character in
a field's name is still a 400 (no field to stand beside).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

from portal.http import is_api_path

#: Path segments and query parameters: every C0 and C1 control character and DEL.
CONTROL_IN_URL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Body fields: the same, less tab, line feed and carriage return (free text has lines).
CONTROL_IN_BODY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: The deepest nesting a JSON body may have. Our deepest body (a client with its key set:
#: body > jwks > keys > key > member) is five levels; the margin is for callers' own wrappers.
JSON_MAX_DEPTH = 32

_FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def control_message(where: str, found: str) -> str:
    """The words of every refusal: which parameter or field, and which character (as U+XXXX)."""
    return _(
        "%(where)s contains a control character (U+%(code)04X), which is not allowed; remove it."
    ) % {"where": where, "code": ord(found)}


def _first_control(
    pairs: Iterable[tuple[str, str]], pattern: re.Pattern[str]
) -> tuple[str, str] | None:
    """The first (name, character) whose name or value holds a character of ``pattern``."""
    for name, value in pairs:
        for text in (name, value):
            if match := pattern.search(text):
                return name, match.group()
    return None


def _multi_pairs(data: Any) -> Iterable[tuple[str, str]]:
    for name, values in data.lists():
        for value in values:
            yield str(name), str(value)


class ControlCharacterMiddleware:
    """A 400 for a control character in the path, a query parameter or a posted form field."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if match := CONTROL_IN_URL.search(request.path):
            return self._refuse(request, control_message(_("The address"), match.group()))
        if found := _first_control(_multi_pairs(request.GET), CONTROL_IN_URL):
            name, character = found
            where = _("The query parameter “%(name)s”") % {"name": _printable(name)}
            return self._refuse(request, control_message(where, character))
        # Django parses a form body once and keeps it; the view and DRF read the same.
        posted = request.method == "POST" and request.content_type in _FORM_MEDIA_TYPES
        if posted and (found := _first_control(_multi_pairs(request.POST), CONTROL_IN_BODY)):
            named = _first_control(((name, "") for name in request.POST), CONTROL_IN_BODY)
            if is_api_path(request.path) or named:
                name, character = named or found
                where = _("The field “%(name)s”") % {"name": _printable(name)}
                return self._refuse(request, control_message(where, character), field=name)
            request.POST = _without_control_characters(request.POST)  # type: ignore[assignment]
        return self.get_response(request)

    @staticmethod
    def _refuse(request: HttpRequest, message: str, field: str | None = None) -> HttpResponse:
        if is_api_path(request.path):
            body: dict[str, Any] = (
                {"detail": message} if field is None else {_printable(field): [message]}
            )
            return JsonResponse(body, status=400)
        return render(request, "portal/bad_input.html", {"message": message}, status=400)


#: The attribute of a cleaned ``request.POST`` that maps each field that held a control character
#: to the error beside it.
CONTROL_REFUSALS = "control_refusals"


def _without_control_characters(posted: QueryDict) -> QueryDict:
    """``posted`` with the control characters taken out of its values, and for each field that
    held one the error its form adds beside it (``control_refusals``)."""
    kept = posted.copy()
    refusals: dict[str, str] = {}
    for name, values in posted.lists():
        for value in values:
            if (match := CONTROL_IN_BODY.search(value)) and name not in refusals:
                refusals[name] = field_control_message(match.group())
        if name in refusals:
            kept.setlist(name, [CONTROL_IN_BODY.sub("", value) for value in values])
    kept._mutable = False
    setattr(kept, CONTROL_REFUSALS, refusals)
    return kept


def field_control_message(found: str) -> str:
    """The error beside a form's field that held a control character."""
    return _(
        "This held a control character (U+%(code)04X), which is not allowed; it has been taken "
        "out. Check the text and send it again."
    ) % {"code": ord(found)}


def _printable(text: str) -> str:
    """``text`` with its control characters shown as U+XXXX, so a message never carries one."""
    return CONTROL_IN_URL.sub(lambda m: f"U+{ord(m.group()):04X}", text)


class GuardedJSONParser(JSONParser):
    """DRF's JSON parser, with control characters refused as field errors and deep nesting as a
    parse error (never a RecursionError, a 500)."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError(_too_deep()) from exc
        json_check(data)
        return data


def _too_deep() -> str:
    return _("The JSON body is nested more than %(limit)d levels deep.") % {"limit": JSON_MAX_DEPTH}


def json_check(data: Any) -> None:
    """Raise a 400 for ``data`` (parsed JSON) nested too deep or holding a control character.

    Walks without recursion, so its own depth never matters; the error is keyed by the dotted
    path of the field (``name``, ``jwks.keys.0.kid``) so it lands beside the field."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > JSON_MAX_DEPTH:
            raise exceptions.ParseError(_too_deep())
        if isinstance(value, str):
            if match := CONTROL_IN_BODY.search(value):
                _refuse_field(path, match.group())
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                if match := CONTROL_IN_BODY.search(str(key)):
                    _refuse_field(child, match.group())
                stack.append((item, child, depth + 1))
        elif isinstance(value, list):
            stack.extend(
                (item, f"{path}.{index}" if path else str(index), depth + 1)
                for index, item in enumerate(value)
            )


def _refuse_field(path: str, character: str) -> None:
    name = _printable(path) or "non_field_errors"
    where = _("The field “%(name)s”") % {"name": name}
    raise exceptions.ValidationError({name: [control_message(where, character)]})
