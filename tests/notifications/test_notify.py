"""``notify``: whom a notice reaches, in which language, with which link; once means once; and the
e-mails go to the mailer's queue only after COMMIT."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from notifications import services
from notifications.models import EmailStatus, Notice, Notification
from notifications.services import notifications_batched, notify
from tenants.models import Membership, Organisation, Profile, Role
from tests.factories import KommuneOrganisationFactory, MembershipFactory, OrganisationFactory
from tests.keys import jwks, rsa_public_jwk

pytestmark = pytest.mark.django_db


def _waiting(kommune: Organisation, **kw: Any) -> None:
    notify(
        kind="request_waiting",
        organisation=kommune,
        roles=[Role.KOMMUNE_ADMIN],
        params={"vendor": "V", "client": "C", "kommune": kommune.name, "total": 0, "items": []},
        link="orders:approval",
        link_args={"pk": "5b9c3a0e-0000-4000-8000-000000000000"},
        **kw,
    )


def _recipients() -> set[Any]:
    return set(Notification.objects.values_list("recipient_id", flat=True))


def test_a_notice_reaches_the_bound_admins_of_its_organisation_only(
    people: dict[str, User], kommune: Organisation, vendor: Organisation
) -> None:
    MembershipFactory(organisation=kommune, role=Role.KOMMUNE_ADMIN, user=None)  # invited only
    retired = MembershipFactory(organisation=kommune, role=Role.KOMMUNE_ADMIN).user
    retired.is_active = False
    retired.save()

    _waiting(kommune)

    assert _recipients() == {people["kommune_admin"].pk}
    notification = Notification.objects.get()
    assert notification.organisation == kommune
    assert notification.link == (
        f"/o/{kommune.orgnr}/approvals/5b9c3a0e-0000-4000-8000-000000000000/"
    )
    assert notification.email == people["kommune_admin"].email
    assert notification.language == "nb"
    assert notification.email_status == EmailStatus.PENDING
    assert notification.read_at is None


def test_an_automation_clients_account_is_told_nothing(vendor: Organisation) -> None:
    from orders.services import automation_client_register

    admin = MembershipFactory(organisation=vendor, role=Role.VENDOR_ADMIN).user
    automation_client_register(
        organisation=vendor,
        name="Pipeline",
        role=Role.VENDOR_ADMIN,
        jwks=jwks(rsa_public_jwk("p", seed=3)),
        actor=admin,
    )
    assert Membership.objects.filter(organisation=vendor).count() == 2

    notify(
        kind="vendor_suspended",
        organisation=vendor,
        roles=[Role.VENDOR_ADMIN],
        params={"vendor": vendor.name, "reason": "r", "grants": 0},
    )

    assert _recipients() == {admin.pk}


def test_without_an_organisation_it_reaches_everyone_with_the_role_once(
    people: dict[str, User], nhn: Organisation
) -> None:
    second_nhn = OrganisationFactory(kind=Organisation.Kind.OPERATOR)
    twice = people["nhn_operator"]
    MembershipFactory(organisation=second_nhn, role=Role.NHN_OPERATOR, user=twice)
    other = MembershipFactory(organisation=second_nhn, role=Role.NHN_OPERATOR).user

    notify(
        kind="reconciler_healed",
        organisation=None,
        roles=[Role.NHN_OPERATOR],
        params={"total": 1, "heals": []},
        link="tenants:audit",
    )

    assert sorted(Notification.objects.values_list("recipient_id", flat=True)) == sorted(
        [twice.pk, other.pk]
    )
    notice = Notice.objects.get()
    assert notice.organisation is None


def test_each_person_gets_it_in_the_language_they_chose(
    people: dict[str, User], kommune: Organisation
) -> None:
    Profile.objects.create(user=people["kommune_admin"], language="en")

    _waiting(kommune)

    assert Notification.objects.get().language == "en"


def test_once_means_once_and_nobody_to_tell_writes_nothing(
    people: dict[str, User], kommune: Organisation
) -> None:
    empty = KommuneOrganisationFactory()
    _waiting(empty, once="nobody")
    assert not Notice.objects.exists()

    _waiting(kommune, once="first")
    _waiting(kommune, once="first")
    with notifications_batched():
        _waiting(kommune, once="second")
        _waiting(kommune, once="second")

    assert Notice.objects.filter(once="first").count() == 1
    assert Notice.objects.filter(once="second").count() == 1
    assert Notification.objects.count() == 2
    _waiting(empty, once="nobody")  # once someone is there to hear it, it may still be said
    MembershipFactory(organisation=empty, role=Role.KOMMUNE_ADMIN)
    _waiting(empty, once="nobody")
    assert Notice.objects.filter(once="nobody").count() == 1


def test_an_unknown_kind_is_refused(kommune: Organisation) -> None:
    with pytest.raises(ValueError, match="unknown notification kind"):
        notify(kind="nonsense", organisation=kommune, roles=[Role.KOMMUNE_ADMIN])


def test_a_batch_for_many_kommuner_writes_in_a_few_statements(db: Any) -> None:
    kommuner = [KommuneOrganisationFactory() for _ in range(20)]
    for kommune in kommuner:
        MembershipFactory(organisation=kommune, role=Role.KOMMUNE_ADMIN)
        MembershipFactory(organisation=kommune, role=Role.KOMMUNE_ADMIN)

    with CaptureQueriesContext(connection) as queries, notifications_batched():
        for kommune in kommuner:
            _waiting(kommune)

    assert Notification.objects.count() == 40
    assert Notice.objects.count() == 20
    assert len(queries) <= 4, [q["sql"][:80] for q in queries]


def test_the_e_mails_are_sent_only_after_commit_and_the_sweep_sends_what_was_not(
    people: dict[str, User], kommune: Organisation, django_capture_on_commit_callbacks: Any
) -> None:
    with mock.patch.object(services.current_app, "send_task") as send_task:
        with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
            _waiting(kommune)
        assert send_task.call_count == 0
        for callback in callbacks:
            callback()
        assert send_task.call_count == 1
        (name,) = send_task.call_args.args
        assert name == "notifications.email_send"
        [ids] = send_task.call_args.kwargs["args"]
        assert ids == [str(Notification.objects.get().pk)]

        send_task.side_effect = ConnectionRefusedError
        for callback in callbacks:
            callback()
        assert Notification.objects.get().email_queued_at is None

        send_task.side_effect = None
        with django_capture_on_commit_callbacks(execute=True):
            assert services.emails_sweep() == 1
        assert send_task.call_count == 3
        assert Notification.objects.get().email_queued_at is not None
        with django_capture_on_commit_callbacks(execute=True):
            assert services.emails_sweep() == 0  # just published: not again yet
