"""A notification in words: its kind's templates (``templates/emails/``) rendered in a language.

Text, not HTML: the templates are rendered without autoescaping (an organisation called
"A & B" stays "A & B" in an e-mail); the pages escape the text when they show it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.template import Context, Engine
from django.urls import reverse
from django.utils import translation

from notifications.models import Notification


@dataclass(frozen=True)
class Texts:
    subject: str
    body: str


@functools.cache
def _engine() -> Engine:
    return Engine(
        dirs=[str(settings.BASE_DIR / "templates")],
        autoescape=False,
        builtins=["django.templatetags.i18n", "notifications.templatetags.notifications"],
    )


def _render(name: str, context: dict[str, Any]) -> str:
    return _engine().get_template(name).render(Context(context, autoescape=False))


def absolute(path: str) -> str:
    return f"{settings.PORTAL_URL}{path}" if path else ""


def notification_texts(notification: Notification, *, language: str | None = None) -> Texts:
    """The subject (one line) and text of the notification in ``language`` (the active one by
    default: the page's; the recipient's for the e-mail)."""
    with translation.override(language or translation.get_language()):
        context = {
            **notification.notice.params,
            "organisation": notification.organisation.name,
            "link": absolute(notification.link),
        }
        kind = notification.notice.kind
        subject = " ".join(_render(f"emails/{kind}.subject.txt", context).split())
        body = _render(f"emails/{kind}.txt", context).strip()
    return Texts(subject=subject, body=body)


def email_texts(notification: Notification) -> Texts:
    """The e-mail: the notification's text in the recipient's language, then where to act on
    it and why the person gets it."""
    texts = notification_texts(notification, language=notification.language)
    with translation.override(notification.language):
        footer = _render(
            "emails/_footer.txt",
            {
                "organisation": notification.organisation.name,
                "link": absolute(notification.link),
                "notifications": absolute(reverse("notifications:list")),
            },
        ).strip()
    return Texts(subject=texts.subject, body=f"{texts.body}\n\n{footer}\n")
