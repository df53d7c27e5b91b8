"""The EHR switch: when do we switch, and what does NHN recommend?"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tenants.forms.kommune import recommendation
from tenants.models import Organisation, Product
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def epjs(vendor: Organisation) -> dict[str, Product]:
    return {
        "gerica": ProductFactory(vendor=vendor, name="Gerica", system_type=Product.SystemType.EPJ),
        "epic": ProductFactory(
            vendor=vendor, name="Epic", system_type=Product.SystemType.EPJ, is_epic=True
        ),
        "alarm": ProductFactory(vendor=vendor, name="Alarm", system_type=Product.SystemType.VFT),
    }


def url(kommune: Organisation) -> str:
    return reverse("tenants:epj", args=[kommune.orgnr])


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("kommune_admin", 200),
        ("kommune_reader", 200),
        ("other_kommune_admin", 404),
        ("vendor_admin", 404),
        ("nhn_auditor", 404),
    ],
)
def test_the_plan_is_shown_to_the_kommunes_members_only(
    client: Client,
    people: dict[str, Any],
    kommune: Organisation,
    epjs: dict[str, Product],
    who: str,
    expected: int,
) -> None:
    client.force_login(people[who])

    response = client.get(url(kommune))

    assert response.status_code == expected
    if expected == 200:
        html = response.content.decode()
        assert "Ikke registrert" in html
        assert ("Lagre planen" in html) is (who == "kommune_admin")
        if who == "kommune_admin":
            assert f"Epic ({epjs['epic'].vendor.name}), Epic" in html
            assert "Alarm" not in html  # not an EPJ


def test_the_vendor_pages_have_no_ehr_switch(
    client: Client, people: dict[str, Any], vendor: Organisation
) -> None:
    client.force_login(people["vendor_admin"])

    assert client.get(url(vendor)).status_code == 404


def test_an_admin_records_the_epj_and_the_planned_switch(
    client: Client, people: dict[str, Any], kommune: Organisation, epjs: dict[str, Product]
) -> None:
    client.force_login(people["kommune_admin"])

    response = client.post(
        url(kommune),
        {
            "epj_product": epjs["gerica"].pk,
            "switch_product": epjs["epic"].pk,
            "switch_date": "2027-03-01",
            "uses_vkp": "yes",
        },
    )

    assert response.status_code == 302
    kommune.refresh_from_db()
    assert kommune.epj_product == epjs["gerica"]
    assert kommune.epj_switch_product == epjs["epic"]
    assert kommune.epj_switch_date == datetime.date(2027, 3, 1)
    assert kommune.uses_vkp is True
    [event] = AuditEvent.objects.filter(action="kommune.epj_recorded")
    assert (event.before["uses_vkp"], event.after["uses_vkp"]) == (None, True)
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith("EPJ-planen er lagret. NHN ser den i oversikten over EPJ-bytter")
    html = client.get(url(kommune)).content.decode()
    assert f"Til Epic ({epjs['epic'].vendor.name}) 1. mars 2027" in html
    assert "Bytte i 2027, med VKP: integrasjon med VKP" in html


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"switch_product": "epic"}, "switch_date", "Et planlagt EPJ-bytte"),
        ({"switch_date": "2026-05-01"}, "switch_date", "Et planlagt EPJ-bytte"),
        ({"epj_product": "alarm"}, "epj_product", "Velg et gyldig valg"),
        ({"switch_product": "epic", "switch_date": "første mai"}, "switch_date", "gyldig dato"),
        ({"uses_vkp": "kanskje"}, "uses_vkp", "Velg et gyldig valg"),
    ],
)
def test_bad_input_gives_field_errors_and_changes_nothing(
    client: Client,
    people: dict[str, Any],
    kommune: Organisation,
    epjs: dict[str, Product],
    data: dict[str, str],
    field: str,
    error: str,
) -> None:
    sent = {name: str(epjs[v].pk) if v in epjs else v for name, v in data.items()}
    client.force_login(people["kommune_admin"])

    response = client.post(url(kommune), sent)

    assert response.status_code == 200
    assert field in response.context["form"].errors
    html = response.content.decode()
    assert error in html
    assert f'href="#id_{field}"' in html
    kommune.refresh_from_db()
    assert (kommune.epj_product, kommune.epj_switch_product, kommune.epj_switch_date) == (
        None,
        None,
        None,
    )


def test_a_reader_may_not_change_the_plan(
    client: Client, people: dict[str, Any], kommune: Organisation, epjs: dict[str, Product]
) -> None:
    client.force_login(people["kommune_reader"])

    response = client.post(url(kommune), {"epj_product": epjs["gerica"].pk})

    assert response.status_code == 403
    kommune.refresh_from_db()
    assert kommune.epj_product is None


@pytest.mark.parametrize(
    ("date", "uses_vkp", "heading"),
    [
        (None, True, "No switch planned"),
        (datetime.date(2025, 11, 1), True, "Switching in 2025: use the new information services"),
        (datetime.date(2026, 12, 31), None, "Switching in 2026: use the new information services"),
        (datetime.date(2027, 1, 1), None, "Switching in 2027: VKP in the meantime"),
        (datetime.date(2027, 1, 1), True, "Switching in 2027, with VKP: integration with VKP"),
        (
            datetime.date(2031, 6, 1),
            False,
            "Switching in 2031, without VKP: consider VKP onboarding",
        ),
    ],
)
def test_nhns_recommendation_follows_the_year_of_the_switch_and_vkp(
    date: datetime.date | None, uses_vkp: bool | None, heading: str
) -> None:
    from django.utils import translation

    with translation.override("en"):
        shown, advice = recommendation(date, uses_vkp)

    assert shown == heading
    assert advice


def test_the_recommendation_reads_in_english_too(
    client: Client, people: dict[str, Any], kommune: Organisation, epjs: dict[str, Product]
) -> None:
    kommune.epj_switch_product, kommune.epj_switch_date = epjs["epic"], datetime.date(2026, 9, 1)
    kommune.save()
    client.force_login(people["kommune_reader"])

    html = client.get(url(kommune), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "<strong>Switching in 2026: use the new information services</strong>" in html
    assert "To Epic" in html
    assert "1 September 2026" in html
