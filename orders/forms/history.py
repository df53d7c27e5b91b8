"""The question "who had access when", as the API's query string and the page's filters ask it:
one form for both, so both answer a bad question with the same words beside the same field."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from orders.history import HistoryQuery
from orders.models import Access, Service
from portal.forms import PageForm
from tenants.models import Organisation

#: A client_id at the authorization server (the local provider's are ``tilgang-<hex>``).
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:~-]{1,200}$")

#: Choices of a select: (value, label).
Choices = Sequence[tuple[str, str]]


class MomentInput(forms.DateTimeInput):
    """The browser's date and time picker; it sends local time, which the portal's time zone
    reads. The API takes any ISO 8601 time, with or without its offset."""

    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M")


def _moment_field(label: Any, help_text: Any) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label, help_text=help_text, required=False, widget=MomentInput()
    )


def _orgnr(value: str) -> str:
    return re.sub(r"\s", "", value)


class AccessHistoryForm(PageForm):
    """``kommune`` and ``vendor`` by organisation number (with or without spaces), ``client`` by
    its id or client_id, ``service`` by code, ``access``, and ``at`` or ``from``/``to``.

    A page that acts for a kommune or a vendor leaves its own field out (``fixed``), and may
    offer the choices it knows instead of a free field (``kommuner``, ``vendors``,
    ``clients``)."""

    kommune = forms.CharField(label=_("Municipality"), required=False, max_length=20)
    vendor = forms.CharField(label=_("Vendor"), required=False, max_length=20)
    client = forms.CharField(
        label=_("Client"),
        help_text=_("Its id in Tilgang or its client_id."),
        required=False,
        max_length=200,
    )
    service = forms.ChoiceField(label=_("Service"), required=False)
    access = forms.ChoiceField(
        label=_("Read or write"),
        required=False,
        choices=[("", _("Read and write")), *Access.choices],
    )
    at = _moment_field(_("At"), _("A moment. With no moment and no period: now."))

    def __init__(
        self,
        data: Any = None,
        *,
        fixed: str = "",
        kommuner: Choices | None = None,
        vendors: Choices | None = None,
        clients: Choices | None = None,
    ) -> None:
        super().__init__(data)
        catalogue = list(Service.objects.order_by("position", "code"))
        self.service_ids = {service.code: service.pk for service in catalogue}
        self.fields["service"].choices = [  # type: ignore[attr-defined]
            ("", _("All services")),
            *((service.code, service.name) for service in catalogue),
        ]
        for name, choices, everyone in (
            ("kommune", kommuner, _("All municipalities")),
            ("vendor", vendors, _("All vendors")),
            ("client", clients, _("All clients")),
        ):
            if choices is not None:
                self.fields[name].widget = forms.Select(choices=[("", everyone), *choices])
                self.fields[name].help_text = ""
        if fixed:
            del self.fields[fixed]

    def clean_kommune(self) -> uuid.UUID | None:
        return self._organisation("kommune", Organisation.Kind.KOMMUNE)

    def clean_vendor(self) -> uuid.UUID | None:
        return self._organisation("vendor", Organisation.Kind.VENDOR)

    def _organisation(self, name: str, kind: str) -> uuid.UUID | None:
        """The id of the organisation of ``kind`` with the orgnr given."""
        orgnr = _orgnr(self.cleaned_data.get(name) or "")
        if not orgnr:
            return None
        found: uuid.UUID | None = (
            Organisation.objects.filter(kind=kind, orgnr=orgnr).values_list("pk", flat=True).first()
        )
        if found is None:
            message = (
                _("No municipality has the organisation number %(orgnr)s.")
                if kind == Organisation.Kind.KOMMUNE
                else _("No vendor has the organisation number %(orgnr)s.")
            )
            raise forms.ValidationError(message, params={"orgnr": orgnr}, code="unknown")
        return found

    def clean_client(self) -> uuid.UUID | str | None:
        value = (self.cleaned_data.get("client") or "").strip()
        if not value:
            return None
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
        if not _CLIENT_ID.match(value):
            raise forms.ValidationError(
                _("Give the client's id in Tilgang or its client_id."), code="invalid"
            )
        return value

    def clean_service(self) -> uuid.UUID | None:
        code = self.cleaned_data.get("service")
        return self.service_ids[code] if code else None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        at, start, end = data.get("at"), data.get("from"), data.get("to")
        if at is not None and (start is not None or end is not None):
            self.add_error(
                "at", _("Ask about a moment or about a period (from, to), not both at once.")
            )
        if start is not None and end is not None and end <= start:
            self.add_error("to", _("The end of the period must come after its start."))
        return data

    @property
    def query(self) -> HistoryQuery:
        """The question, once the form is valid."""
        data = self.cleaned_data
        return HistoryQuery(
            kommune_id=data.get("kommune"),
            vendor_id=data.get("vendor"),
            client=data.get("client"),
            service_id=data.get("service"),
            access=data.get("access") or "",
            at=data.get("at"),
            start=data.get("from"),
            end=data.get("to"),
        )

    def errors_by_field(self) -> dict[str, list[str]]:
        """The errors as the API answers them: a list of messages per field."""
        return {
            "non_field_errors" if name == "__all__" else name: [str(m) for m in messages]
            for name, messages in self.errors.items()
        }


# "from" is a keyword in Python: the ends of the period are added by their names.
AccessHistoryForm.base_fields["from"] = _moment_field(
    _("From"), _("Or a period: anyone with access at some time from this moment")
)
AccessHistoryForm.base_fields["to"] = _moment_field(
    _("To"), _("until this moment (empty: until now)")
)
