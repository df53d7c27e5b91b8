"""Notifications reach people by e-mail: a real mailer worker (Celery, the ``notifications``
queue) sends them after COMMIT to a real SMTP server (aiosmtpd), in each recipient's language,
and none is lost while the SMTP server or the broker is down."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from kombu import pools

from notifications.models import EmailStatus, Notification
from notifications.services import emails_sweep, notify
from orders import services
from orders.models import ProvisioningJob
from portal import celery_app
from provisioning import runner
from tenants.models import Organisation, Profile, Role
from tests.components import port_open, process, stop, wait_until
from tests.conftest import World
from tests.factories import KommuneOrganisationFactory, MembershipFactory, OrganisationFactory
from tests.integration import RedisServer
from tests.notifications.smtp import Mailer, SMTPServer, mailer_env
from tests.provisioning.stack import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _waiting_order(kommune: Organisation) -> None:
    """What an order that waits for the kommune says (orders.services says it the same way)."""
    with transaction.atomic():
        notify(
            kind="request_waiting",
            organisation=kommune,
            roles=[Role.KOMMUNE_ADMIN],
            params={
                "vendor": "Trygghet & Co AS",
                "client": "Trygghet Alarm",
                "kommune": kommune.name,
                "total": 1,
                "items": [{"service": {"nb": "Pasient", "en": "Patient"}, "access": "read"}],
            },
            link="orders:approvals",
        )


def test_each_admin_gets_the_e_mail_in_their_own_language_and_nobody_else_gets_one(
    mailer: SMTPServer,
) -> None:
    kommune = KommuneOrganisationFactory()
    bokmal = MembershipFactory(organisation=kommune, role=Role.KOMMUNE_ADMIN)
    english = MembershipFactory(organisation=kommune, role=Role.KOMMUNE_ADMIN)
    Profile.objects.create(user=english.user, language="en")
    reader = MembershipFactory(organisation=kommune, role=Role.KOMMUNE_READER)
    elsewhere = MembershipFactory(
        organisation=KommuneOrganisationFactory(), role=Role.KOMMUNE_ADMIN
    )

    _waiting_order(kommune)

    in_english = mailer.message_to(english.email)
    in_bokmal = mailer.message_to(bokmal.email)
    assert in_english.subject == f"Trygghet & Co AS asks for access to data of {kommune.name}"
    assert "Patient (read)" in in_english.body
    assert in_bokmal.subject == f"Trygghet & Co AS ber om tilgang til data i {kommune.name}"
    assert "Pasient (lese)" in in_bokmal.body
    link = f"{settings.PORTAL_URL}/o/{kommune.orgnr}/approvals/"
    assert link in in_english.body
    assert link in in_bokmal.body
    assert in_english.message["Content-Language"] == "en"
    assert in_bokmal.message["Content-Language"] == "nb"
    wait_for(
        lambda: Notification.objects.filter(email_status=EmailStatus.SENT).count() == 2,
        timeout=10,
        what="both recorded as sent",
    )
    assert mailer.received(reader.email) == []
    assert mailer.received(elsewhere.email) == []
    assert len(mailer.received()) == 2


def test_an_e_mail_waits_while_the_smtp_server_is_down_and_arrives_when_it_is_back(
    mailer: SMTPServer,
) -> None:
    kommune = KommuneOrganisationFactory()
    admin = MembershipFactory(organisation=kommune, role=Role.KOMMUNE_ADMIN)
    mailer.stop()

    _waiting_order(kommune)

    notification = Notification.objects.get(recipient=admin.user)
    wait_for(
        lambda: Notification.objects.get(pk=notification.pk).email_attempts >= 2,
        timeout=30,
        what="the mailer tried and tries again",
    )
    notification.refresh_from_db()
    assert notification.email_status == EmailStatus.PENDING
    assert "Connection refused" in notification.email_error
    mailer.start()
    received = mailer.message_to(admin.email)
    assert kommune.name in received.subject
    wait_for(
        lambda: Notification.objects.get(pk=notification.pk).email_status == EmailStatus.SENT,
        timeout=10,
        what="recorded as sent",
    )
    assert len(mailer.received()) == 1  # once, however many attempts it took


def _reset_pools() -> None:
    pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def own_broker(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisServer]:
    """This process publishes to the test's own Redis, which the test stops and starts."""
    _reset_pools()
    monkeypatch.setattr(celery_app.conf, "broker_write_url", redis_server.url)
    yield redis_server
    _reset_pools()


def _redis_again(server: RedisServer, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    args = ["redis-server", "--bind", "127.0.0.1", "--port", str(server.port)]
    args += ["--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    with process(args, log=tmp_path / "redis-again.log") as proc:
        wait_until(lambda: port_open(server.port), timeout=10, what="redis again")
        yield proc


def test_a_notification_written_while_the_broker_is_down_is_sent_by_the_sweep_later(
    own_broker: RedisServer,
    smtp_server: SMTPServer,
    mailer_process: Mailer,
    tmp_path: Path,
    settings: Any,
) -> None:
    mailer_process.start(mailer_env(smtp_server, broker_url=own_broker.url))
    vendor = OrganisationFactory(kind=Organisation.Kind.VENDOR)
    admin = MembershipFactory(organisation=vendor, role=Role.VENDOR_ADMIN)
    stop(own_broker.proc)

    with transaction.atomic():
        notify(
            kind="vendor_suspended",
            organisation=vendor,
            roles=[Role.VENDOR_ADMIN],
            params={"vendor": vendor.name, "reason": "Unpaid invoices", "grants": 3},
            link="orders:dashboard",
        )

    notification = Notification.objects.get(recipient=admin.user)
    assert notification.email_status == EmailStatus.PENDING
    assert notification.email_queued_at is None  # not sent: the sweep's to send
    again = _redis_again(own_broker, tmp_path)
    next(again)
    try:
        _reset_pools()
        assert emails_sweep() == 1
        received = smtp_server.message_to(admin.email, timeout=60)
        assert vendor.name in received.subject
        assert "Unpaid invoices" in received.body
    finally:
        again.close()


def test_orders_decisions_failures_and_suspension_arrive_at_the_smtp_server(
    mailer: SMTPServer, world: World
) -> None:
    people = world.people
    services.delegation_revoke(delegation=world.delegation, actor=people["kommune_admin"])
    order = world.order("patient.read")
    services.access_request_approve(request=order, actor=people["kommune_admin"])
    job = ProvisioningJob.objects.create(
        client=world.client,
        reason="grant.approved",
        status=ProvisioningJob.Status.RUNNING,
        attempts=10,
        lease_token=uuid.uuid4(),
    )
    runner._fail(ProvisioningJob.objects.select_related("client__vendor").get(pk=job.pk), "boom")
    services.vendor_suspend(vendor=world.vendor, actor=people["nhn_operator"], reason="Unpaid")

    waiting = mailer.message_to(people["kommune_admin"].email)
    assert waiting.subject == (
        f"{world.vendor.name} ber om tilgang til data i {world.kommune.name}"
    )
    operator = mailer.message_to(people["nhn_operator"].email)
    assert operator.subject == (
        f"Klargjøringen av {world.client.name} ({world.vendor.name}) feilet"
    )
    vendor_admin = people["vendor_admin"].email
    subjects = mailer.wait_for(
        lambda received: (
            len([m for m in received if vendor_admin in m.to]) == 3
            and sorted(m.subject for m in received if vendor_admin in m.to)
        ),
        what="the vendor's three e-mails",
    )
    assert subjects == sorted(
        [
            f"{world.kommune.name} har avgjort bestillingen deres for {world.client.name}",
            f"Klargjøring av tilgang for {world.client.name} feilet",
            f"NHN har suspendert {world.vendor.name}",
        ]
    )
    assert mailer.received(people["vendor_developer"].email) == []
    assert mailer.received(people["nhn_auditor"].email) == []
