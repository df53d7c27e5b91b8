"""The language switch in the page header: Django's ``set_language``, and for a logged-in person
also the language their e-mails speak (``tenants.Profile``)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.i18n import set_language as django_set_language

from tenants.services import person_language_set


def set_language(request: HttpRequest) -> HttpResponse:
    """Set the language cookie as Django does; remember the choice for a logged-in person."""
    response: HttpResponse = django_set_language(request)
    language = request.POST.get("language", "")
    if (
        request.method == "POST"
        and request.user.is_authenticated
        and language in dict(settings.LANGUAGES)
    ):
        person_language_set(user=request.user, language=language)
    return response
