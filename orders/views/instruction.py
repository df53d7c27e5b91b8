"""Pages for a kommune's admins: the data-processing instruction (draft, sign, versions, print).

"What have we instructed NHN to do, and is it signed?" The overview shows the version in force,
a draft in progress and the history; a guided form in steps saves a draft at each step through
the same services as the API (``instruction_create``, ``instruction_update``); signing asks for
a fresh login at the provider first (``tenants.auth.login_is_fresh``). Readers read; only the
kommune's admins write.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from orders import services
from orders.forms.instruction import (
    CompareForm,
    HistoryFilterForm,
    PurposeForm,
    RetentionForm,
    ServicesForm,
    SharingForm,
    StepForm,
)
from orders.models import Instruction, InstructionQuerySet, Service
from portal.exceptions import Conflict
from portal.forms import service_errors_add
from tenants.auth import FRESH_LOGIN_SECONDS, fresh_login_redirect, login_age, login_is_fresh
from tenants.models import Organisation, Role
from tenants.pages import Acting, listing, organisation_page, person_of
from tenants.templatetags.tilgang import orgnr as orgnr_grouped

KOMMUNE = (Organisation.Kind.KOMMUNE,)
READERS = (Role.KOMMUNE_ADMIN, Role.KOMMUNE_READER)

#: The services of an instruction, in the catalogue's order, with their names.
SERVICES_IN_ORDER = Prefetch("services", queryset=Service.objects.order_by("position", "code"))


# --- The steps of the guided form ------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    slug: str
    title: Promise
    intro: Promise
    form: type[StepForm] | None  # None: the review, which edits nothing

    @property
    def fields(self) -> tuple[str, ...]:
        if self.form is ServicesForm:
            return ("services",)
        return self.form.fields_of_step if self.form is not None else ()


STEPS = (
    Step(
        "services",
        gettext_lazy("Services"),
        gettext_lazy(
            "Choose the information services in which NHN may process the kommune's personal data."
        ),
        ServicesForm,
    ),
    Step(
        "purpose",
        gettext_lazy("Purpose and data"),
        gettext_lazy(
            "Describe what the processing is about and why, and which personal data about "
            "whom it covers."
        ),
        PurposeForm,
    ),
    Step(
        "sharing",
        gettext_lazy("Sharing"),
        gettext_lazy(
            "Say whether the data stays inside the kommune, or may also be shared with named "
            "organisations that have a need to know (tjenstlig behov)."
        ),
        SharingForm,
    ),
    Step(
        "contact",
        gettext_lazy("Retention and contact"),
        gettext_lazy(
            "How long NHN keeps the data, how long the instruction applies, which "
            "sub-processors the kommune accepts, and whom NHN contacts."
        ),
        RetentionForm,
    ),
    Step(
        "review",
        gettext_lazy("Review and sign"),
        gettext_lazy(
            "Check what the instruction says and change what is wrong. Then sign: the version "
            "becomes binding and cannot change afterwards."
        ),
        None,
    ),
)
REVIEW = STEPS[-1]


def _step_of(field: str) -> Step:
    return next(step for step in STEPS if field in step.fields)


# --- What a version says, field by field -------------------------------------------------------

#: The instruction's fields as the pages show them, by step, in order.
LABELS: dict[str, Promise] = {
    "services": gettext_lazy("Services"),
    "subject_matter": gettext_lazy("Subject matter"),
    "nature_and_purpose": gettext_lazy("Nature and purpose of the processing"),
    "personal_data_categories": gettext_lazy("Categories of personal data"),
    "data_subject_categories": gettext_lazy("Categories of data subjects"),
    "sharing_scope": gettext_lazy("Who the data may be shared with"),
    "shared_with": gettext_lazy("Organisations with a need to know"),
    "retention": gettext_lazy("Retention period"),
    "duration": gettext_lazy("Duration of the instruction"),
    "sub_processors_acknowledged": gettext_lazy("Sub-processors the kommune accepts"),
    "contact_name": gettext_lazy("Contact person"),
    "contact_email": gettext_lazy("Contact e-mail"),
    "contact_phone": gettext_lazy("Contact phone"),
}


@dataclass(frozen=True)
class Shown:
    """One field of a version: what is compared, and the lines shown."""

    name: str
    label: Promise
    value: Any
    lines: list[str]


@dataclass(frozen=True)
class Section:
    step: Step
    fields: list[Shown]


def _shown(instruction: Instruction, name: str) -> Shown:
    value: Any
    if name == "services":
        chosen = list(instruction.services.all())  # prefetched in order
        value = sorted(service.code for service in chosen)
        lines = [f"{service.name} ({service.code})" for service in chosen]
    elif name == "sharing_scope":
        value = instruction.sharing_scope
        lines = [str(instruction.get_sharing_scope_display())]
    elif name == "shared_with":
        value = list(instruction.shared_with)
        lines = [orgnr_grouped(number) for number in value]
    else:
        value = getattr(instruction, name)
        lines = [str(line) for line in value] if isinstance(value, list) else [str(value)]
    return Shown(name=name, label=LABELS[name], value=value, lines=[s for s in lines if s])


def sections(instruction: Instruction) -> list[Section]:
    """The version's fields, grouped by the step that edits them."""
    return [
        Section(step=step, fields=[_shown(instruction, name) for name in step.fields])
        for step in STEPS
        if step.fields
    ]


@dataclass(frozen=True)
class Difference:
    label: Promise
    before: list[str]
    after: list[str]
    changed: bool


def differences(a: Instruction, b: Instruction) -> list[Difference]:
    """The two versions side by side, field by field, each marked changed or not."""
    rows = []
    for section in sections(a):
        for field in section.fields:
            other = _shown(b, field.name)
            rows.append(
                Difference(
                    label=field.label,
                    before=field.lines,
                    after=other.lines,
                    changed=field.value != other.value,
                )
            )
    return rows


# --- Reading ------------------------------------------------------------------------------------


def _versions(request: HttpRequest, acting: Acting) -> InstructionQuerySet:
    return Instruction.objects.visible_to(request.user).filter(kommune=acting.organisation)


def _version(request: HttpRequest, acting: Acting, number: int) -> Instruction:
    """The kommune's version ``number``, its services read in order; 404 if it has none."""
    queryset = _versions(request, acting).prefetch_related(SERVICES_IN_ORDER)
    instruction: Instruction = get_object_or_404(queryset, version=number)
    return instruction


def _draft_in_progress(
    versions: InstructionQuerySet, current: Instruction | None
) -> Instruction | None:
    """The newest draft after the version in force: the one a new version continues."""
    newer = versions.filter(signed_at__isnull=True)
    if current is not None:
        newer = newer.filter(version__gt=current.version)
    return newer.order_by("-version").first()


def _continue_at(draft: Instruction) -> Step:
    """The step to continue a draft at: the first with something missing, else the review."""
    missing = services.instruction_missing(draft)
    return _step_of(missing[0]) if missing else REVIEW


def _status_label(instruction: Instruction) -> str:
    return {
        "draft": _("Draft"),
        "signed": _("In force"),
        "superseded": _("Superseded"),
    }[instruction.status]


def _version_label(number: int, status: str) -> str:
    return _("Version %(number)s (%(status)s)") % {"number": number, "status": status.lower()}


def _compare_choices(versions: InstructionQuerySet) -> list[tuple[int, str]]:
    """Every version of the kommune, newest first, named with its status."""
    rows = versions.order_by("-version").only("version", "signed_at", "superseded_at")
    return [(row.version, _version_label(row.version, _status_label(row))) for row in rows]


HISTORY_STATUS = {
    "signed": Q(signed_at__isnull=False, superseded_at__isnull=True),
    "superseded": Q(superseded_at__isnull=False),
    "draft": Q(signed_at__isnull=True),
}


@organisation_page(kinds=KOMMUNE, roles=READERS)
def overview(request: HttpRequest, acting: Acting) -> HttpResponse:
    """``/o/<orgnr>/instruction/``: the version in force, a draft in progress, the history."""
    versions = _versions(request, acting)
    current = versions.current_for(acting.organisation)
    covered = (
        list(Service.objects.filter(pk__in=current.covered_service_ids).order_by("position"))
        if current is not None
        else []
    )
    draft = _draft_in_progress(versions, current)

    filter_form = HistoryFilterForm(request.GET)
    history = versions.prefetch_related(SERVICES_IN_ORDER)
    if filter_form.is_valid() and filter_form.cleaned_data["status"]:
        history = history.filter(HISTORY_STATUS[filter_form.cleaned_data["status"]])
    page = listing(
        request,
        history,
        sorts={"version": "version", "signed": ("signed_at", "version")},
        default="-version",
    )
    choices = _compare_choices(versions)
    compare_form = CompareForm(
        versions=choices,
        initial={"a": choices[1][0], "b": choices[0][0]} if len(choices) > 1 else {},
    )
    return render(
        request,
        "orders/instruction/overview.html",
        {
            "current": current,
            "covered": covered,
            "draft": draft,
            "continue_at": _continue_at(draft).slug if draft is not None else None,
            "filter_form": filter_form,
            "filtered": bool(filter_form.is_valid() and filter_form.cleaned_data["status"]),
            "listing": page,
            "rows": [(row, _status_label(row)) for row in page.rows],
            "compare_form": compare_form,
            "can_edit": acting.can(Role.KOMMUNE_ADMIN),
        },
    )


@organisation_page(kinds=KOMMUNE, roles=READERS)
def compare(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Two versions side by side, field by field, with each changed field marked in words."""
    versions = _versions(request, acting)
    form = CompareForm(request.GET or None, versions=_compare_choices(versions))
    context: dict[str, Any] = {"form": form, "crumbs": _crumbs(request, _("Compare versions"))}
    if form.is_valid():
        first, second = sorted((form.cleaned_data["a"], form.cleaned_data["b"]))
        pair = {
            i.version: i
            for i in versions.filter(version__in=(first, second)).prefetch_related(
                SERVICES_IN_ORDER
            )
        }
        a, b = pair[first], pair[second]
        rows = differences(a, b)
        context |= {
            "a": a,
            "b": b,
            "columns": [(a, _status_label(a)), (b, _status_label(b))],
            "rows": rows,
            "changed": sum(row.changed for row in rows),
        }
    return render(request, "orders/instruction/compare.html", context)


@organisation_page(kinds=KOMMUNE, roles=READERS)
def printable(request: HttpRequest, acting: Acting, version: int) -> HttpResponse:
    """A version as a clean page to print and file: every field, the signature, the kommune."""
    instruction = _version(request, acting, version)
    return render(
        request,
        "orders/instruction/print.html",
        {
            "instruction": instruction,
            "status": _status_label(instruction),
            "sections": sections(instruction),
            "printed_at": timezone.now(),
            "crumbs": _crumbs(request, _("Version %(number)s") % {"number": version}),
        },
    )


def _crumbs(request: HttpRequest, here: str) -> list[tuple[str, str]]:
    """The instruction's overview, then this page."""
    acting: Acting = request.acting  # type: ignore[attr-defined] # set by organisation_page
    return [
        (reverse("orders:instruction", args=[acting.orgnr]), _("Instruction")),
        (request.get_full_path(), here),
    ]


# --- Writing: the guided form -----------------------------------------------------------------


def _require_admin(acting: Acting) -> None:
    if not acting.can(Role.KOMMUNE_ADMIN):
        raise PermissionDenied


def _step_url(acting: Acting, instruction: Instruction, step: Step) -> str:
    if step is REVIEW:
        return reverse("orders:instruction_review", args=[acting.orgnr, instruction.version])
    return reverse("orders:instruction_step", args=[acting.orgnr, instruction.version, step.slug])


def _step_context(
    request: HttpRequest,
    acting: Acting,
    step: Step,
    instruction: Instruction | None,
    **extra: Any,
) -> dict[str, Any]:
    number = STEPS.index(step) + 1
    version = instruction.version if instruction is not None else None
    links = [
        (s, _step_url(acting, instruction, s) if instruction is not None else "") for s in STEPS
    ]
    heading = (
        _("Version %(number)s: %(step)s") % {"number": version, "step": step.title}
        if version is not None
        else _("New version: %(step)s") % {"step": step.title}
    )
    return {
        "step": step,
        "number": number,
        "total": len(STEPS),
        "steps": links,
        "instruction": instruction,
        "heading": heading,
        "previous": STEPS[number - 2] if number > 1 else None,
        "crumbs": _crumbs(request, heading),
        **extra,
    }


def _saved(request: HttpRequest, instruction: Instruction, then: Step | None) -> None:
    if then is None:
        messages.success(
            request,
            _(
                "The draft of version %(number)s is saved. Continue from this page when you "
                "are ready; nothing applies before it is signed."
            )
            % {"number": instruction.version},
        )
    else:
        messages.success(
            request,
            _("The draft of version %(number)s is saved. Next: %(step)s.")
            % {"number": instruction.version, "step": then.title},
        )


def _after_save(
    request: HttpRequest, acting: Acting, instruction: Instruction, step: Step
) -> HttpResponse:
    """Where the step's button leads: the next step, the one before, or the overview."""
    index = STEPS.index(step)
    action = request.POST.get("action", "next")
    if action == "save" or (action == "back" and index == 0):
        _saved(request, instruction, None)
        return redirect("orders:instruction", acting.orgnr)
    target = STEPS[index - 1] if action == "back" else STEPS[index + 1]
    _saved(request, instruction, target)
    return redirect(_step_url(acting, instruction, target))


def _copy_of(current: Instruction | None) -> dict[str, Any]:
    """A new draft's starting point: the fields of the version in force, if there is one."""
    if current is None:
        return {}
    return {name: getattr(current, name) for name in services.INSTRUCTION_FIELDS}


@organisation_page(kinds=KOMMUNE, roles=READERS)
def new(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Step 1 of a new version. The draft is made when the step is sent: a copy of the version
    in force (if any) with the services chosen here."""
    _require_admin(acting)
    versions = _versions(request, acting)
    current = versions.current_for(acting.organisation)
    draft = _draft_in_progress(versions, current)
    if draft is not None:
        messages.info(
            request,
            _("Version %(number)s is already a draft in progress: continue it here.")
            % {"number": draft.version},
        )
        return redirect(_step_url(acting, draft, _continue_at(draft)))
    step = STEPS[0]
    if request.method == "POST":
        form = ServicesForm(request.POST)
        if form.is_valid():
            try:
                draft = services.instruction_create(
                    kommune=acting.organisation,
                    actor=person_of(request),
                    services=form.chosen_services(),
                    data=_copy_of(current),
                )
            except ValidationError as error:
                service_errors_add(form, error)
            else:
                return _after_save(request, acting, draft, step)
    else:
        initial = {"services": sorted(current.covered_service_ids)} if current is not None else {}
        form = ServicesForm(initial=initial)
    return render(
        request,
        "orders/instruction/step.html",
        _step_context(request, acting, step, None, form=form, copied=current),
    )


def _editable(request: HttpRequest, acting: Acting, version: int) -> Instruction | HttpResponse:
    """The draft ``version`` for an admin to edit; a signed one sends them to the overview."""
    _require_admin(acting)
    instruction = _version(request, acting, version)
    if instruction.signed_at is not None:
        messages.error(
            request,
            _("Version %(number)s is signed and cannot change; start a new version.")
            % {"number": version},
        )
        return redirect("orders:instruction", acting.orgnr)
    return instruction


@organisation_page(kinds=KOMMUNE, roles=READERS)
def step(request: HttpRequest, acting: Acting, version: int, slug: str) -> HttpResponse:
    """One step of the guided form for a draft; sending it saves the draft."""
    this = next((s for s in STEPS if s.slug == slug and s.form is not None), None)
    if this is None or this.form is None:  # the review has a view of its own
        raise Http404
    instruction = _editable(request, acting, version)
    if isinstance(instruction, HttpResponse):
        return instruction
    form_class = this.form
    if request.method == "POST":
        form = form_class(request.POST)
        if form.is_valid():
            try:
                instruction = services.instruction_update(
                    instruction=instruction,
                    actor=person_of(request),
                    services=form.chosen_services(),
                    data=form.changes(),
                )
            except ValidationError as error:
                service_errors_add(form, error)
            except Conflict as conflict:
                messages.error(request, conflict.message)
                return redirect("orders:instruction", acting.orgnr)
            else:
                return _after_save(request, acting, instruction, this)
    else:
        form = form_class(initial=form_class.initial_from(instruction))
    return render(
        request,
        "orders/instruction/step.html",
        _step_context(request, acting, this, instruction, form=form),
    )


def _fresh_until(request: HttpRequest) -> datetime.datetime | None:
    """Until when the person's last login lets them sign, or None when it does not."""
    age = login_age(request)
    if age is None or age > FRESH_LOGIN_SECONDS:
        return None
    return timezone.now() + datetime.timedelta(seconds=FRESH_LOGIN_SECONDS - age)


@organisation_page(kinds=KOMMUNE, roles=READERS)
def review(request: HttpRequest, acting: Acting, version: int) -> HttpResponse:
    """The last step: everything the draft says, what is missing, and the signature."""
    instruction = _editable(request, acting, version)
    if isinstance(instruction, HttpResponse):
        return instruction
    missing = services.instruction_missing(instruction)
    uncovered = services.instruction_uncovered_grants(instruction)
    revokes = uncovered.count()
    revoked_services = (
        Service.objects.filter(pk__in=uncovered.values("service")).order_by("position")
        if revokes
        else Service.objects.none()
    )
    return render(
        request,
        "orders/instruction/review.html",
        _step_context(
            request,
            acting,
            REVIEW,
            instruction,
            sections=sections(instruction),
            missing=[
                (LABELS[name], _step_url(acting, instruction, _step_of(name))) for name in missing
            ],
            missing_names=set(missing),
            revokes=revokes,
            revoked_services=list(revoked_services),
            fresh_until=_fresh_until(request),
            fresh_minutes=FRESH_LOGIN_SECONDS // 60,
        ),
    )


@organisation_page(kinds=KOMMUNE, roles=READERS)
def confirm_login(request: HttpRequest, acting: Acting, version: int) -> HttpResponse:
    """Off to the provider for a fresh login (``prompt=login``), then back to the review."""
    instruction = _editable(request, acting, version)
    if isinstance(instruction, HttpResponse):
        return instruction
    return fresh_login_redirect(request, then=_step_url(acting, instruction, REVIEW))


@organisation_page(kinds=KOMMUNE, roles=READERS)
def sign(request: HttpRequest, acting: Acting, version: int) -> HttpResponse:
    """Sign the draft, if the person logged in at the provider within the last few minutes;
    otherwise nothing is signed and they are sent to log in again."""
    if request.method != "POST":
        return redirect("orders:instruction_review", acting.orgnr, version)
    instruction = _editable(request, acting, version)
    if isinstance(instruction, HttpResponse):
        return instruction
    if not login_is_fresh(request):
        messages.warning(
            request,
            _(
                "Version %(number)s is not signed yet: signing needs a login made in the last "
                "%(minutes)s minutes, to be sure it is you. Once you have logged in again, "
                "press Sign once more."
            )
            % {"number": version, "minutes": FRESH_LOGIN_SECONDS // 60},
        )
        return redirect("orders:instruction_confirm_login", acting.orgnr, version)
    revokes = services.instruction_uncovered_grants(instruction).count()
    try:
        services.instruction_sign(instruction=instruction, actor=person_of(request))
    except ValidationError as error:
        missing = ", ".join(str(LABELS.get(name, name)) for name in error.message_dict)
        messages.error(
            request,
            _("Version %(number)s is not signed: fill in %(fields)s first.")
            % {"number": version, "fields": missing},
        )
        return redirect("orders:instruction_review", acting.orgnr, version)
    except Conflict as conflict:
        messages.error(request, conflict.message)
        return redirect("orders:instruction", acting.orgnr)
    text = _(
        "Version %(number)s is signed and applies from now on. Production orders that waited "
        "for a signed instruction covering their services go on by themselves."
    ) % {"number": version}
    if revokes:
        text += " " + ngettext(
            "%(count)d production access to a service this version does not cover is being "
            "revoked.",
            "%(count)d production accesses to services this version does not cover are being "
            "revoked.",
            revokes,
        ) % {"count": revokes}
    messages.success(request, text)
    return redirect("orders:instruction", acting.orgnr)


urlpatterns: list[URLPattern] = [
    path("instruction/", overview, name="instruction"),
    path("instruction/new/", new, name="instruction_new"),
    path("instruction/compare/", compare, name="instruction_compare"),
    path("instruction/<int:version>/", printable, name="instruction_print"),
    path("instruction/<int:version>/review/", review, name="instruction_review"),
    path("instruction/<int:version>/sign/", sign, name="instruction_sign"),
    path(
        "instruction/<int:version>/confirm-login/",
        confirm_login,
        name="instruction_confirm_login",
    ),
    path("instruction/<int:version>/<slug:slug>/", step, name="instruction_step"),
]
