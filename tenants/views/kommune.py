"""Pages for a kommune's admins (the EHR switch plan).

"When do we switch, and what does NHN recommend?" Readers see the plan; administrators record
it through ``tenants.services.kommune_epj_set``, the service the API calls.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _

from portal.exceptions import Conflict
from portal.forms import service_errors_add
from tenants import services
from tenants.forms.kommune import EpjForm, recommendation
from tenants.models import Organisation, Role
from tenants.pages import Acting, organisation_page, person_of

KOMMUNE = (Organisation.Kind.KOMMUNE,)


@organisation_page(kinds=KOMMUNE, roles=(Role.KOMMUNE_ADMIN, Role.KOMMUNE_READER))
def epj(request: HttpRequest, acting: Acting) -> HttpResponse:
    """The EPJ the kommune runs, its planned switch, whether it uses VKP, and NHN's
    recommendation for that switch."""
    may_change = acting.can(Role.KOMMUNE_ADMIN)
    if request.method == "POST" and not may_change:
        raise PermissionDenied
    kommune = Organisation.objects.select_related(
        "epj_product__vendor", "epj_switch_product__vendor"
    ).get(pk=acting.organisation.pk)
    form = EpjForm(
        request.POST if request.method == "POST" else None, initial=EpjForm.initial_of(kommune)
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.kommune_epj_set(
                kommune=kommune,
                product=form.cleaned_data["epj_product"],
                switch_product=form.cleaned_data["switch_product"],
                switch_date=form.cleaned_data["switch_date"],
                uses_vkp=form.cleaned_data["uses_vkp"],
                actor=person_of(request),
            )
        except (ValidationError, PermissionDenied, Conflict) as error:
            service_errors_add(form, error)
        else:
            messages.success(
                request,
                _(
                    "The EHR plan is saved. NHN sees it in its overview of EHR switches, and the "
                    "services only for Epic follow it from the switch date."
                ),
            )
            return redirect("tenants:epj", acting.orgnr)
    heading, advice = recommendation(kommune.epj_switch_date, kommune.uses_vkp)
    return render(
        request,
        "tenants/kommune/epj.html",
        {
            "kommune": kommune,
            "form": form,
            "may_change": may_change,
            "advice_heading": heading,
            "advice": advice,
        },
    )


urlpatterns: list[URLPattern] = [
    path("epj/", epj, name="epj"),
]
