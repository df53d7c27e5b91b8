from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tenants.models import Kommune

pytestmark = pytest.mark.django_db


def test_the_register_holds_the_357_kommuner_of_2024() -> None:
    assert Kommune.objects.count() == 357
    assert Kommune.objects.values("county_number").distinct().count() == 15


@pytest.mark.parametrize(
    ("number", "name", "county"),
    [
        ("0301", "Oslo", "Oslo"),
        ("5001", "Trondheim", "Trøndelag"),
        ("4601", "Bergen", "Vestland"),
        ("5636", "Unjárga", "Finnmark"),
    ],
)
def test_known_kommuner_are_in_the_register(number: str, name: str, county: str) -> None:
    kommune = Kommune.objects.get(number=number)
    assert (kommune.name, kommune.county_name) == (name, county)


def test_the_register_matches_the_shipped_list_row_by_row() -> None:
    path = Path(__file__).resolve().parents[2] / "tenants" / "data" / "kommuner-2024.csv"
    with path.open(encoding="utf-8") as handle:
        rows = {r["kommunenummer"]: (r["navn"], r["fylkesnummer"]) for r in csv.DictReader(handle)}
    stored = {k.number: (k.name, k.county_number) for k in Kommune.objects.all()}
    assert stored == rows
