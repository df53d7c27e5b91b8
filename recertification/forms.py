"""The recertification page's form: one vendor confirmed, some of its accesses left out."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from portal.forms import PageForm


class ConfirmForm(PageForm):
    vendor = forms.CharField(widget=forms.HiddenInput, max_length=9)
    not_confirmed = forms.MultipleChoiceField(
        label=_("Accesses to end instead"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "invalid_choice": _("Some of the chosen accesses have already ended. Reload the page.")
        },
    )

    def __init__(self, *args: Any, grant_ids: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["not_confirmed"].choices = [(pk, pk) for pk in grant_ids]  # type: ignore[attr-defined]
