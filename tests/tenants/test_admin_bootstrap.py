"""NHN operators bootstrap an organisation's first admin, and only that."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tenants import services
from tenants.models import Membership, Organisation, Role
from tests.factories import KommuneOrganisationFactory, MembershipFactory

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
