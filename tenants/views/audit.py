"""Pages for NHN's auditors and operators: the audit trail.

Newest first, filtered by kommune, vendor, client, who did it, action and days; paged by a cursor
(the time and id of the last event shown), so a trail of millions of events costs no COUNT and
stays put while new events arrive. A page runs the same queries however many events it shows.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _

from audit.models import AuditEvent
from tenants.audit import audit_events_filter, audit_events_readable
from tenants.forms.audit import OBJECT_TYPES, AuditFilterForm, action_label
from tenants.models import Organisation, Role
from tenants.pages import Acting, organisation_page

nhn_page = organisation_page(
    kinds=(Organisation.Kind.OPERATOR,), roles=(Role.NHN_OPERATOR, Role.NHN_AUDITOR)
)

#: Events per page.
PAGE_SIZE = 50
#: Changes shown per event; the rest are counted.
CHANGES_SHOWN = 8
#: Characters of a value shown in a change.
VALUE_CHARS = 80
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


# --- The cursor ---------------------------------------------------------------------------------


def cursor_of(event: AuditEvent) -> str:
    """The position of an event in the trail: its time in microseconds and its id."""
    micros = (event.occurred_at - EPOCH) // datetime.timedelta(microseconds=1)
    return f"{micros}.{event.pk}"


def _cursor_parse(value: str) -> tuple[datetime.datetime, int] | None:
    """A cursor's time and id; None for anything else (a stale or edited link starts over)."""
    micros, _dot, pk = value.partition(".")
    if not (micros.isdigit() and pk.isdigit()) or len(micros) > 18:
        return None
    return EPOCH + datetime.timedelta(microseconds=int(micros)), int(pk)


# --- What changed -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    field: str
    before: str
    after: str


def _shown(value: Any) -> str:
    if value is None or value == [] or value == "":
        return "–"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        text = ", ".join(_shown(item) for item in value)
    elif isinstance(value, dict):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def changes(before: Any, after: Any) -> list[Change]:
    """What differs between an event's before and after, field by field: every field of a new
    object (no before), or of one removed (no after)."""
    old = before if isinstance(before, dict) else {}
    new = after if isinstance(after, dict) else {}
    if before is not None and not isinstance(before, dict):
        old = {"": before}
    if after is not None and not isinstance(after, dict):
        new = {"": after}
    fields = list(dict.fromkeys([*new, *old]))
    return [
        Change(field, _shown(old.get(field)) if before is not None else "", _shown(new.get(field)))
        for field in fields
        if old.get(field) != new.get(field) or before is None or after is None
    ]


@dataclass(frozen=True)
class Row:
    event: AuditEvent
    action: str
    object_type: str
    organisation: Organisation | None
    changes: list[Change]
    more: int


# --- The page -----------------------------------------------------------------------------------


@nhn_page
def audit(request: HttpRequest, acting: Acting) -> HttpResponse:
    """The audit trail: who changed what, when, for which organisation, and what it was before."""
    form = AuditFilterForm(request.GET or None)
    events = audit_events_readable(request.user)
    if form.is_bound:
        form.is_valid()  # the valid filters apply; the others say what is wrong
        events = audit_events_filter(events, form.cleaned_data)

    older = _cursor_parse(request.GET.get("before", ""))
    newer = None if older else _cursor_parse(request.GET.get("after", ""))
    if newer is not None:
        moment, pk = newer
        page = list(
            events.filter(Q(occurred_at__gt=moment) | Q(occurred_at=moment, pk__gt=pk)).order_by(
                "occurred_at", "pk"
            )[: PAGE_SIZE + 1]
        )
        has_newer, has_older = len(page) > PAGE_SIZE, True
        page = page[:PAGE_SIZE][::-1]
    else:
        if older is not None:
            moment, pk = older
            events = events.filter(Q(occurred_at__lt=moment) | Q(occurred_at=moment, pk__lt=pk))
        page = list(events.order_by("-occurred_at", "-pk")[: PAGE_SIZE + 1])
        has_older, has_newer = len(page) > PAGE_SIZE, older is not None
        page = page[:PAGE_SIZE]

    organisations = Organisation.objects.in_bulk(
        {event.organisation_id for event in page if event.organisation_id}
    )
    rows = []
    for event in page:
        changed = changes(event.before, event.after)
        rows.append(
            Row(
                event=event,
                action=action_label(event.action),
                object_type=str(OBJECT_TYPES.get(event.object_type, event.object_type)),
                organisation=organisations.get(event.organisation_id),
                changes=changed[:CHANGES_SHOWN],
                more=max(len(changed) - CHANGES_SHOWN, 0),
            )
        )
    return render(
        request,
        "tenants/audit/trail.html",
        {
            "form": form,
            "rows": rows,
            "filtered": any(request.GET.get(name) for name in form.fields),
            "older": cursor_of(page[-1]) if page and has_older else None,
            "newer": cursor_of(page[0]) if page and has_newer else None,
            "paged": older is not None or newer is not None,
        },
    )


urlpatterns: list[URLPattern] = [path("audit/", audit, name="audit")]
