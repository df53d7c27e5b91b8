"""NHN operators bootstrap an organisation's first admin, and only that."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tenants import services
from tenants.models import Membership, Organisation, Role
from tests.factories import KommuneOrganisationFactory, MembershipFactory, UserFactory
from tests.keys import rsa_public_jwk

pytestmark = pytest.mark.django_db


def as_(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def invite(user: Any, organisation: Organisation, email: str, role: str) -> Any:
    return as_(user).post(
        "/api/v1/memberships/",
        {"organisation": organisation.orgnr, "email": email, "role": role},
        format="json",
    )


@pytest.mark.parametrize(
    ("where", "role"), [("kommune", "kommune_admin"), ("vendor", "vendor_admin")]
)
def test_an_nhn_operator_cannot_make_themselves_admin_where_there_is_an_admin(
    people: dict[str, Any], kommune: Organisation, vendor: Organisation, where: str, role: str
) -> None:
    organisation = {"kommune": kommune, "vendor": vendor}[where]
    operator = people["nhn_operator"]

    response = invite(operator, organisation, operator.username, role)

    assert response.status_code == 403, response.json()
    assert not Membership.objects.filter(organisation=organisation, user=operator).exists()


def test_an_nhn_operator_cannot_make_anyone_else_admin_where_there_is_an_admin(
    people: dict[str, Any], kommune: Organisation
) -> None:
    response = invite(people["nhn_operator"], kommune, "friend@example.test", "kommune_admin")

    assert response.status_code == 403
    assert not Membership.objects.filter(email="friend@example.test").exists()


def test_an_nhn_operator_cannot_promote_a_member_where_there_is_an_admin(
    people: dict[str, Any], vendor: Organisation
) -> None:
    developer = Membership.objects.get(organisation=vendor, role=Role.VENDOR_DEVELOPER)

    response = as_(people["nhn_operator"]).patch(
        f"/api/v1/memberships/{developer.pk}/", {"role": "vendor_admin"}, format="json"
    )

    assert response.status_code == 403
    developer.refresh_from_db()
    assert developer.role == Role.VENDOR_DEVELOPER


def test_an_nhn_operator_invites_nobody_but_the_first_admin(
    people: dict[str, Any], kommune: Organisation
) -> None:
    """A vendor developer may rotate the vendor's keys: appointing one is the admins' call too."""
    fresh = KommuneOrganisationFactory()

    into_administered = invite(people["nhn_operator"], kommune, "r@example.test", "kommune_reader")
    into_fresh = invite(people["nhn_operator"], fresh, "r@example.test", "kommune_reader")

    assert into_administered.status_code == 403
    assert into_fresh.status_code == 403
    assert not Membership.objects.filter(email="r@example.test").exists()


def test_the_service_refuses_it_too(people: dict[str, Any], kommune: Organisation) -> None:
    with pytest.raises(PermissionDenied):
        services.membership_invite(
            organisation=kommune,
            email="friend@example.test",
            role=Role.KOMMUNE_ADMIN,
            actor=people["nhn_operator"],
        )


def test_an_nhn_operator_bootstraps_the_first_admin_and_that_is_audited_as_a_bootstrap(
    people: dict[str, Any],
) -> None:
    fresh = KommuneOrganisationFactory()

    response = invite(people["nhn_operator"], fresh, "first@fresh.example", "kommune_admin")

    assert response.status_code == 201, response.json()
    event = AuditEvent.objects.get(object_id=response.json()["id"])
    assert event.action == "membership.bootstrapped"
    assert event.after["bootstrap"] is True
    assert event.actor_id == people["nhn_operator"].pk


def test_once_the_first_admin_has_logged_in_the_operator_bootstraps_no_more(
    people: dict[str, Any],
) -> None:
    """A mistyped first invitation may be followed by another while nobody has logged in."""
    fresh = KommuneOrganisationFactory()
    operator = people["nhn_operator"]

    mistyped = invite(operator, fresh, "frist@fresh.example", "kommune_admin")
    corrected = invite(operator, fresh, "first@fresh.example", "kommune_admin")
    MembershipFactory(organisation=fresh, role=Role.KOMMUNE_ADMIN)  # the first admin, logged in
    third = invite(operator, fresh, operator.username, "kommune_admin")

    assert (mistyped.status_code, corrected.status_code, third.status_code) == (201, 201, 403)
    assert AuditEvent.objects.filter(action="membership.bootstrapped").count() == 2


def test_an_operator_of_nhn_still_appoints_colleagues_in_nhn(
    people: dict[str, Any], nhn: Organisation
) -> None:
    response = invite(people["nhn_operator"], nhn, "drift2@nhn.example", "nhn_operator")

    assert response.status_code == 201
    assert AuditEvent.objects.get(object_id=response.json()["id"]).action == "membership.invited"


# --- One predicate: a logged-in, active admin (review M5) ----------------------------------------


@pytest.fixture
def invited_admin(people: dict[str, Any], kommune: Organisation) -> Membership:
    """The kommune's logged-in admin has invited a second admin, who has not logged in yet."""
    response = invite(people["kommune_admin"], kommune, "second@kommune.example", "kommune_admin")
    assert response.status_code == 201, response.json()
    return Membership.objects.get(pk=response.json()["id"])


def test_an_operator_cannot_remove_the_admin_while_another_is_only_invited_then_bootstrap(
    people: dict[str, Any], kommune: Organisation, invited_admin: Membership
) -> None:
    """The repro: remove the logged-in admin, then "bootstrap" oneself past the invitation."""
    operator = people["nhn_operator"]
    admin = Membership.objects.get(organisation=kommune, user=people["kommune_admin"])

    removed = as_(operator).delete(f"/api/v1/memberships/{admin.pk}/")
    bootstrapped = invite(operator, kommune, operator.username, "kommune_admin")

    assert removed.status_code == 403, removed.content
    assert bootstrapped.status_code == 403, bootstrapped.content
    assert Membership.objects.filter(pk=admin.pk).exists()
    assert not Membership.objects.filter(organisation=kommune, user=operator).exists()
    assert not AuditEvent.objects.filter(action="membership.bootstrapped").exists()


@pytest.mark.parametrize("where", ["kommune", "vendor"])
def test_an_operator_removes_no_admin_of_an_administered_organisation(
    people: dict[str, Any], kommune: Organisation, vendor: Organisation, where: str
) -> None:
    """Even when a second logged-in admin would stay: the admins are the organisation's call."""
    organisation = {"kommune": kommune, "vendor": vendor}[where]
    role = {"kommune": Role.KOMMUNE_ADMIN, "vendor": Role.VENDOR_ADMIN}[where]
    MembershipFactory(organisation=organisation, role=role)
    admin = Membership.objects.filter(organisation=organisation, role=role).first()
    assert admin is not None

    response = as_(people["nhn_operator"]).delete(f"/api/v1/memberships/{admin.pk}/")

    assert response.status_code == 403, response.content
    assert Membership.objects.filter(pk=admin.pk).exists()
    with pytest.raises(PermissionDenied):
        services.membership_remove(membership=admin, actor=people["nhn_operator"])


def test_an_operator_cannot_demote_an_admin_or_an_invited_admin(
    people: dict[str, Any], kommune: Organisation, invited_admin: Membership
) -> None:
    admin = Membership.objects.get(organisation=kommune, user=people["kommune_admin"])
    operator = as_(people["nhn_operator"])

    for membership in (admin, invited_admin):
        response = operator.patch(
            f"/api/v1/memberships/{membership.pk}/", {"role": "kommune_reader"}, format="json"
        )
        assert response.status_code == 403, response.content
        membership.refresh_from_db()
        assert membership.role == Role.KOMMUNE_ADMIN


def test_an_admin_cannot_leave_while_the_only_other_admin_is_invited_but_not_logged_in(
    people: dict[str, Any], kommune: Organisation, invited_admin: Membership
) -> None:
    """An open invitation is no admin: the last-admin rule counts as the bootstrap rule does."""
    me = Membership.objects.get(organisation=kommune, user=people["kommune_admin"])
    admin = as_(people["kommune_admin"])

    demote = admin.patch(f"/api/v1/memberships/{me.pk}/", {"role": "kommune_reader"}, format="json")
    leave = admin.delete(f"/api/v1/memberships/{me.pk}/")

    assert (demote.status_code, leave.status_code) == (409, 409), (demote.content, leave.content)
    me.refresh_from_db()
    assert me.role == Role.KOMMUNE_ADMIN


def test_once_the_invited_admin_has_logged_in_the_first_may_leave(
    people: dict[str, Any], kommune: Organisation, invited_admin: Membership
) -> None:
    services.memberships_bind(
        user=UserFactory(username="second@kommune.example"), identity="second@kommune.example"
    )
    me = Membership.objects.get(organisation=kommune, user=people["kommune_admin"])

    response = as_(people["kommune_admin"]).delete(f"/api/v1/memberships/{me.pk}/")

    assert response.status_code == 204, response.content


def test_an_admin_withdraws_an_open_admin_invitation(
    people: dict[str, Any], kommune: Organisation, invited_admin: Membership
) -> None:
    response = as_(people["kommune_admin"]).delete(f"/api/v1/memberships/{invited_admin.pk}/")

    assert response.status_code == 204, response.content


def test_a_deactivated_admin_is_no_admin_so_the_operator_may_bootstrap_a_new_one(
    people: dict[str, Any], kommune: Organisation
) -> None:
    """The way back in for a kommune whose only admin has left: their account is disabled."""
    admin = people["kommune_admin"]
    admin.is_active = False
    admin.save(update_fields=["is_active"])
    operator = people["nhn_operator"]
    gone = Membership.objects.get(organisation=kommune, user=admin)

    removed = as_(operator).delete(f"/api/v1/memberships/{gone.pk}/")
    bootstrapped = invite(operator, kommune, "new@kommune.example", "kommune_admin")

    assert (removed.status_code, bootstrapped.status_code) == (204, 201)
    event = AuditEvent.objects.get(object_id=bootstrapped.json()["id"])
    assert event.action == "membership.bootstrapped"


def test_an_operator_withdraws_a_mistyped_first_invitation(people: dict[str, Any]) -> None:
    fresh = KommuneOrganisationFactory()
    operator = people["nhn_operator"]
    mistyped = invite(operator, fresh, "frist@fresh.example", "kommune_admin")

    removed = as_(operator).delete(f"/api/v1/memberships/{mistyped.json()['id']}/")

    assert removed.status_code == 204, removed.content
    assert not Membership.objects.filter(organisation=fresh).exists()


def test_an_automation_client_with_the_admin_role_is_no_person_who_administers(
    people: dict[str, Any], kommune: Organisation
) -> None:
    """Otherwise: the admin leaves, an operator removes the client (operators may remove any
    client), and the kommune "has no admin", so the operator bootstraps themselves."""
    admin = people["kommune_admin"]
    operator = people["nhn_operator"]
    registered = as_(admin).post(
        "/api/v1/clients/",
        {
            "name": "Pipeline",
            "purpose": "portal_api",
            "organisation": kommune.orgnr,
            "role": "kommune_admin",
            "jwks": {"keys": [rsa_public_jwk("pipeline-1")]},
        },
        format="json",
    )
    assert registered.status_code == 201, registered.content
    me = Membership.objects.get(organisation=kommune, user=admin)

    leave = as_(admin).delete(f"/api/v1/memberships/{me.pk}/")
    removed = as_(operator).delete(f"/api/v1/clients/{registered.json()['id']}/")
    bootstrapped = invite(operator, kommune, operator.username, "kommune_admin")

    assert leave.status_code == 409, leave.content
    assert removed.status_code == 204, removed.content
    assert bootstrapped.status_code == 403, bootstrapped.content
    assert not Membership.objects.filter(organisation=kommune, user=operator).exists()
