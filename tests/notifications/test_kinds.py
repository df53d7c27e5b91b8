"""Every kind of notification has its subject and text, in bokmål and in English."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.utils import translation

from notifications.kinds import KINDS
from notifications.models import Notice, Notification
from notifications.render import email_texts, notification_texts
from tests.factories import KommuneOrganisationFactory, UserFactory

pytestmark = pytest.mark.django_db

ITEM = {"service": {"nb": "Pasient", "en": "Patient"}, "access": "read", "kommune": "Bergen"}
#: What each kind's callers give it (a new kind adds its own here).
SAMPLES: dict[str, dict[str, Any]] = {
    "request_waiting": {
        "vendor": "A & B AS",
        "client": "Alarm",
        "kommune": "Oslo",
        "total": 2,
        "items": [ITEM, ITEM],
    },
    "consent_waiting": {"kommune": "A & B", "client": "Alarm", "total": 1, "items": [ITEM]},
    "request_decided": {
        "kommune": "A & B",
        "client": "Alarm",
        "person": "Kari",
        "approved": [ITEM],
        "rejected": [ITEM],
        "reason": "No",
    },
    "items_decided": {
        "approved": 1,
        "rejected": 1,
        "approved_items": [ITEM],
        "rejected_items": [ITEM],
        "approved_more": 0,
        "rejected_more": 3,
    },
    "provisioning_failed": {"client": "A & B", "grants": 2, "error": "400 invalid"},
    "job_failed": {"client": "A & B", "vendor": "V", "attempts": 10, "error": "timeout"},
    "key_expiring": {"client": "A & B", "kid": "k1", "days": 30, "ends": "2027-03-01"},
    "key_expired": {"client": "A & B", "kid": "k1", "ended": "2027-03-01", "last": True},
    "vendor_suspended": {"vendor": "A & B", "reason": "Unpaid", "grants": 3},
    "vendor_suspension_lifted": {"vendor": "A & B", "restored": 2, "not_restored": 1},
    "reconciler_healed": {
        "total": 3,
        "heals": [{"label": {"nb": "Gatewayens tilganger", "en": "Gateway grants"}, "count": 3}],
    },
    "recertification_due": {
        "kommune": "Oslo",
        "vendor": "A & B AS",
        "date": "2027-03-01",
        "days": 30,
        "grants": 2,
        "months": 12,
    },
    "recertification_lapsed": {
        "kommune": "Oslo",
        "vendor": "A & B AS",
        "total": 2,
        "items": [ITEM, ITEM],
        "more": 0,
    },
}


def test_every_kind_has_a_sample_here() -> None:
    assert set(SAMPLES) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_says_its_subject_and_text_in_both_languages_unescaped(kind: str) -> None:
    notice = Notice.objects.create(kind=kind, params=SAMPLES[kind])
    notification = Notification.objects.create(
        notice=notice,
        recipient=UserFactory(),
        organisation=KommuneOrganisationFactory(),
        link="/o/1/",
    )

    english = notification_texts(notification, language="en")
    bokmal = notification_texts(notification, language="nb")

    for texts in (english, bokmal):
        assert texts.subject
        assert "\n" not in texts.subject
        assert texts.body
        assert "&amp;" not in texts.subject + texts.body
        assert "{" not in texts.body
    assert english.subject != bokmal.subject
    assert english.body != bokmal.body
    if "A & B" in json.dumps(SAMPLES[kind]):  # names are shown as they are, not escaped
        assert "A & B" in english.subject + english.body


def test_dates_and_names_are_worded_in_the_readers_language() -> None:
    notice = Notice.objects.create(kind="key_expiring", params=SAMPLES["key_expiring"])
    notification = Notification.objects.create(
        notice=notice,
        recipient=UserFactory(),
        organisation=KommuneOrganisationFactory(),
        language="en",
    )

    assert "1 March 2027" in notification_texts(notification, language="en").body
    assert "1. mars 2027" in notification_texts(notification, language="nb").body
    with translation.override("nb"):  # the page's language does not change the e-mail's
        mail = email_texts(notification)
    assert "1 March 2027" in mail.body
    assert "All your notifications" in mail.body
