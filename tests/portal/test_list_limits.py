"""Every list caps ``?limit=`` (LIST_LIMIT_MAX, 200): a caller cannot ask for the whole table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string
from rest_framework.pagination import CursorPagination, LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from audit.services import audit_event_record, audit_events_batched
from orders.models import ProvisioningJob
from portal.urls import router
from tenants.models import Membership, Organisation, Product
from tenants.validators import orgnr_from
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db

CAP = 200
ROWS = CAP + 5


def list_endpoints() -> list[tuple[str, Any]]:
    """Every viewset of the API that lists something."""
    return [
        (prefix, viewset)
        for prefix, viewset, _basename in router.registry
        if hasattr(viewset, "list")
    ]


@pytest.mark.parametrize(("prefix", "viewset"), list_endpoints(), ids=lambda v: str(v))
def test_every_list_caps_the_limit_a_caller_asks_for(prefix: str, viewset: Any) -> None:
    pagination = viewset.pagination_class
    if pagination is None:  # one document (the catalogue): nothing to page
        assert prefix == "services"
        return
    paginator = pagination()
    request = Request(APIRequestFactory().get(f"/api/v1/{prefix}/", {"limit": "100000"}))
    if isinstance(paginator, LimitOffsetPagination):
        size = paginator.get_limit(request)
    else:
        assert isinstance(paginator, CursorPagination)
        size = paginator.get_page_size(request)
    assert size is not None
    assert size <= CAP, f"{prefix}/?limit=100000 would list {size} rows"


def seed_organisations(**_: Any) -> None:
    orgnrs = {orgnr_from(97_000_000 + n) for n in range(ROWS * 2)}  # some bases share one
    Organisation.objects.bulk_create(
        Organisation(orgnr=orgnr, name=f"Org {orgnr}", kind="vendor") for orgnr in orgnrs
    )


def seed_products(vendor: Organisation, **_: Any) -> None:
    Product.objects.bulk_create(
        Product(vendor=vendor, name=f"Product {n:03}", system_type="VFT") for n in range(ROWS)
    )


def seed_memberships(kommune: Organisation, **_: Any) -> None:
    Membership.objects.bulk_create(
        Membership(organisation=kommune, email=f"p{n}@k.example", role="kommune_reader")
        for n in range(ROWS)
    )


def seed_audit_events(kommune: Organisation, **_: Any) -> None:
    with transaction.atomic(), audit_events_batched():
        for n in range(ROWS):
            audit_event_record(
                actor=None, action="test.seeded", organisation=kommune, after={"n": n}
            )


def seed_provisioning_jobs(vendor: Organisation, **_: Any) -> None:
    client = ClientFactory(product__vendor=vendor)
    ProvisioningJob.objects.bulk_create(
        ProvisioningJob(client=client, reason="seeded", status="done") for _ in range(ROWS)
    )


SEEDS: dict[str, Callable[..., None]] = {
    "organizations": seed_organisations,
    "products": seed_products,
    "memberships": seed_memberships,
    "audit-events": seed_audit_events,
    "provisioning-jobs": seed_provisioning_jobs,
}


@pytest.mark.parametrize("prefix", sorted(SEEDS))
def test_limit_100000_answers_at_most_200_rows(
    prefix: str, people: dict[str, Any], kommune: Organisation, vendor: Organisation
) -> None:
    SEEDS[prefix](kommune=kommune, vendor=vendor)
    client = APIClient()
    client.force_authenticate(people["nhn_auditor"])  # sees every row

    response = client.get(f"/api/v1/{prefix}/", {"limit": "100000"})

    assert response.status_code == 200, response.json()
    assert len(response.json()["results"]) == CAP
    assert response.json()["next"]  # the rest is one page further, not in this answer


def test_the_default_pagination_caps_the_limit() -> None:
    paginator = import_string(settings.REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"])()
    assert paginator.max_limit == CAP
