"""The EPJ transition register: NHN's path per kommune, the risk list, filters, sorting, CSV and
the API; kommune admins keep their own row up to date (issue 13, point 9)."""

from __future__ import annotations

import csv
import datetime
import io
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from audit.models import AuditEvent
from orders.models import (
    AccessRequest,
    AccessRequestItem,
    Delegation,
    Grant,
    GrantStatus,
    ItemStatus,
    Service,
    ServiceAvailability,
)
from orders.transition import register_kommuner, register_rows
from tenants.models import Environment, Organisation, Product
from tenants.transition import EpjPath, epj_path
from tests.factories import (
    ClientFactory,
    DelegationFactory,
    GrantFactory,
    KommuneOrganisationFactory,
    ProductFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2026, 3, 1)
#: The services for any EPJ (the three Epic-only ones need a new EPJ verified as Epic).
FOR_ANY_EPJ = [
    "journaling",
    "patient",
    "episode-of-care",
    "care-plan",
    "observation",
    "medication-dispense",
]


def as_(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def plan(
    kommune: Organisation,
    *,
    uses_vkp: bool | None,
    switch: datetime.date | None,
    to: Product | None = None,
    now: Product | None = None,
) -> Organisation:
    """Record a kommune's plan directly (the service function is tested on its own below)."""
    kommune.uses_vkp = uses_vkp
    kommune.epj_product = now
    kommune.epj_switch_date = switch
    kommune.epj_switch_product = (to or ProductFactory(system_type="EPJ")) if switch else None
    kommune.save()
    return kommune


def row_of(kommune: Organisation, on: datetime.date = TODAY) -> Any:
    [row] = register_rows(Organisation.objects.filter(pk=kommune.pk), on=on)
    return row


# --- The rule -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("switch", "uses_vkp", "path"),
    [
        (None, True, EpjPath.NO_SWITCH),
        (None, None, EpjPath.NO_SWITCH),
        (datetime.date(2025, 10, 1), True, EpjPath.NEW_SERVICES),  # "2025/2026" in the webinar
        (datetime.date(2026, 1, 1), False, EpjPath.NEW_SERVICES),
        (datetime.date(2026, 12, 31), True, EpjPath.NEW_SERVICES),
        (datetime.date(2026, 12, 31), None, EpjPath.NEW_SERVICES),
        (datetime.date(2027, 1, 1), True, EpjPath.INTEGRATE_VKP),
        (datetime.date(2027, 1, 1), False, EpjPath.CONSIDER_VKP),
        (datetime.date(2027, 1, 1), None, EpjPath.VKP_UNKNOWN),
        (datetime.date(2031, 6, 30), True, EpjPath.INTEGRATE_VKP),
        (datetime.date(2031, 6, 30), False, EpjPath.CONSIDER_VKP),
    ],
)
def test_nhns_path_follows_the_year_of_the_switch_and_vkp(
    switch: datetime.date | None, uses_vkp: bool | None, path: EpjPath
) -> None:
    assert epj_path(switch_date=switch, uses_vkp=uses_vkp) == path


def test_the_last_year_of_the_new_services_path_is_one_setting(settings: Any) -> None:
    settings.TILGANG_NEW_SERVICES_YEAR = 2027

    assert epj_path(switch_date=datetime.date(2027, 12, 31), uses_vkp=True) == "new_services"
    assert epj_path(switch_date=datetime.date(2028, 1, 1), uses_vkp=True) == "integrate_vkp"
    assert (
        epj_path(switch_date=datetime.date(2028, 1, 1), uses_vkp=True, last_new_services_year=2028)
        == "new_services"
    )


# --- The risk -----------------------------------------------------------------------------------


def test_a_vkp_kommune_that_has_asked_for_nothing_relies_on_every_service_of_its_new_epj(
    kommune: Organisation,
) -> None:
    plan(kommune, uses_vkp=True, switch=datetime.date(2026, 9, 1))

    row = row_of(kommune)

    assert row.at_risk
    assert row.risk.assumed
    assert row.codes("relied_on") == FOR_ANY_EPJ
    assert row.codes("not_active") == FOR_ANY_EPJ
    # medication-dispense opens in production on 1 July 2026, before the switch: none opens after.
    assert row.codes("opens_after_switch") == []


def test_a_new_epj_verified_as_epic_adds_the_epic_only_services(kommune: Organisation) -> None:
    epic = ProductFactory(system_type="EPJ", is_epic=True)
    plan(kommune, uses_vkp=True, switch=datetime.date(2026, 9, 1), to=epic)

    assert len(row_of(kommune).codes("relied_on")) == Service.objects.count() == 9

    Product.objects.filter(pk=epic.pk).update(verified_at=None, verified_is_epic=False)
    assert row_of(kommune).codes("relied_on") == FOR_ANY_EPJ  # not verified: not counted as Epic


def test_the_services_asked_for_are_relied_on_and_active_grants_make_the_kommune_ready(
    kommune: Organisation,
) -> None:
    plan(kommune, uses_vkp=True, switch=datetime.date(2026, 9, 1))
    patient = GrantFactory(kommune=kommune, status=GrantStatus.PROVISIONING)
    DelegationFactory(kommune=kommune, services=[Service.objects.get(code="care-plan")])

    row = row_of(kommune)
    assert (row.codes("relied_on"), row.codes("not_active")) == (
        ["patient", "care-plan"],
        ["patient", "care-plan"],
    )
    assert not row.risk.assumed

    Grant.objects.filter(pk=patient.pk).update(status=GrantStatus.ACTIVE)
    GrantFactory(kommune=kommune, service=Service.objects.get(code="care-plan"))
    row = row_of(kommune)
    assert row.risk is not None
    assert not row.at_risk
    assert row.codes("not_active") == []


def test_a_grant_active_in_test_only_leaves_the_service_not_active(
    kommune: Organisation,
) -> None:
    plan(kommune, uses_vkp=True, switch=datetime.date(2026, 9, 1))
    GrantFactory(kommune=kommune, client=ClientFactory(environment=Environment.TEST))
    waiting = AccessRequest.objects.create(
        client=ClientFactory(), kommune=kommune, initiated_by="vendor", requested_by=UserFactory()
    )
    AccessRequestItem.objects.create(
        request=waiting,
        service=Service.objects.get(code="patient"),
        access="read",
        status=ItemStatus.AWAITING_KOMMUNE,
    )

    row = row_of(kommune)

    assert row.codes("relied_on") == ["patient"]  # the production order; the test grant is no ask
    assert row.codes("not_active") == ["patient"]


def test_rejected_items_and_revoked_delegations_are_not_relied_on(kommune: Organisation) -> None:
    plan(kommune, uses_vkp=True, switch=datetime.date(2026, 9, 1))
    refused = AccessRequest.objects.create(
        client=ClientFactory(), kommune=kommune, initiated_by="vendor", requested_by=UserFactory()
    )
    AccessRequestItem.objects.create(
        request=refused,
        service=Service.objects.get(code="patient"),
        access="write",
        status=ItemStatus.REJECTED,
    )
    revoked = DelegationFactory(kommune=kommune, services=[Service.objects.get(code="care-plan")])
    Delegation.objects.filter(pk=revoked.pk).update(revoked_at=datetime.datetime.now(datetime.UTC))

    assert row_of(kommune).risk.assumed  # nothing counts as asked for: the whole catalogue


def test_a_service_that_opens_in_production_after_the_switch_is_named(
    kommune: Organisation,
) -> None:
    plan(kommune, uses_vkp=True, switch=datetime.date(2026, 9, 1))
    GrantFactory(kommune=kommune, status=GrantStatus.PENDING)  # asks for patient
    DelegationFactory(kommune=kommune, services=[Service.objects.get(code="observation")])
    ServiceAvailability.objects.filter(
        service__code="patient", environment=Environment.PRODUCTION
    ).update(available_from=datetime.date(2026, 9, 2))
    ServiceAvailability.objects.filter(
        service__code="observation", environment=Environment.PRODUCTION
    ).delete()  # not planned at all

    row = row_of(kommune)

    assert row.codes("not_active") == ["patient", "observation"]
    assert row.codes("opens_after_switch") == ["patient", "observation"]

    ServiceAvailability.objects.filter(
        service__code="patient", environment=Environment.PRODUCTION
    ).update(available_from=datetime.date(2026, 9, 1))  # the switch day itself is in time
    assert row_of(kommune).codes("opens_after_switch") == ["observation"]


@pytest.mark.parametrize(
    ("uses_vkp", "switch"),
    [(False, datetime.date(2026, 9, 1)), (None, datetime.date(2026, 9, 1)), (True, None)],
)
def test_the_risk_applies_only_to_vkp_kommuner_with_a_switch(
    kommune: Organisation, uses_vkp: bool | None, switch: datetime.date | None
) -> None:
    plan(kommune, uses_vkp=uses_vkp, switch=switch)

    row = row_of(kommune)

    assert row.risk is None
    assert not row.at_risk


# --- A country of four kommuner -------------------------------------------------------------------


@pytest.fixture
def country(people: dict[str, Any], kommune: Organisation, other_kommune: Organisation) -> Any:
    """Oslo (the people's kommune, 03): VKP, switching in 2026, nothing asked: at risk.
    Eigersund (the other kommune, 11): no VKP, switching in 2027. Stavanger (11): VKP, switching
    in 2028, its one service active: ready. Haugesund (11): nothing recorded."""
    profil = ProductFactory(system_type="EPJ", name="Profil")
    gerica = ProductFactory(system_type="EPJ", name="=Gerica")  # a name that looks like a formula
    stavanger, haugesund = KommuneOrganisationFactory(), KommuneOrganisationFactory()
    plan(kommune, uses_vkp=True, switch=datetime.date(2026, 9, 1), to=gerica, now=profil)
    plan(other_kommune, uses_vkp=False, switch=datetime.date(2027, 2, 1), to=gerica)
    plan(stavanger, uses_vkp=True, switch=datetime.date(2028, 1, 1), to=gerica, now=profil)
    GrantFactory(kommune=stavanger)
    return {
        "oslo": kommune,
        "eigersund": other_kommune,
        "stavanger": stavanger,
        "haugesund": haugesund,
        "profil": profil,
    }


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["Oslo", "Eigersund", "Stavanger", "Haugesund"]),  # by switch date, none last
        ("sort=-switch", ["Stavanger", "Eigersund", "Oslo", "Haugesund"]),
        ("sort=kommune", ["Eigersund", "Haugesund", "Oslo", "Stavanger"]),
        ("sort=risk", ["Oslo", "Stavanger", "Eigersund", "Haugesund"]),
        ("path=new_services", ["Oslo"]),
        ("path=consider_vkp", ["Eigersund"]),
        ("path=integrate_vkp", ["Stavanger"]),
        ("path=no_switch", ["Haugesund"]),
        ("vkp=yes", ["Oslo", "Stavanger"]),
        ("vkp=no", ["Eigersund"]),
        ("vkp=unknown", ["Haugesund"]),
        ("risk=true", ["Oslo"]),
        ("county=03", ["Oslo"]),
        ("county=11", ["Eigersund", "Stavanger", "Haugesund"]),
        ("epj=none", ["Eigersund", "Haugesund"]),
        ("q=stav", ["Stavanger"]),
        ("q=1103", ["Stavanger"]),
        ("vkp=yes&county=11", ["Stavanger"]),
    ],
)
def test_the_register_filters_and_sorts(
    people: dict[str, Any], country: dict[str, Any], query: str, expected: list[str]
) -> None:
    response = as_(people["nhn_auditor"]).get(f"/api/v1/epj-register/?{query}")

    assert [name.removesuffix(" kommune") for name in names(response)] == expected


def test_the_register_filters_by_the_current_epj(
    people: dict[str, Any], country: dict[str, Any]
) -> None:
    response = as_(people["nhn_auditor"]).get(f"/api/v1/epj-register/?epj={country['profil'].pk}")

    assert names(response) == ["Oslo kommune", "Stavanger kommune"]


def test_a_row_in_the_api_says_the_path_and_the_risk(
    people: dict[str, Any], country: dict[str, Any]
) -> None:
    oslo = country["oslo"]

    response = as_(people["nhn_operator"]).get(f"/api/v1/epj-register/{oslo.orgnr}/")

    assert response.status_code == 200
    body = response.json()
    assert body["kommunenummer"] == "0301"
    assert body["fylke"] == "Oslo"
    assert body["epj_product"] == {
        "id": str(country["profil"].pk),
        "name": "Profil",
        "system_type": "EPJ",
        "is_epic": False,
        "vendor": country["profil"].vendor.orgnr,
    }  # as /api/v1/organizations/ names a product
    assert body["uses_vkp"] is True
    assert body["epj_switch"]["date"] == "2026-09-01"
    assert body["epj_switch"]["product"]["name"] == "=Gerica"
    assert (body["path"], body["at_risk"], body["relied_on_assumed"]) == (
        "new_services",
        True,
        True,
    )
    assert body["not_active"] == body["relied_on"]
    other = as_(people["nhn_operator"]).get(f"/api/v1/epj-register/{country['eigersund'].orgnr}/")
    assert (other.json()["at_risk"], other.json()["not_active"]) == (None, [])


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("nhn_auditor", ["Oslo", "Eigersund", "Stavanger", "Haugesund"]),
        ("nhn_operator", ["Oslo", "Eigersund", "Stavanger", "Haugesund"]),
        ("kommune_admin", ["Oslo"]),
        ("kommune_reader", ["Oslo"]),
        ("other_kommune_admin", ["Eigersund"]),
        ("vendor_admin", []),
    ],
)
def test_nhn_reads_every_row_and_a_kommune_its_own(
    people: dict[str, Any], country: dict[str, Any], who: str, expected: list[str]
) -> None:
    client = as_(people[who])

    assert [n.removesuffix(" kommune") for n in names(client.get("/api/v1/epj-register/"))] == (
        expected
    )
    for key in ("oslo", "eigersund"):
        found = client.get(f"/api/v1/epj-register/{country[key].orgnr}/").status_code
        assert found == (200 if country[key].name.removesuffix(" kommune") in expected else 404)


def test_bad_filters_are_a_400_with_field_errors(people: dict[str, Any]) -> None:
    response = as_(people["nhn_auditor"]).get(
        "/api/v1/epj-register/?path=soon&vkp=maybe&county=99&epj=x&sort=size"
    )

    assert response.status_code == 400
    assert set(response.json()) == {"path", "vkp", "county", "epj", "sort"}
    export = as_(people["nhn_auditor"]).get("/api/v1/epj-register/export/?path=soon")
    assert export.status_code == 400
    assert "path" in export.json()


def test_the_export_streams_the_filtered_rows_as_csv(
    people: dict[str, Any], country: dict[str, Any]
) -> None:
    response = as_(people["nhn_auditor"]).get(
        "/api/v1/epj-register/export/?vkp=yes", HTTP_ACCEPT="text/csv"
    )

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert text.splitlines()[0].startswith("kommunenummer,kommune,orgnr,fylke,")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["kommune"] for r in rows] == ["Oslo kommune", "Stavanger kommune"]
    oslo = rows[0]
    assert (oslo["kommunenummer"], oslo["fylke"], oslo["uses_vkp"]) == ("0301", "Oslo", "yes")
    assert (oslo["switch_date"], oslo["path"], oslo["at_risk"]) == (
        "2026-09-01",
        "new_services",
        "yes",
    )
    assert oslo["switch_product"] == "'=Gerica"  # a spreadsheet shows it, never runs it
    assert oslo["not_active"].split() == FOR_ANY_EPJ
    assert rows[1]["at_risk"] == "no"


def test_the_register_reads_the_same_number_of_queries_for_more_kommuner(
    people: dict[str, Any], country: dict[str, Any]
) -> None:
    client = as_(people["nhn_auditor"])

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/v1/epj-register/").status_code == 200
        return len(captured.captured_queries)

    before = queries()
    for _ in range(4):
        extra = plan(KommuneOrganisationFactory(), uses_vkp=True, switch=datetime.date(2026, 10, 1))
        GrantFactory(kommune=extra)
    assert queries() == before


# --- A kommune keeps its own row up to date ------------------------------------------------------


def test_a_kommune_admin_records_vkp_and_the_switch_in_their_own_row(
    people: dict[str, Any], kommune: Organisation
) -> None:
    gerica = ProductFactory(system_type="EPJ")
    admin = as_(people["kommune_admin"])

    response = admin.put(
        f"/api/v1/organizations/{kommune.orgnr}/epj/",
        {"epj_product": None, "switch_product": str(gerica.pk), "switch_date": "2027-05-01"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["uses_vkp"] is None  # not said yet
    assert admin.get(f"/api/v1/epj-register/{kommune.orgnr}/").json()["path"] == "vkp_unknown"

    response = admin.put(
        f"/api/v1/organizations/{kommune.orgnr}/epj/",
        {
            "epj_product": None,
            "switch_product": str(gerica.pk),
            "switch_date": "2027-05-01",
            "uses_vkp": True,
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    row = admin.get(f"/api/v1/epj-register/{kommune.orgnr}/").json()
    assert (row["uses_vkp"], row["path"]) == (True, "integrate_vkp")
    event = AuditEvent.objects.filter(action="kommune.epj_recorded").order_by("-id").first()
    assert event is not None
    assert (event.before["uses_vkp"], event.after["uses_vkp"]) == (None, True)
    assert event.organisation_id == kommune.pk
    # Left out, the answer stays; null clears it.
    admin.put(
        f"/api/v1/organizations/{kommune.orgnr}/epj/",
        {"epj_product": None, "switch_product": str(gerica.pk), "switch_date": "2027-06-01"},
        format="json",
    )
    kommune.refresh_from_db()
    assert (kommune.uses_vkp, kommune.epj_switch_date) == (True, datetime.date(2027, 6, 1))
    admin.put(
        f"/api/v1/organizations/{kommune.orgnr}/epj/",
        {"epj_product": None, "uses_vkp": None},
        format="json",
    )
    kommune.refresh_from_db()
    assert kommune.uses_vkp is None


@pytest.mark.parametrize(
    ("who", "expected"), [("other_kommune_admin", 404), ("kommune_reader", 403)]
)
def test_nobody_else_changes_a_kommunes_row(
    people: dict[str, Any], kommune: Organisation, who: str, expected: int
) -> None:
    response = as_(people[who]).put(
        f"/api/v1/organizations/{kommune.orgnr}/epj/",
        {"epj_product": None, "uses_vkp": True},
        format="json",
    )

    assert response.status_code == expected
    kommune.refresh_from_db()
    assert kommune.uses_vkp is None
    assert not AuditEvent.objects.filter(action="kommune.epj_recorded").exists()


def test_a_vkp_answer_that_is_not_yes_or_no_is_a_400(
    people: dict[str, Any], kommune: Organisation
) -> None:
    response = as_(people["kommune_admin"]).put(
        f"/api/v1/organizations/{kommune.orgnr}/epj/",
        {"epj_product": None, "uses_vkp": "sometimes"},
        format="json",
    )

    assert response.status_code == 400
    assert "uses_vkp" in response.json()


def test_only_a_kommune_has_a_vkp_answer(vendor: Organisation) -> None:
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    vendor.uses_vkp = False
    with pytest.raises(ValidationError, match="tenants_organisation_epj_only_kommune|kommune"):
        vendor.full_clean()
    with (
        pytest.raises(IntegrityError, match="tenants_organisation_epj_only_kommune"),
        transaction.atomic(),
    ):
        Organisation.objects.filter(pk=vendor.pk).update(uses_vkp=False)


def test_answering_vkp_alone_does_not_re_evaluate_access(
    people: dict[str, Any], kommune: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenants import services

    called: list[Any] = []
    monkeypatch.setattr(services, "policy_inputs_changed", called.append)

    services.kommune_epj_set(kommune=kommune, product=None, uses_vkp=True)
    assert called == []
    services.kommune_epj_set(kommune=kommune, product=ProductFactory(system_type="EPJ"))
    assert len(called) == 1
    kommune.refresh_from_db()
    assert kommune.uses_vkp is True  # left out: as it was


def test_the_register_lists_kommuner_only(people: dict[str, Any], country: dict[str, Any]) -> None:
    kommuner = register_kommuner(people["nhn_auditor"])

    assert {k.kind for k in kommuner} == {Organisation.Kind.KOMMUNE}
