"""A vendor's new order: the form, the dry run ("What will happen if I order this for these
kommuner?"), and the send, which decides again."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from orders import services
from orders.models import (
    AccessRequest,
    AccessRequestItem,
    Delegation,
    DelegationItem,
    Grant,
    Instruction,
    ItemStatus,
    ProvisioningJob,
    Service,
)
from tenants.models import Kommune, Organisation
from tenants.validators import orgnr_from
from tests.conftest import World
from tests.factories import ClientFactory, DelegationFactory, KommuneOrganisationFactory

pytestmark = pytest.mark.django_db


def new_url(world: World) -> str:
    return reverse("orders:order_new", args=[world.vendor.orgnr])


def send_url(world: World) -> str:
    return reverse("orders:order_send", args=[world.vendor.orgnr])


def written() -> dict[str, int]:
    return {
        "requests": AccessRequest.objects.count(),
        "items": AccessRequestItem.objects.count(),
        "grants": Grant.objects.count(),
        "jobs": ProvisioningJob.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def answers(world: World, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "client": str(world.client.pk),
        "items": ["patient.read"],
        "which": "chosen",
        "kommuner": [world.kommune.orgnr],
        "action": "preview",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def text(response: Any) -> str:
    """The page's text, tags removed and spaces folded."""
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return re.sub(r"\s+", " ", body)


@pytest.fixture
def admin(client: Client, world: World) -> Client:
    client.force_login(world.people["vendor_admin"])
    return client


# --- Who may order ------------------------------------------------------------------------------


def test_a_vendor_admin_chooses_among_the_vendor_s_own_active_clients(
    admin: Client, world: World
) -> None:
    removed = ClientFactory(product=world.product, name="Gammel klient")
    services.client_remove(client=removed, actor=world.people["vendor_admin"])

    response = admin.get(new_url(world))

    assert response.status_code == 200
    page = response.content.decode()
    assert world.client.name in page
    assert "Gammel klient" not in page  # removed
    assert world.other_client.name not in page  # another vendor's
    assert "Se hva som skjer" in page
    assert 'name="kommuner"' in page
    assert world.kommune.name in page
    assert "Pasient: lese" in page
    assert "Pasient: skrive" in page


def test_a_vendor_developer_may_not_order_as_in_the_api(client: Client, world: World) -> None:
    client.force_login(world.people["vendor_developer"])
    assert client.get(new_url(world)).status_code == 403
    assert client.post(new_url(world), answers(world)).status_code == 403
    assert client.post(send_url(world), {"order": "x"}).status_code == 403


@pytest.mark.parametrize("who", ["other_vendor_admin", "kommune_admin", "nhn_operator"])
def test_people_of_other_organisations_do_not_find_the_vendor_s_order_page(
    client: Client, world: World, who: str
) -> None:
    client.force_login(world.people[who])
    assert client.get(new_url(world)).status_code == 404
    assert client.post(new_url(world), answers(world)).status_code == 404


# --- Bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"client": None}, "client"),
        ({"items": None}, "items"),
        ({"kommuner": None}, "kommuner"),
        ({"items": ["patient.delete"]}, "items"),
        ({"items": ["no-such-service.read"]}, "items"),
        ({"service_codes": ["XX"]}, "service_codes"),
        ({"kommuner": ["000000000"]}, "kommuner"),
        ({"which": "everyone"}, "which"),
    ],
    ids=[
        "no client",
        "no service",
        "no kommune",
        "no such access",
        "no such service",
        "no such service code",
        "no such kommune",
        "no such choice of kommuner",
    ],
)
def test_bad_input_is_shown_beside_its_field_and_nothing_is_written(
    admin: Client, world: World, changes: dict[str, Any], field: str
) -> None:
    before = written()

    response = admin.post(new_url(world), answers(world, **changes))

    assert response.status_code == 200
    page = response.content.decode()
    assert f'id="id_{field}_error"' in page
    assert 'class="ds-error-summary"' in page
    assert "Send bestillingen" not in page
    assert written() == before


def test_a_client_of_another_vendor_is_a_field_error(admin: Client, world: World) -> None:
    before = written()

    response = admin.post(new_url(world), answers(world, client=str(world.other_client.pk)))

    assert response.status_code == 200
    assert 'id="id_client_error"' in response.content.decode()
    assert written() == before


def test_what_was_typed_is_kept_when_the_form_comes_back(admin: Client, world: World) -> None:
    response = admin.post(
        new_url(world),
        answers(
            world, kommuner=None, items=["patient.read", "care-plan.read"], service_codes=["RT"]
        ),
    )

    form = response.context["form"]
    assert form["items"].value() == ["patient.read", "care-plan.read"]
    assert form["client"].value() == str(world.client.pk)
    assert form["service_codes"].value() == ["RT"]


def test_no_kommune_has_delegated_everything_is_said_on_the_choice(
    admin: Client, world: World
) -> None:
    Delegation.objects.update(revoked_at=timezone.now())

    response = admin.post(new_url(world), answers(world, which="delegated", kommuner=None))

    assert response.status_code == 200
    assert 'id="id_which_error"' in response.content.decode()


# --- The dry run --------------------------------------------------------------------------------


def test_the_preview_shows_each_kommune_and_item_with_its_reason_and_counts(
    admin: Client, world: World
) -> None:
    before = written()

    response = admin.post(
        new_url(world),
        answers(
            world,
            items=["patient.read", "observation.read"],
            kommuner=[world.kommune.orgnr, world.other_kommune.orgnr],
        ),
    )

    assert response.status_code == 200
    page = text(response)
    # world.kommune has delegated and signed; other_kommune has neither; a VFT reads no
    # observation.
    assert "1 godkjennes, 1 venter på kommunen, 2 avslås" in page
    assert f"{world.other_kommune.name} har ingen signert databehandlerinstruks" in page
    assert "Et VFT-produkt kan ikke lese Målinger" in page
    assert "Send bestillingen" in page
    assert written() == before  # a dry run


def test_the_preview_reads_in_english_for_an_english_reader(admin: Client, world: World) -> None:
    response = admin.post(
        new_url(world),
        answers(world, items=["patient.read", "observation.read"]),
        HTTP_ACCEPT_LANGUAGE="en",
    )

    page = text(response)
    assert "1 will be approved, 1 will be rejected" in page
    assert "A VFT product may not read Observation" in page
    assert "Send the order" in page


def test_every_kommune_that_has_delegated_the_items_is_ordered_for_by_choice(
    admin: Client, world: World
) -> None:
    partly = KommuneOrganisationFactory()
    DelegationFactory(
        kommune=partly, vendor=world.vendor, services=[Service.objects.get(code="care-plan")]
    )

    response = admin.post(new_url(world), answers(world, which="delegated", kommuner=None))

    assert response.status_code == 200
    assert response.context["kommuner"] == [world.kommune]
    assert partly.name not in text(response)


def test_the_search_button_narrows_the_kommuner_and_keeps_every_answer(
    admin: Client, world: World
) -> None:
    response = admin.post(
        new_url(world),
        answers(
            world,
            action="search",
            search=world.other_kommune.name[:4],
            kommuner=[world.kommune.orgnr],
            service_codes=["TA"],
        ),
    )

    assert response.status_code == 200
    form = response.context["form"]
    shown = {k.orgnr for k in form.fields["kommuner"].queryset}
    assert shown == {world.kommune.orgnr, world.other_kommune.orgnr}  # found, and ticked
    page = response.content.decode()
    assert 'class="ds-error-summary"' not in page  # a search is not a submission
    assert re.search(rf'value="{world.kommune.orgnr}"[^>]*checked', page)
    assert re.search(r'value="TA"[^>]*checked', page)


def test_change_your_answers_brings_the_form_back_filled_in(admin: Client, world: World) -> None:
    preview = admin.post(new_url(world), answers(world, service_codes=["RT", "GPS"]))

    response = admin.get(preview.context["change_url"])

    form = response.context["form"]
    assert form["items"].value() == ["patient.read"]
    assert form["service_codes"].value() == ["RT", "GPS"]
    assert form["kommuner"].value() == [world.kommune.orgnr]


# --- The send -----------------------------------------------------------------------------------


def test_sending_orders_what_was_checked_and_says_what_happens(admin: Client, world: World) -> None:
    bergen = KommuneOrganisationFactory(
        kommune=Kommune.objects.get(number="4601"), name="Bergen kommune"
    )
    preview = admin.post(
        new_url(world), answers(world, kommuner=[world.kommune.orgnr, bergen.orgnr])
    )

    response = admin.post(send_url(world), {"order": preview.context["token"]}, follow=True)

    assert response.status_code == 200
    assert "Bestillingen er sendt. 1 tilgang klargjøres nå; 1 venter på Bergen kommune." in text(
        response
    )
    requests = AccessRequest.objects.filter(client=world.client)
    assert {r.kommune for r in requests} == {world.kommune, bergen}
    assert all(r.initiated_by == AccessRequest.Initiator.VENDOR for r in requests)
    assert requests.get(kommune=world.kommune).items.get().grant is not None


def test_sending_decides_again_instead_of_trusting_the_preview(admin: Client, world: World) -> None:
    preview = admin.post(new_url(world), answers(world))
    assert "1 godkjennes" in text(preview)
    services.delegation_revoke(delegation=world.delegation, actor=world.people["kommune_admin"])

    response = admin.post(send_url(world), {"order": preview.context["token"]})

    [request] = AccessRequest.objects.filter(client=world.client)
    assert response.status_code == 302
    assert response["Location"] == reverse("orders:order", args=[world.vendor.orgnr, request.pk])
    item = request.items.get()
    assert (item.status, item.reason_code) == (ItemStatus.AWAITING_KOMMUNE, "delegation_missing")


def test_service_codes_go_with_every_item_of_the_order(admin: Client, world: World) -> None:
    preview = admin.post(
        new_url(world),
        answers(world, items=["patient.read", "care-plan.read"], service_codes=["RT", "TA"]),
    )
    admin.post(send_url(world), {"order": preview.context["token"]})

    assert {
        tuple(codes) for codes in AccessRequestItem.objects.values_list("service_codes", flat=True)
    } == {("RT", "TA")}


@pytest.mark.parametrize("token", ["", "not-a-token", "foreign"])
def test_an_order_that_cannot_be_read_back_is_refused_and_nothing_is_written(
    admin: Client, world: World, token: str
) -> None:
    if token == "foreign":  # checked by another admin of the same vendor
        other = Client()
        other.force_login(_second_admin(world))
        token = other.post(new_url(world), answers(world)).context["token"]
    before = written()

    response = admin.post(send_url(world), {"order": token}, follow=True)

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == new_url(world)
    assert "kunne ikke leses" in text(response)
    assert written() == before


def _second_admin(world: World) -> User:
    from tenants.models import Role
    from tests.factories import MembershipFactory

    return MembershipFactory(organisation=world.vendor, role=Role.VENDOR_ADMIN).user


def test_a_client_removed_after_the_preview_is_refused_on_the_send(
    admin: Client, world: World
) -> None:
    preview = admin.post(new_url(world), answers(world))
    services.client_remove(client=world.client, actor=world.people["vendor_admin"])
    before = written()

    response = admin.post(send_url(world), {"order": preview.context["token"]})

    assert response.status_code == 200
    assert 'id="id_client_error"' in response.content.decode()
    assert written() == before


def test_sending_is_a_post(admin: Client, world: World) -> None:
    assert admin.get(send_url(world)).status_code == 405


# --- 357 kommuner -------------------------------------------------------------------------------


def national(world: World) -> list[Organisation]:
    """Every kommune of the register: those of the fixtures and the rest, seeded in bulk like
    bench/seed.py; two of three signed, every other one delegated to world.vendor."""
    free = Kommune.objects.filter(organisation__isnull=True).order_by("number")
    Organisation.objects.bulk_create(
        Organisation(
            orgnr=orgnr_from(81000000 + i * 11),
            name=f"{k.name} kommune",
            kind=Organisation.Kind.KOMMUNE,
            kommune=k,
        )
        for i, k in enumerate(free)
    )
    kommuner = list(Organisation.objects.kommuner().order_by("name"))
    fresh = [k for k in kommuner if k not in (world.kommune, world.other_kommune)]
    now = timezone.now()
    signer = world.people["kommune_admin"]
    instructions = Instruction.objects.bulk_create(
        Instruction(
            kommune=k,
            version=1,
            subject_matter="-",
            duration="-",
            nature_and_purpose="-",
            retention="-",
            contact_name="-",
            contact_email="x@example.test",
            signed_by=signer,
            signed_by_name="-",
            signed_at=now,
        )
        for i, k in enumerate(fresh)
        if i % 3
    )
    services_ = list(Service.objects.all())
    Instruction.services.through.objects.bulk_create(
        Instruction.services.through(instruction=i, service=s)
        for i in instructions
        for s in services_
    )
    delegations = Delegation.objects.bulk_create(
        Delegation(kommune=k, vendor=world.vendor, valid_from=datetime.date(2026, 1, 1))
        for i, k in enumerate(fresh)
        if i % 2
    )
    DelegationItem.objects.bulk_create(
        DelegationItem(delegation=d, service=s, access=a)
        for d in delegations
        for s in services_
        for a in ("read", "write")
    )
    assert len(kommuner) == 357
    return kommuner


def test_one_order_for_all_357_kommuner_is_previewed_and_sent_from_the_page(
    admin: Client, world: World, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    items = ["patient.read", "care-plan.read"]
    two = answers(world, items=items, kommuner=[world.kommune.orgnr, world.other_kommune.orgnr])
    assert admin.post(new_url(world), two).status_code == 200
    with CaptureQueriesContext(connection) as few:
        admin.post(new_url(world), two)
    kommuner = national(world)
    orgnrs = [k.orgnr for k in kommuner]

    with django_assert_max_num_queries(len(few)):  # no more than for two kommuner
        preview = admin.post(new_url(world), answers(world, items=items, kommuner=orgnrs))

    assert preview.status_code == 200
    rows = preview.context["rows"]
    assert len(rows) == 357 * 2
    counts = text(preview)
    assert "godkjennes" in counts
    assert "venter på kommunen" in counts

    with CaptureQueriesContext(connection) as sent:
        response = admin.post(send_url(world), {"order": preview.context["token"]}, follow=True)

    assert response.status_code == 200
    assert AccessRequest.objects.filter(client=world.client).count() == 357
    assert "Bestillingen er sendt." in text(response)
    # Reads do not grow with the kommuner; only the rows written do (a request, its items,
    # their grants), a handful of statements per kommune.
    assert len(sent) <= 60 + 357 * 6
