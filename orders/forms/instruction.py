"""Forms of the data-processing instruction's pages: one per step of the guided form, and the
choice of two versions to compare.

Each step's form holds the instruction's fields of that step under the model's names, so a
``ValidationError`` of the service lands beside the field it names
(``portal.forms.service_errors_add``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from orders.models import Instruction, Service
from portal.forms import PageForm
from tenants.validators import validate_orgnr

#: The longest entry of a list field (as the API's ``StringListField``).
LIST_ENTRY_MAX_LENGTH = 200


class LinesField(forms.CharField):
    """A list of short texts typed one per line (commas also separate ``separators``)."""

    widget = forms.Textarea(attrs={"rows": 4})

    def __init__(self, *, separators: str = "\n", squeeze: bool = False, **kwargs: Any) -> None:
        self.separators = separators
        self.squeeze = squeeze  # drop the spaces inside an entry ("958 935 420" -> "958935420")
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(str(entry) for entry in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = str(super().to_python(value))
        for separator in self.separators:
            text = text.replace(separator, "\n")
        entries = [line.strip() for line in text.splitlines()]
        if self.squeeze:
            entries = ["".join(entry.split()) for entry in entries]
        return [entry for entry in entries if entry]

    def validate(self, value: Any) -> None:
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")
        for entry in value:
            if len(entry) > LIST_ENTRY_MAX_LENGTH:
                raise ValidationError(
                    _("Each line holds at most %(limit)d characters (one has %(length)d)."),
                    code="max_length",
                    params={"limit": LIST_ENTRY_MAX_LENGTH, "length": len(entry)},
                )

    def run_validators(self, value: Any) -> None:
        errors: list[ValidationError] = []
        for entry in value:
            try:
                super().run_validators(entry)
            except ValidationError as error:
                errors.extend(error.error_list)
        if errors:
            raise ValidationError(errors)


class StepForm(PageForm):
    """One step of the guided form: the instruction's fields it edits, read from a draft."""

    #: The fields of this step, in the model's names.
    fields_of_step: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def initial_from(cls, instruction: Instruction | None) -> dict[str, Any]:
        if instruction is None:
            return {}
        return {name: getattr(instruction, name) for name in cls.fields_of_step}

    def changes(self) -> dict[str, Any]:
        """The values for the service's ``data`` (the model's fields other than services)."""
        return {name: self.cleaned_data[name] for name in self.fields_of_step}

    def chosen_services(self) -> Sequence[Service] | None:
        """The services for the service's ``services``; None leaves them as they are."""
        return None


if TYPE_CHECKING:
    _ModelChoices = forms.ModelMultipleChoiceField[Service]
else:
    _ModelChoices = forms.ModelMultipleChoiceField


class ServiceChoiceField(_ModelChoices):
    """Services by their name in the page's language and their code."""

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.code})"


class ServicesForm(StepForm):
    services = ServiceChoiceField(
        queryset=Service.objects.order_by("position", "code"),
        widget=forms.CheckboxSelectMultiple,
        label=_("Services the instruction covers"),
        help_text=_(
            "NHN may process the kommune's data only in the services you choose here. "
            "Production access to a service needs a signed instruction that covers it."
        ),
        error_messages={"required": _("Choose at least one service.")},
    )

    @classmethod
    def initial_from(cls, instruction: Instruction | None) -> dict[str, Any]:
        if instruction is None:
            return {}
        return {"services": list(instruction.services.values_list("pk", flat=True))}

    def chosen_services(self) -> Sequence[Service]:
        chosen: QuerySet[Service] = self.cleaned_data["services"]
        return list(chosen)


class PurposeForm(StepForm):
    fields_of_step = (
        "subject_matter",
        "nature_and_purpose",
        "personal_data_categories",
        "data_subject_categories",
    )

    subject_matter = forms.CharField(
        label=_("Subject matter"),
        help_text=_(
            "What the processing is about, in a sentence or two. Example: welfare technology "
            "and home follow-up of the kommune's patients."
        ),
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    nature_and_purpose = forms.CharField(
        label=_("Nature and purpose of the processing"),
        help_text=_(
            "What NHN does with the data, and why. Example: makes health data available to the "
            "kommune's own systems and its vendors' systems through the information services."
        ),
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    personal_data_categories = LinesField(
        label=_("Categories of personal data"),
        help_text=_("One per line. Example: health information, contact information."),
    )
    data_subject_categories = LinesField(
        label=_("Categories of data subjects"),
        help_text=_("One per line. Example: patients, next of kin."),
    )


class SharingForm(StepForm):
    fields_of_step = ("sharing_scope", "shared_with")

    sharing_scope = forms.ChoiceField(
        label=_("Who may the data be shared with?"),
        choices=Instruction.SharingScope.choices,
        widget=forms.RadioSelect,
    )
    shared_with = LinesField(
        label=_("Organisations with a need to know"),
        help_text=_(
            "Only when the data may be shared with named organisations: their organisation "
            "numbers, one per line (spaces are fine)."
        ),
        required=False,
        separators="\n,;",
        squeeze=True,
        validators=[validate_orgnr],
    )


class RetentionForm(StepForm):
    fields_of_step = (
        "retention",
        "duration",
        "sub_processors_acknowledged",
        "contact_name",
        "contact_email",
        "contact_phone",
    )

    retention = forms.CharField(
        label=_("Retention period"),
        help_text=_(
            "How long NHN keeps the data. Example: as long as the service is delivered, then "
            "deleted within 30 days."
        ),
        max_length=500,
    )
    duration = forms.CharField(
        label=_("Duration of the instruction"),
        help_text=_("How long the instruction applies. Example: until the agreement ends."),
        max_length=200,
    )
    sub_processors_acknowledged = LinesField(
        label=_("Sub-processors the kommune accepts"),
        help_text=_(
            "Other companies NHN uses that may handle the data, one per line. Leave it empty "
            "if NHN uses none."
        ),
        required=False,
    )
    contact_name = forms.CharField(label=_("Contact person"), max_length=200)
    contact_email = forms.EmailField(label=_("Contact e-mail"))
    contact_phone = forms.CharField(label=_("Contact phone"), max_length=40, required=False)


class CompareForm(PageForm):
    """Two versions of the kommune's instruction, by number."""

    a = forms.TypedChoiceField(label=_("Compare version"), coerce=int)
    b = forms.TypedChoiceField(label=_("with version"), coerce=int)

    def __init__(self, *args: Any, versions: Sequence[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("a", "b"):
            self.fields[name].choices = list(versions)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "a" in cleaned and cleaned.get("a") == cleaned.get("b"):
            self.add_error("b", _("Choose two different versions."))
        return cleaned


class HistoryFilterForm(PageForm):
    """The history's filter: versions by status."""

    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[
            ("", _("All versions")),
            ("signed", _("In force")),
            ("superseded", _("Superseded")),
            ("draft", _("Drafts")),
        ],
    )
