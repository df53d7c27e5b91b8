"""People (memberships) and the EPJ switch plan through the API."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tenants.models import Membership, Organisation, Product, Role
from tests.factories import MembershipFactory, ProductFactory

pytestmark = pytest.mark.django_db


def as_(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_an_admin_invites_changes_the_role_of_and_removes_a_person(
    people: dict[str, Any], kommune: Organisation
) -> None:
    admin = as_(people["kommune_admin"])

    invited = admin.post(
        "/api/v1/memberships/",
        {"organisation": kommune.orgnr, "email": "Ola@Kommune.example", "role": "kommune_reader"},
        format="json",
    )
    assert invited.status_code == 201, invited.json()
    assert invited.json()["email"] == "ola@kommune.example"
    assert invited.json()["status"] == "invited"
    url = f"/api/v1/memberships/{invited.json()['id']}/"

    promoted = admin.patch(url, {"role": "kommune_admin"}, format="json")
    assert promoted.status_code == 200
    assert promoted.json()["role"] == "kommune_admin"

    removed = admin.delete(url)
    assert removed.status_code == 204
    assert not Membership.objects.filter(email="ola@kommune.example").exists()
    actions = list(
        AuditEvent.objects.filter(object_id=invited.json()["id"]).values_list("action", flat=True)
    )
    assert sorted(actions) == [
        "membership.invited",
        "membership.removed",
        "membership.role_changed",
    ]


def test_a_role_the_organisation_does_not_give_is_a_field_error(
    people: dict[str, Any], kommune: Organisation
) -> None:
    response = as_(people["kommune_admin"]).post(
        "/api/v1/memberships/",
        {"organisation": kommune.orgnr, "email": "x@k.example", "role": "vendor_admin"},
        format="json",
    )
    assert response.status_code == 400
    assert "role" in response.json()


def test_nobody_grants_a_role_above_their_own(people: dict[str, Any], nhn: Organisation) -> None:
    """An NHN operator may appoint another; an NHN auditor (a reader) may not appoint anyone."""
    operator = as_(people["nhn_operator"]).post(
        "/api/v1/memberships/",
        {"organisation": nhn.orgnr, "email": "drift2@nhn.example", "role": "nhn_operator"},
        format="json",
    )
    auditor = as_(people["nhn_auditor"]).post(
        "/api/v1/memberships/",
        {"organisation": nhn.orgnr, "email": "drift3@nhn.example", "role": "nhn_operator"},
        format="json",
    )
    assert operator.status_code == 201
    assert auditor.status_code == 403
    assert not Membership.objects.filter(email="drift3@nhn.example").exists()


def test_a_reader_cannot_remove_someone_ranked_above_them(
    people: dict[str, Any], kommune: Organisation, nhn: Organisation
) -> None:
    from django.core.exceptions import PermissionDenied

    from tenants import services

    operator = MembershipFactory(organisation=nhn, role=Role.NHN_OPERATOR)
    with pytest.raises(PermissionDenied, match="står over deg"):
        services.membership_remove(membership=operator, actor=people["nhn_auditor"])
    assert Membership.objects.filter(pk=operator.pk).exists()


def test_the_last_administrator_stays(people: dict[str, Any], kommune: Organisation) -> None:
    only = Membership.objects.get(organisation=kommune, role=Role.KOMMUNE_ADMIN)
    admin = as_(people["kommune_admin"])

    demote = admin.patch(
        f"/api/v1/memberships/{only.pk}/", {"role": "kommune_reader"}, format="json"
    )
    remove = admin.delete(f"/api/v1/memberships/{only.pk}/")

    assert demote.status_code == 409
    assert remove.status_code == 409
    only.refresh_from_db()
    assert only.role == Role.KOMMUNE_ADMIN


def test_an_nhn_operator_bootstraps_the_first_admin_of_a_new_organisation(
    people: dict[str, Any],
) -> None:
    operator = as_(people["nhn_operator"])
    created = operator.post(
        "/api/v1/organizations/",
        {"orgnr": "964967636", "name": "Tromsø kommune", "kind": "kommune", "kommune": "5501"},
        format="json",
    )
    invited = operator.post(
        "/api/v1/memberships/",
        {"organisation": "964967636", "email": "admin@tromso.example", "role": "kommune_admin"},
        format="json",
    )
    assert created.status_code == 201
    assert invited.status_code == 201


def test_a_kommune_admin_records_the_epj_and_its_planned_switch(
    people: dict[str, Any], kommune: Organisation
) -> None:
    journal = ProductFactory(system_type=Product.SystemType.EPJ, name="Journal EPJ")
    epic = ProductFactory(system_type=Product.SystemType.EPJ, name="Epic", is_epic=True)
    admin = as_(people["kommune_admin"])

    response = admin.put(
        f"/api/v1/organizations/{kommune.orgnr}/epj/",
        {
            "epj_product": str(journal.pk),
            "switch_product": str(epic.pk),
            "switch_date": "2027-03-01",
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["epj_product"]["name"] == "Journal EPJ"
    assert body["epj_switch"] == {
        "product": {
            "id": str(epic.pk),
            "name": "Epic",
            "system_type": "EPJ",
            "is_epic": True,
            "vendor": epic.vendor.orgnr,
        },
        "date": "2027-03-01",
    }
    kommune.refresh_from_db()
    assert kommune.epj_for("test") == epic
    assert kommune.epj_for("production", on=datetime.date(2027, 2, 28)) == journal
    assert kommune.epj_for("production", on=datetime.date(2027, 3, 1)) == epic


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"epj_product": None, "switch_product": "VFT"}, "switch_product"),
        ({"epj_product": None, "switch_date": "2027-03-01"}, "switch_date"),
        ({"epj_product": "VFT"}, "epj_product"),
    ],
)
def test_an_epj_plan_must_name_epj_products_and_a_complete_switch(
    people: dict[str, Any], kommune: Organisation, body: dict[str, Any], field: str
) -> None:
    vft = ProductFactory(system_type=Product.SystemType.VFT)
    body = {k: (str(vft.pk) if v == "VFT" else v) for k, v in body.items()}
    response = as_(people["kommune_admin"]).put(
        f"/api/v1/organizations/{kommune.orgnr}/epj/", body, format="json"
    )
    assert response.status_code == 400, response.json()
    assert field in response.json()
    kommune.refresh_from_db()
    assert kommune.epj_switch_date is None
