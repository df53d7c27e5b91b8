"""The kommune's recertification page: each vendor with access to the kommune's data, when it
was last confirmed and when it lapses, and one button per vendor to confirm it again.

Thin, like the API (``recertification.api.views``): it reads through ``Grant.objects.visible_to``
filtered to the kommune the page acts for and writes through ``recertification_confirm``, whose
refusals land on the vendor's form. Readers see it; only the kommune's admins confirm (403).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from orders.models import Grant
from portal.forms import service_errors_add
from recertification import services
from recertification.forms import ConfirmForm
from recertification.selectors import pairs_due, vendors_due
from tenants.models import Organisation, Role
from tenants.pages import PAGE_SIZE, Acting, organisation_page, person_of

kommune_page = organisation_page(
    kinds=(Organisation.Kind.KOMMUNE,), roles=(Role.KOMMUNE_ADMIN, Role.KOMMUNE_READER)
)


def _confirmed_message(outcome: services.Confirmed, vendor: Organisation) -> str:
    day = date_format(outcome.lapses_on, "DATE_FORMAT")
    text = ngettext(
        "Confirmed: %(vendor)s keeps %(count)d access until %(day)s, unless you confirm it "
        "again before then.",
        "Confirmed: %(vendor)s keeps %(count)d accesses until %(day)s, unless you confirm "
        "them again before then.",
        len(outcome.confirmed),
    ) % {"vendor": vendor.name, "count": len(outcome.confirmed), "day": day}
    if outcome.revoked:
        text += " " + ngettext(
            "%(count)d access ended: the gateway stops it within seconds.",
            "%(count)d accesses ended: the gateway stops them within seconds.",
            len(outcome.revoked),
        ) % {"count": len(outcome.revoked)}
    return text


@kommune_page
def page(request: HttpRequest, acting: Acting) -> HttpResponse:
    """Which vendors must we confirm again, and by when? Confirm each with one button."""
    today = timezone.localdate()
    grants = Grant.objects.visible_to(request.user).filter(kommune=acting.organisation)
    may_change = acting.can(Role.KOMMUNE_ADMIN)
    form: ConfirmForm | None = None
    if request.method == "POST":
        if not may_change:
            raise PermissionDenied
        live_ids = [str(pk) for pk in grants.live().values_list("pk", flat=True)]
        form = ConfirmForm(request.POST, grant_ids=live_ids)
        if form.is_valid():
            vendor = Organisation.objects.filter(
                kind=Organisation.Kind.VENDOR, orgnr=form.cleaned_data["vendor"]
            ).first()
            try:
                if vendor is None:
                    raise ValidationError(
                        {"vendor": _("This vendor has no access to confirm. Reload the page.")}
                    )
                outcome = services.recertification_confirm(
                    kommune=acting.organisation,
                    vendor=vendor,
                    actor=person_of(request),
                    not_confirmed=form.cleaned_data["not_confirmed"],
                )
            except (ValidationError, PermissionDenied) as error:
                # The vendor is no field of the page's: its refusal goes above the form.
                service_errors_add(form, error, fields={"vendor": "-"})
            else:
                messages.success(request, _confirmed_message(outcome, vendor))
                return redirect("recertification:page", acting.orgnr)
    pairs = Paginator(pairs_due(grants, today=today), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = vendors_due(grants, list(pairs.object_list), today=today)
    failed = form.data.get("vendor") if form is not None else None
    # A refusal for a vendor no longer listed (its access ended meanwhile) is shown on top.
    failed_elsewhere = failed is not None and failed not in {row.vendor.orgnr for row in rows}
    return render(
        request,
        "recertification/page.html",
        {
            "rows": rows,
            "page_obj": pairs,
            "form": form,
            "failed": failed,
            "failed_elsewhere": failed_elsewhere,
            "chosen": request.POST.getlist("not_confirmed"),
            "may_change": may_change,
            "months": settings.RECERTIFICATION_MONTHS,
            # "30 and 7": the days before the lapse on which the admins are reminded.
            "reminders": _(" and ").join(
                str(day) for day in sorted(settings.RECERTIFICATION_REMINDER_DAYS, reverse=True)
            ),
        },
    )


urlpatterns: list[URLPattern] = [
    path("o/<str:orgnr>/recertification/", page, name="page"),
]
