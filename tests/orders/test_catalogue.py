"""The catalogue against DESIGN.md section 3, written out here, not read from the migration."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from orders.models import Service

pytestmark = pytest.mark.django_db

Q1, Q2, Q3 = datetime.date(2026, 1, 1), datetime.date(2026, 4, 1), datetime.date(2026, 7, 1)

# code, FHIR resource, read by, written by, EPJ requirement, available from (test and production)
EXPECTED = [
    ("journaling", "Bundle (Composition document)", ["EPJ"], ["VFT"], "any", Q1),
    ("patient", "Patient", ["VFT"], ["EPJ"], "any", Q1),
    ("episode-of-care", "EpisodeOfCare", ["VFT"], ["EPJ"], "any", Q2),
    ("care-plan", "CarePlan", ["VFT"], ["EPJ"], "any", Q2),
    ("observation", "Observation", ["EPJ"], ["VFT", "DHO"], "any", Q2),
    ("medication-dispense", "MedicationDispense", ["EPJ"], ["VFT"], "any", Q3),
    ("allergy-intolerance", "AllergyIntolerance", ["VFT"], ["EPJ"], "epic", Q3),
    ("condition", "Condition", ["VFT"], ["EPJ"], "epic", Q3),
    ("medication-statement", "MedicationStatement", ["VFT"], ["EPJ"], "epic", Q3),
]


def test_the_catalogue_matches_the_roadmap_row_by_row() -> None:
    services = list(Service.objects.with_availability())
    assert [s.code for s in services] == [row[0] for row in EXPECTED]
    for service, (code, fhir, read_by, write_by, epj, start) in zip(
        services, EXPECTED, strict=True
    ):
        assert service.fhir_resource == fhir, code
        assert service.read_scope == f"nhn:ksp/{code}.read"
        assert service.write_scope == f"nhn:ksp/{code}.write"
        assert sorted(service.readable_by) == sorted(read_by), code
        assert sorted(service.writable_by) == sorted(write_by), code
        assert service.epj_requirement == epj, code
        assert service.available_from("test") == start, code
        assert service.available_from("production") == start, code


def test_direction_is_policy_a_vft_may_read_patient_but_not_write_it() -> None:
    patient = Service.objects.get(code="patient")
    assert patient.allows(system_type="VFT", access="read")
    assert not patient.allows(system_type="VFT", access="write")
    assert patient.allows(system_type="EPJ", access="write")
    observation = Service.objects.get(code="observation")
    assert observation.allows(system_type="DHO", access="write")
    assert not observation.allows(system_type="DHO", access="read")


def test_a_service_is_unavailable_before_its_quarter() -> None:
    condition = Service.objects.with_availability().get(code="condition")
    assert not condition.is_available("production", on=datetime.date(2026, 6, 30))
    assert condition.is_available("production", on=datetime.date(2026, 7, 1))


def test_the_api_lists_the_nine_services_with_scopes_and_directions(
    api_client: APIClient, people: dict[str, object], django_assert_max_num_queries: Any
) -> None:
    api_client.force_authenticate(people["vendor_developer"])  # any logged-in person

    with django_assert_max_num_queries(2):  # the services and their availability, no more
        response = api_client.get(reverse("service-list"))

    assert response.status_code == 200
    body = {row["code"]: row for row in response.json()}
    assert len(body) == 9
    assert body["patient"]["read_scope"] == "nhn:ksp/patient.read"
    assert body["patient"]["write_scope"] == "nhn:ksp/patient.write"
    assert body["observation"]["writable_by"] == ["VFT", "DHO"]
    assert body["condition"]["epj_requirement"] == "epic"
    assert body["journaling"]["availability"] == [
        {"environment": "test", "available_from": "2026-01-01", "available": True},
        {"environment": "production", "available_from": "2026-01-01", "available": True},
    ]


def test_one_service_is_named_by_its_code(api_client: APIClient, people: dict[str, object]) -> None:
    api_client.force_authenticate(people["kommune_reader"])
    response = api_client.get(reverse("service-detail", args=["care-plan"]))
    assert response.status_code == 200
    assert response.json()["fhir_resource"] == "CarePlan"
    assert api_client.get(reverse("service-detail", args=["nope"])).status_code == 404


def test_the_catalogue_is_not_for_anonymous_callers(api_client: APIClient) -> None:
    response = api_client.get(reverse("service-list"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
