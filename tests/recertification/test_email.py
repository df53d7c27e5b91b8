"""Reminders of recertification reach a real SMTP server (aiosmtpd) through the real mailer
worker: to the kommune's admins 30 and 7 days before the lapse, once each however often the
check runs, in each admin's language; the lapse itself to the vendor's admins."""

from __future__ import annotations

import datetime

import pytest
from django.conf import settings
from django.utils.formats import date_format
from django.utils.translation import override

from notifications.models import EmailStatus, Notification
from recertification import services
from tenants.models import Organisation, Profile, Role
from tests.factories import (
    ClientFactory,
    GrantFactory,
    KommuneOrganisationFactory,
    MembershipFactory,
    OrganisationFactory,
    ProductFactory,
)
from tests.notifications.smtp import SMTPServer
from tests.provisioning.stack import wait_for
from tests.recertification.conftest import at, days_before, lapse_day

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def sent(count: int) -> bool:
    return Notification.objects.filter(email_status=EmailStatus.SENT).count() == count


def test_reminders_arrive_30_and_7_days_before_once_each_and_the_lapse_tells_the_vendor(
    mailer: SMTPServer,
) -> None:
    kommune = KommuneOrganisationFactory()
    vendor = OrganisationFactory(kind=Organisation.Kind.VENDOR, name="Trygghet & Co AS")
    admin = MembershipFactory(organisation=kommune, role=Role.KOMMUNE_ADMIN)
    english = MembershipFactory(organisation=kommune, role=Role.KOMMUNE_ADMIN)
    Profile.objects.create(user=english.user, language="en")
    reader = MembershipFactory(organisation=kommune, role=Role.KOMMUNE_READER)
    vendor_admin = MembershipFactory(organisation=vendor, role=Role.VENDOR_ADMIN)
    client = ClientFactory(product=ProductFactory(vendor=vendor))
    grant = GrantFactory(client=client, kommune=kommune)
    day = lapse_day(grant)

    for when in (days_before(day, 31), days_before(day, 30), days_before(day, 30)):
        services.recertifications_check(now=when)
    first = mailer.message_to(admin.email)
    with override("nb"):
        # (strip: Python folds a long non-ASCII subject onto a line of its own, and the parser
        # keeps the fold's space)
        assert first.subject.strip() == (
            f"Bekreft tilgangene til Trygghet & Co AS før {date_format(day, 'DATE_FORMAT')}"
        )
    assert "Det er om 30 dager." in first.body
    assert f"{settings.PORTAL_URL}/o/{kommune.orgnr}/recertification/" in first.body
    in_english = mailer.message_to(english.email)
    with override("en"):
        assert in_english.subject.strip() == (
            f"Confirm the access of Trygghet & Co AS before {date_format(day, 'DATE_FORMAT')}"
        )
    assert "That is in 30 days." in in_english.body

    for when in (days_before(day, 20), days_before(day, 7), days_before(day, 7)):
        services.recertifications_check(now=when)
    mailer.wait_for(lambda got: len(got) == 4, what="the 7-day reminders")
    wait_for(lambda: sent(4), timeout=10, what="four recorded as sent")
    to_admin = mailer.received(admin.email)
    assert len(to_admin) == 2
    assert "Det er om 7 dager." in to_admin[1].body

    services.recertifications_check(now=at(day))
    lapsed = mailer.message_to(vendor_admin.email)
    assert lapsed.subject.strip() == f"{kommune.name} bekreftet ikke tilgangen deres på nytt"
    assert "Pasient (lese)" in lapsed.body
    services.recertifications_check(now=at(day + datetime.timedelta(days=1)))
    wait_for(lambda: sent(5), timeout=10, what="five recorded as sent")
    assert len(mailer.received(admin.email)) == 2  # once each, however often the check ran
    assert len(mailer.received(english.email)) == 2
    assert mailer.received(reader.email) == []
    assert len(mailer.received()) == 5
