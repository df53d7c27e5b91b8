"""Forms of a vendor's client pages: a client's public keys (pasted, uploaded or made in the
browser), registering a client, and the clients list's filters.

The forms only read the keys as JSON; what makes a key acceptable is ``tenants.jwks``, applied by
the service functions, so the page and the API refuse the same keys with the same words.
"""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from portal.forms import PageForm, service_errors_add
from tenants.jwks import PRIVATE_MEMBERS
from tenants.models import Environment, Product

#: The largest key file taken (a key set of five RSA keys of 4096 bits, pretty-printed, is about
#: 6 KiB; the service limits the set itself to 32 KiB without whitespace).
MAX_JWKS_FILE_BYTES = 64 * 1024
#: The most text the key set field takes.
MAX_JWKS_TEXT = 64 * 1024


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            _("This is not valid JSON (line %(line)d, column %(column)d)."),
            code="json",
            params={"line": exc.lineno, "column": exc.colno},
        ) from None
    except RecursionError:
        raise ValidationError(_("This is not valid JSON."), code="json") from None


def _has_private_members(value: Any) -> bool:
    keys = value.get("keys") if isinstance(value, dict) else None
    if not isinstance(keys, list):
        return False
    return any(isinstance(key, dict) and PRIVATE_MEMBERS & key.keys() for key in keys)


class _OneOfWidget(forms.Widget):
    """A field that is required only as one of several: no ``required`` attribute."""

    def use_required_attribute(self, initial: Any) -> bool:
        return False


class _JwksTextarea(_OneOfWidget, forms.Textarea):
    pass


class _JwksFileInput(_OneOfWidget, forms.FileInput):
    pass


class _OneOfField(forms.Field):
    """Required, but as one of the ways to give the keys (``KeySetForm.clean`` says when none
    is given), so the page marks neither as optional."""

    def validate(self, value: Any) -> None:
        if value not in self.empty_values:
            super().validate(value)


class _JwksTextField(_OneOfField, forms.CharField):
    pass


class _JwksFileField(_OneOfField, forms.FileField):
    pass


class KeySetForm(PageForm):
    """Public keys given one way: pasted (or made in the browser, which fills the same field)
    or uploaded as a ``.json`` file. ``cleaned_data["keys"]`` is the parsed key set."""

    jwks = _JwksTextField(
        label=_("Public keys (JWKS)"),
        help_text=_(
            'A JWKS is a JSON object with a list of public keys: {"keys": [...]}. Paste it '
            "here, or make a key pair in the browser to fill it in."
        ),
        widget=_JwksTextarea(attrs={"rows": 8, "spellcheck": "false", "autocomplete": "off"}),
        max_length=MAX_JWKS_TEXT,
    )
    jwks_file = _JwksFileField(
        label=_("Or upload the public keys as a .json file"),
        help_text=_("At most 64 KiB."),
        widget=_JwksFileInput(attrs={"accept": ".json,application/json"}),
    )

    #: Which field the keys came from: where the service's objections to them are shown.
    keys_field = "jwks"

    def clean_jwks_file(self) -> UploadedFile | None:
        upload: UploadedFile | None = self.cleaned_data.get("jwks_file")
        if not upload:
            return None
        if not (upload.name or "").lower().endswith(".json"):
            raise ValidationError(_("Upload a file whose name ends in .json."), code="extension")
        if (upload.size or 0) > MAX_JWKS_FILE_BYTES:
            raise ValidationError(
                _("The file is %(size)d bytes; at most %(limit)d bytes are taken."),
                code="too_large",
                params={"size": upload.size, "limit": MAX_JWKS_FILE_BYTES},
            )
        return upload

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        text = (cleaned.get("jwks") or "").strip()
        upload = cleaned.get("jwks_file")
        if self.has_error("jwks") or self.has_error("jwks_file"):
            return cleaned
        if text and upload:
            self.add_error(
                "jwks_file",
                ValidationError(
                    _("Give the keys one way: paste them or upload a file, not both."),
                    code="both",
                ),
            )
        elif upload:
            self.keys_field = "jwks_file"
            try:
                content = upload.read(MAX_JWKS_FILE_BYTES + 1).decode("utf-8-sig")
                cleaned["keys"] = _parsed(content)
            except UnicodeDecodeError:
                self.add_error(
                    "jwks_file",
                    ValidationError(_("The file is not UTF-8 text."), code="encoding"),
                )
            except ValidationError as exc:
                self.add_error("jwks_file", exc)
        elif text:
            try:
                cleaned["keys"] = _parsed(text)
            except ValidationError as exc:
                self.add_error("jwks", exc)
        else:
            self.add_error(
                "jwks",
                ValidationError(
                    _("Give the public keys: make a key pair, paste a JWKS or upload a file."),
                    code="required",
                ),
            )
        return cleaned

    def add_keys_error(self, error: ValidationError) -> None:
        """The service's refusal, with its objections to the keys on the field they came from.

        A key set holding private key material is not shown again: the page must not carry a
        secret further than the person already did."""
        service_errors_add(self, error, fields={"jwks": self.keys_field})
        if _has_private_members(self.cleaned_data.get("keys")) and self.keys_field == "jwks":
            data = QueryDict(mutable=True)
            data.update(self.data)
            data[self.add_prefix("jwks")] = ""
            self.data = data


class ClientForm(KeySetForm):
    """Register a client: its product, environment, name and public keys."""

    field_order = ["product", "environment", "name", "jwks", "jwks_file"]

    product = forms.ModelChoiceField(
        label=_("Product"),
        queryset=Product.objects.none(),
        empty_label=_("Choose the product"),
        help_text=_("The system that will use the client."),
    )
    environment = forms.ChoiceField(
        label=_("Environment"),
        choices=Environment.choices,
        widget=forms.RadioSelect,
        help_text=_("The test environment has synthetic data only. Production has real data."),
    )
    name = forms.CharField(
        label=_("Name of the client"),
        max_length=200,
        help_text=_("For example the product and the environment: “Trygghet Alarm test”."),
    )

    def __init__(self, *args: Any, products: QuerySet[Product], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast("forms.ModelChoiceField[Product]", self.fields["product"]).queryset = products

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError(_("Give the client a name."), code="required")
        return name


class ClientFilterForm(PageForm):
    """The clients list's filters (GET; a value that is not a choice is ignored)."""

    product = forms.ModelChoiceField(
        label=_("Product"),
        queryset=Product.objects.none(),
        empty_label=_("All"),
        required=False,
    )
    environment = forms.ChoiceField(
        label=_("Environment"), choices=[("", _("All")), *Environment.choices], required=False
    )
    removed = forms.ChoiceField(
        label=_("Status"),
        choices=[("", _("In use")), ("yes", _("Removed")), ("all", _("All"))],
        required=False,
    )

    def __init__(self, *args: Any, products: QuerySet[Product], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast("forms.ModelChoiceField[Product]", self.fields["product"]).queryset = products

    def filters(self) -> dict[str, Any]:
        """The filters given and valid (an unknown value filters nothing)."""
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if value}
