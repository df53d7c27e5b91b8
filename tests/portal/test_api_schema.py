from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_the_schema_is_valid_openapi_3_and_names_the_resources(
    api_client: APIClient, people: dict[str, Any]
) -> None:
    api_client.force_authenticate(people["kommune_reader"])
    response = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/services/" in schema["paths"]
    assert "/api/v1/organizations/{orgnr}/" in schema["paths"]


def test_the_schema_passes_the_openapi_validator_without_warnings() -> None:
    # --validate checks against the OpenAPI 3 JSON schema; --fail-on-warn makes a warning fatal.
    out = io.StringIO()
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", stdout=out
    )
    assert '"openapi": "3.' in out.getvalue()


def test_the_interactive_docs_are_served_from_local_static_files(client: Client) -> None:
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn" not in page.lower()
