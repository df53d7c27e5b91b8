"""Pages for NHN's operators and auditors: the provisioning jobs.

Failures come first, each with its reason and attempts; operators retry a failed job through the
same ``runner.job_retry`` as the API, auditors read. A job's page follows it live while it runs.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, DurationField, ExpressionWrapper, F, IntegerField, Q, Value, When
from django.db.models.functions import Now
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from orders.models import Grant, GrantStatus, ProvisioningJob
from orders.policy import grant_reason_text
from portal.exceptions import Conflict
from provisioning import runner
from provisioning.forms import JobFilterForm
from tenants.models import Organisation, Role
from tenants.pages import Acting, listing, organisation_page, person_of

nhn_page = organisation_page(
    kinds=(Organisation.Kind.OPERATOR,), roles=(Role.NHN_OPERATOR, Role.NHN_AUDITOR)
)
Status = ProvisioningJob.Status

#: What set a job off (``ProvisioningJob.reason``), in words.
JOB_REASONS: dict[str, Any] = {
    "client.registered": gettext_lazy("Client registered"),
    "client.keys_rotated": gettext_lazy("Client's keys changed"),
    "client.removed": gettext_lazy("Client removed"),
    "grant.approved": gettext_lazy("Access granted"),
    "grant.updated": gettext_lazy("Access changed"),
    "grant.revoked": gettext_lazy("Access revoked"),
    "reconcile": gettext_lazy("Drift found by the reconciler"),
}
#: The colour of each status's tag (its text says it too).
STATUS_COLOURS = {
    Status.FAILED: "danger",
    Status.RUNNING: "info",
    Status.PENDING: "warning",
    Status.DONE: "success",
}


def job_reason(reason: str) -> str:
    return str(JOB_REASONS.get(reason, reason))


def _decorate(job: ProvisioningJob) -> ProvisioningJob:
    job.reason_label = job_reason(job.reason)  # type: ignore[attr-defined]
    job.colour = STATUS_COLOURS.get(Status(job.status), "neutral")  # type: ignore[attr-defined]
    return job


@nhn_page
def jobs(request: HttpRequest, acting: Acting) -> HttpResponse:
    """The outbox, failures first: what failed and why, what waits, what runs, what is done."""
    form = JobFilterForm(request.GET or None)
    rows = ProvisioningJob.objects.select_related("client__vendor")
    if form.is_valid():
        if job_status := form.cleaned_data["status"]:
            rows = rows.filter(status=job_status)
        if client := form.cleaned_data["client"]:
            rows = rows.filter(Q(client__name__icontains=client) | Q(client__client_id=client))
        if vendor := form.cleaned_data["vendor"]:
            rows = rows.filter(client__vendor=vendor)
    rows = rows.annotate(
        # Failures first, then what runs, what waits and what is done; newest first in each.
        attention=Case(
            When(status=Status.FAILED, then=Value(0)),
            When(status=Status.RUNNING, then=Value(1)),
            When(status=Status.PENDING, then=Value(2)),
            default=Value(3),
            output_field=IntegerField(),
        ),
        age=ExpressionWrapper(Now() - F("created_at"), output_field=DurationField()),
    )
    page = listing(
        request,
        rows,
        sorts={
            "attention": ("attention", "age"),
            "created": "created_at",
            "status": ("status", "age"),
            "attempts": ("attempts", "age"),
            "client": ("client__name", "age"),
            "vendor": ("client__vendor__name", "age"),
        },
        default="attention",
    )
    for job in page.page_obj.object_list:
        _decorate(job)
    return render(
        request,
        "provisioning/jobs.html",
        {
            "form": form,
            "listing": page,
            "filtered": form.is_bound,
            "can_retry": acting.can(Role.NHN_OPERATOR),
        },
    )


def _job_of(job_id: Any) -> ProvisioningJob:
    return get_object_or_404(
        ProvisioningJob.objects.select_related(
            "client__vendor", "grant__kommune", "grant__service", "coalesced_into"
        ),
        pk=job_id,
    )


@nhn_page
def job(request: HttpRequest, acting: Acting, job_id: Any) -> HttpResponse:
    """One job: what set it off, its client, its attempts and last error, the client's grants
    that failed with it; followed live (htmx) until it is done or failed."""
    found = _decorate(_job_of(job_id))
    finished = found.status in (Status.DONE, Status.FAILED)
    if request.htmx:  # type: ignore[attr-defined]
        response = render(request, "provisioning/_job_status.html", {"job": found})
        response.status_code = 286 if finished else 200  # 286: htmx stops polling
        return response
    failed = [
        (
            grant,
            grant_reason_text(
                grant.status_reason_code, grant.status_reason_params, grant.status_reason
            ),
        )
        for grant in Grant.objects.filter(client_id=found.client_id, status=GrantStatus.FAILED)
        .select_related("kommune", "service")
        .order_by("kommune__name", "service__position", "access")[:100]
    ]
    crumbs = [
        (reverse("provisioning:jobs", args=[acting.orgnr]), _("Provisioning jobs")),
        (reverse("provisioning:job", args=[acting.orgnr, found.pk]), found.client.name),
    ]
    return render(
        request,
        "provisioning/job.html",
        {
            "job": found,
            "finished": finished,
            "failed_grants": failed,
            "can_retry": acting.can(Role.NHN_OPERATOR),
            "crumbs": crumbs,
        },
    )


@require_POST
@nhn_page
def job_retry(request: HttpRequest, acting: Acting, job_id: Any) -> HttpResponse:
    """Send a failed job again (``runner.job_retry``, as the API's retry)."""
    found = _job_of(job_id)
    if not acting.can(Role.NHN_OPERATOR):
        raise PermissionDenied(_("Only NHN operators retry provisioning jobs."))
    failed = Grant.objects.filter(client_id=found.client_id, status=GrantStatus.FAILED).count()
    try:
        runner.job_retry(job=found, actor=person_of(request))
    except Conflict as conflict:
        messages.error(request, conflict.message)
    else:
        text = _(
            "The job for %(client)s is sent again. A worker takes it within seconds; its page "
            "shows how it goes."
        ) % {"client": found.client.name}
        if failed:
            text += " " + ngettext(
                "%(count)s failed grant of the client is being set up again with it.",
                "%(count)s failed grants of the client are being set up again with it.",
                failed,
            ) % {"count": failed}
        messages.success(request, text)
    back = request.POST.get("next", "")
    jobs_url = reverse("provisioning:jobs", args=[acting.orgnr])
    if back.startswith(jobs_url) and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}
    ):
        return redirect(back)
    return redirect("provisioning:job", acting.orgnr, found.pk)


urlpatterns: list[URLPattern] = [
    path("jobs/", jobs, name="jobs"),
    path("jobs/<uuid:job_id>/", job, name="job"),
    path("jobs/<uuid:job_id>/retry/", job_retry, name="job_retry"),
]
