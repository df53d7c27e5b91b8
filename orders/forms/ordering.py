"""Forms of a vendor's orders: what to order for which kommuner, and acting on an order's items."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.core import signing
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from orders import services
from orders.api.serializers import SERVICE_CODES
from orders.models import Access, AccessRequestItem, Service
from portal.forms import PageForm
from tenants.models import OAuthClient, Organisation

#: How long a checked order may wait before it is sent (the send decides again all the same).
SIGNED_MAX_AGE = 60 * 60 * 6
SIGNING_SALT = "orders.ordering.order"


def item_label(service: Service, access: str) -> str:
    """An item's name, read aloud on its own: "Pasient: lese" / "Patient: read"."""
    return f"{service.name}: {str(Access(access).label).lower()}"


if TYPE_CHECKING:  # django-stubs' generics, which Django's classes do not take at runtime
    _ClientField = forms.ModelChoiceField[OAuthClient]
    _KommunerField = forms.ModelMultipleChoiceField[Organisation]
else:
    _ClientField = forms.ModelChoiceField
    _KommunerField = forms.ModelMultipleChoiceField


class ClientChoiceField(_ClientField):
    def label_from_instance(self, obj: OAuthClient) -> str:
        return f"{obj.name} ({obj.get_environment_display().lower()})"


class KommuneChoiceField(_KommunerField):
    def label_from_instance(self, obj: Organisation) -> str:
        number = obj.kommune.number if obj.kommune is not None else ""
        return f"{obj.name} ({number})" if number else obj.name


class OrderForm(PageForm):
    """A vendor's order: a client, services with read or write, service codes, and kommuner
    (chosen, or every kommune that has delegated all of it to the vendor)."""

    CHOSEN, DELEGATED = "chosen", "delegated"

    client = ClientChoiceField(
        label=_("Client"),
        queryset=OAuthClient.objects.none(),
        empty_label=_("Choose a client"),
        help_text=_("The connection of your system that will call the services."),
        error_messages={
            "required": _("Choose the client to order for."),
            "invalid_choice": _("Choose one of your own clients."),
        },
    )
    items = forms.MultipleChoiceField(
        label=_("Services and access"),
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "Read lets your system fetch data; write lets it send data to the municipality."
        ),
        error_messages={
            "required": _("Choose at least one service and access."),
            "invalid_choice": _("%(value)s is not a service and access in the catalogue."),
        },
    )
    service_codes = forms.MultipleChoiceField(
        label=_("Service codes (need-to-know)"),
        choices=[(code, code) for code in SERVICE_CODES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_(
            "The service codes your system sends with its calls. Each municipality allows its "
            "own; an access holds those the municipality allowed."
        ),
        error_messages={"invalid_choice": _("%(value)s is not a service code.")},
    )
    which = forms.ChoiceField(
        label=_("Which municipalities?"),
        choices=[
            (CHOSEN, _("The municipalities I choose below")),
            (DELEGATED, _("Every municipality that has delegated these to us")),
        ],
        initial=CHOSEN,
        widget=forms.RadioSelect,
    )
    search = forms.CharField(
        label=_("Find a municipality"),
        required=False,
        max_length=100,
        help_text=_(
            "Name or municipality number. Municipalities you have ticked stay in the list."
        ),
    )
    kommuner = KommuneChoiceField(
        label=_("Municipalities"),
        queryset=Organisation.objects.none(),
        to_field_name="orgnr",
        widget=forms.CheckboxSelectMultiple,
        required=False,
        error_messages={"invalid_choice": _("%(value)s is not a municipality.")},
    )

    def __init__(self, *args: Any, vendor: Organisation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.vendor = vendor
        self.fields["client"].queryset = (  # type: ignore[attr-defined]
            OAuthClient.objects.active()
            .filter(vendor=vendor, purpose=OAuthClient.Purpose.FHIR)
            .order_by("name", "created_at")
        )
        self.services = {s.code: s for s in Service.objects.with_availability()}
        self.fields["items"].choices = [  # type: ignore[attr-defined]
            (f"{service.code}.{access}", item_label(service, access))
            for service in self.services.values()
            for access in Access.values
        ]
        self.fields["kommuner"].queryset = (  # type: ignore[attr-defined]
            Organisation.objects.kommuner().select_related("kommune").order_by("name")
        )

    def narrow_kommuner(self, term: str, ticked: list[str]) -> None:
        """Show only kommuner whose name or number holds ``term``, and those already ``ticked``
        (orgnrs): the search of a page without JavaScript, which comes back with its answers."""
        term = term.strip()
        if not term:
            return
        field = self.fields["kommuner"]
        queryset: QuerySet[Organisation] = field.queryset  # type: ignore[attr-defined]
        field.queryset = queryset.filter(  # type: ignore[attr-defined]
            Q(name__icontains=term)
            | Q(kommune__number__startswith=term)
            | Q(orgnr=term.replace(" ", ""))
            | Q(orgnr__in=ticked)
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or self.cleaned_data
        chosen = data.get("items") or []
        data["item_inputs"] = [
            services.ItemInput(
                service=self.services[code],
                access=access,
                service_codes=tuple(data.get("service_codes") or ()),
            )
            for code, access in (value.split(".") for value in chosen)
        ]
        if data.get("which") == self.DELEGATED:
            if data["item_inputs"]:
                found = list(
                    services.kommuner_delegating(vendor=self.vendor, items=data["item_inputs"])
                    .select_related("kommune")
                    .order_by("name")
                )
                if not found:
                    self.add_error(
                        "which",
                        _(
                            "No municipality has delegated all of these to you yet. Choose "
                            "the municipalities yourself: their admins are then asked."
                        ),
                    )
                data["kommune_list"] = found
        elif "kommuner" in data:
            data["kommune_list"] = list(data["kommuner"])
            if not data["kommune_list"]:
                self.add_error("kommuner", _("Choose at least one municipality."))
        return data

    def signed(self, *, acting_orgnr: str, user_id: Any) -> str:
        """The checked answers, signed, for the send: bound to the organisation and the
        person, so it cannot be replayed by another."""
        data = self.cleaned_data
        return signing.dumps(
            {
                "o": acting_orgnr,
                "u": user_id,
                "client": str(data["client"].pk),
                "items": list(data["items"]),
                "service_codes": list(data.get("service_codes") or ()),
                "kommuner": [k.orgnr for k in data["kommune_list"]],
            },
            salt=SIGNING_SALT,
            compress=True,
        )


def order_data(token: str, *, acting_orgnr: str, user_id: Any) -> dict[str, Any] | None:
    """The form data of a signed order (``OrderForm.signed``), or None when it is not valid,
    has expired or is another's."""
    try:
        payload = signing.loads(token, salt=SIGNING_SALT, max_age=SIGNED_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("o") != acting_orgnr:
        return None
    if payload.get("u") != user_id:
        return None
    return {
        "client": payload["client"],
        "items": payload["items"],
        "service_codes": payload["service_codes"],
        "which": OrderForm.CHOSEN,
        "kommuner": payload["kommuner"],
    }


class ItemsForm(PageForm):
    """Items of an order to act on (withdraw, or consent to)."""

    items = forms.ModelMultipleChoiceField(
        label=_("Items"),
        queryset=AccessRequestItem.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": _("Choose at least one item."),
            "invalid_choice": _("That item no longer waits; reload the page."),
        },
    )

    def __init__(
        self, *args: Any, queryset: QuerySet[AccessRequestItem], label: str, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["items"]
        field.queryset = queryset  # type: ignore[attr-defined]
        field.label = label
        field.label_from_instance = lambda item: item_label(  # type: ignore[attr-defined]
            item.service, item.access
        )

    @property
    def has_choices(self) -> bool:
        """Whether any item is there to act on."""
        queryset: QuerySet[AccessRequestItem] = self.fields["items"].queryset  # type: ignore[attr-defined]
        return queryset.exists()


class OrderFilterForm(PageForm):
    """The filters of the list of orders (a GET form)."""

    client = ClientChoiceField(
        label=_("Client"),
        queryset=OAuthClient.objects.none(),
        required=False,
        empty_label=_("All clients"),
    )
    kommune = forms.CharField(label=_("Municipality"), required=False, max_length=100)
    status = forms.ChoiceField(label=_("Status"), required=False)

    def __init__(self, *args: Any, vendor: Organisation, statuses: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = OAuthClient.objects.filter(  # type: ignore[attr-defined]
            vendor=vendor, purpose=OAuthClient.Purpose.FHIR
        ).order_by("name", "created_at")
        self.fields["status"].choices = [("", _("Any status")), *statuses]  # type: ignore[attr-defined]
