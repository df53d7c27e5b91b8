from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from tenants.models import Organisation, Role
from tests.factories import KommuneOrganisationFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def orgnrs(response: Any) -> set[str]:
    return {row["orgnr"] for row in response.json()["results"]}


def test_a_member_sees_only_their_own_organisations(
    api_client: APIClient, people: dict[str, Any], kommune: Organisation, vendor: Organisation
) -> None:
    api_client.force_authenticate(people["kommune_admin"])

    response = api_client.get(reverse("organization-list"))

    assert response.status_code == 200
    assert orgnrs(response) == {kommune.orgnr}
    [row] = response.json()["results"]
    assert row["my_roles"] == [Role.KOMMUNE_ADMIN]
    assert row["kommune"]["number"] == kommune.kommune.number  # type: ignore[union-attr]


@pytest.mark.parametrize("who", ["nhn_operator", "nhn_auditor"])
def test_nhn_staff_see_every_organisation(
    api_client: APIClient, people: dict[str, Any], who: str
) -> None:
    api_client.force_authenticate(people[who])
    response = api_client.get(reverse("organization-list"))
    assert orgnrs(response) == set(Organisation.objects.values_list("orgnr", flat=True))


def test_an_organisation_is_named_by_orgnr(
    api_client: APIClient, people: dict[str, Any], vendor: Organisation
) -> None:
    api_client.force_authenticate(people["vendor_developer"])
    response = api_client.get(reverse("organization-detail", args=[vendor.orgnr]))
    assert response.status_code == 200
    assert response.json()["orgnr"] == vendor.orgnr
    assert response.json()["my_roles"] == [Role.VENDOR_DEVELOPER]


@pytest.mark.parametrize("who", ["other_kommune_admin", "vendor_admin", "other_vendor_admin"])
def test_outsiders_get_404_for_another_organisation(
    api_client: APIClient, people: dict[str, Any], kommune: Organisation, who: str
) -> None:
    api_client.force_authenticate(people[who])
    response = api_client.get(reverse("organization-detail", args=[kommune.orgnr]))
    assert response.status_code == 404


def test_anonymous_callers_are_refused(api_client: APIClient, kommune: Organisation) -> None:
    assert api_client.get(reverse("organization-list")).status_code == 401
    assert api_client.get(reverse("organization-detail", args=[kommune.orgnr])).status_code == 401


def test_the_list_costs_the_same_queries_for_10_or_200_organisations(
    api_client: APIClient, people: dict[str, Any]
) -> None:
    api_client.force_authenticate(people["nhn_operator"])

    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api_client.get(reverse("organization-list"), {"limit": 500}).status_code == 200
        return len(ctx.captured_queries)

    small = queries_for_list()
    for _ in range(190):
        KommuneOrganisationFactory()
    assert Organisation.objects.count() >= 195
    assert queries_for_list() == small


class TestRegistration:
    """NHN operators register organisations; bad input is a 400 that writes nothing."""

    url = reverse("organization-list")

    def test_an_operator_registers_a_kommune_from_the_register(
        self, api_client: APIClient, people: dict[str, Any]
    ) -> None:
        api_client.force_authenticate(people["nhn_operator"])
        response = api_client.post(
            self.url,
            {"orgnr": "964967636", "name": "Tromsø kommune", "kind": "kommune", "kommune": "5501"},
            format="json",
        )
        assert response.status_code == 201, response.json()
        assert response.json()["kommune"]["name"] == "Tromsø"
        assert Organisation.objects.get(orgnr="964967636").kommune_id == "5501"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"orgnr": "964967637", "name": "X", "kind": "vendor"}, "orgnr"),  # check digit
            ({"orgnr": "96496763", "name": "X", "kind": "vendor"}, "orgnr"),  # length
            ({"orgnr": "964967636", "name": "X", "kind": "kommune", "kommune": "9999"}, "kommune"),
            ({"orgnr": "964967636", "name": "X", "kind": "kommune"}, "kommune"),
            ({"orgnr": "964967636", "name": "X", "kind": "vendor", "kommune": "5501"}, "kommune"),
            ({"orgnr": "964967636", "name": "X", "kind": "bank"}, "kind"),
        ],
    )
    def test_bad_input_is_a_field_error_and_nothing_is_written(
        self, api_client: APIClient, people: dict[str, Any], body: dict[str, str], field: str
    ) -> None:
        api_client.force_authenticate(people["nhn_operator"])
        before = Organisation.objects.count()

        response = api_client.post(self.url, body, format="json")

        assert response.status_code == 400
        assert field in response.json(), response.json()
        assert Organisation.objects.count() == before

    def test_a_second_organisation_with_the_same_orgnr_is_refused(
        self, api_client: APIClient, people: dict[str, Any], vendor: Organisation
    ) -> None:
        api_client.force_authenticate(people["nhn_operator"])
        response = api_client.post(
            self.url, {"orgnr": vendor.orgnr, "name": "Copy", "kind": "vendor"}, format="json"
        )
        assert response.status_code == 400
        assert "orgnr" in response.json()
        vendor.refresh_from_db()
        assert vendor.name != "Copy"

    def test_a_kommune_cannot_be_registered_twice(
        self, api_client: APIClient, people: dict[str, Any], kommune: Organisation
    ) -> None:
        api_client.force_authenticate(people["nhn_operator"])
        body = {"orgnr": "964967636", "name": "Again", "kind": "kommune"}
        body["kommune"] = kommune.kommune.number  # type: ignore[union-attr]
        response = api_client.post(self.url, body, format="json")
        assert response.status_code == 400
        assert "kommune" in response.json()

    @pytest.mark.parametrize("who", ["nhn_auditor", "kommune_admin", "vendor_admin"])
    def test_only_operators_register(
        self, api_client: APIClient, people: dict[str, Any], who: str
    ) -> None:
        api_client.force_authenticate(people[who])
        response = api_client.post(
            self.url, {"orgnr": "964967636", "name": "X", "kind": "vendor"}, format="json"
        )
        assert response.status_code == 403
        assert not Organisation.objects.filter(orgnr="964967636").exists()


def test_is_staff_gives_no_role(api_client: APIClient, kommune: Organisation) -> None:
    staff = MembershipFactory(role=Role.VENDOR_DEVELOPER).user
    staff.is_staff = staff.is_superuser = True
    staff.save()
    api_client.force_authenticate(staff)
    response = api_client.get(reverse("organization-detail", args=[kommune.orgnr]))
    assert response.status_code == 404
