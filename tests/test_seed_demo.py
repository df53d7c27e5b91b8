from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from orders.models import Service
from tenants.models import Membership, Organisation, Product, Role

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def people_file(settings: Any, tmp_path: Path) -> Path:
    """The demo people go to the test's own directory, not the developer's var/."""
    settings.OIDC_DEMO_PEOPLE_FILE = tmp_path / "oidc" / "demo-people.json"
    return Path(settings.OIDC_DEMO_PEOPLE_FILE)


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_the_demo_has_nhn_three_kommuner_and_four_vendors_with_their_people() -> None:
    output = seed()

    by_orgnr = {o.orgnr: o for o in Organisation.objects.select_related("kommune", "epj_product")}
    assert set(by_orgnr) == {
        "994598759", "958935420", "942110464", "964338531",
        "910000004", "910000012", "910000020", "910000039",
    }  # fmt: skip
    assert by_orgnr["958935420"].kommune.number == "0301"  # type: ignore[union-attr]
    assert by_orgnr["942110464"].kommune.number == "5001"  # type: ignore[union-attr]
    assert by_orgnr["964338531"].kommune.number == "4601"  # type: ignore[union-attr]
    assert by_orgnr["942110464"].epj_product.is_epic  # type: ignore[union-attr]
    assert not by_orgnr["958935420"].epj_product.is_epic  # type: ignore[union-attr]
    assert by_orgnr["942110464"].epj_product.vendor.orgnr == "910000039"  # type: ignore[union-attr]

    roles = {(m.email, m.organisation.orgnr): m.role for m in Membership.objects.all()}
    assert roles[("drift@nhn.example", "994598759")] == Role.NHN_OPERATOR
    assert roles[("revisor@nhn.example", "994598759")] == Role.NHN_AUDITOR
    assert roles[("admin@oslo.example", "958935420")] == Role.KOMMUNE_ADMIN
    assert roles[("admin@trondheim.example", "942110464")] == Role.KOMMUNE_ADMIN
    assert roles[("admin@bergen.example", "964338531")] == Role.KOMMUNE_ADMIN
    assert roles[("admin@journal.example", "910000004")] == Role.VENDOR_ADMIN
    assert roles[("admin@trygghet.example", "910000012")] == Role.VENDOR_ADMIN
    assert roles[("admin@hjemme.example", "910000020")] == Role.VENDOR_ADMIN

    types = {p.vendor.orgnr: p.system_type for p in Product.objects.select_related("vendor")}
    assert types == {"910000004": "EPJ", "910000012": "VFT", "910000020": "DHO", "910000039": "EPJ"}
    assert "admin@oslo.example" in output


def test_seeding_twice_changes_nothing() -> None:
    seed()
    counts = (Organisation.objects.count(), Membership.objects.count(), Product.objects.count())
    seed()
    assert (Organisation.objects.count(), Membership.objects.count(), Product.objects.count()) == (
        counts
    )
    assert Service.objects.count() == 9


def test_the_demo_people_are_written_for_the_providers_login_page_in_both_languages(
    people_file: Path,
) -> None:
    seed()

    people = json.loads(people_file.read_text())["people"]
    oslo = next(person for person in people if person["email"] == "admin@oslo.example")
    assert oslo == {
        "email": "admin@oslo.example",
        "organisation": "Oslo kommune",
        "role": "kommune_admin",
        "role_label": {"nb": "Kommuneadministrator", "en": "Kommune administrator"},
    }
    assert {person["email"] for person in people} == {
        "drift@nhn.example", "revisor@nhn.example", "admin@oslo.example",
        "admin@trondheim.example", "admin@bergen.example", "admin@journal.example",
        "admin@trygghet.example", "admin@hjemme.example", "admin@helseplattformen.example",
    }  # fmt: skip
    assert not list(people_file.parent.glob(".*.tmp"))  # written whole, by a rename
