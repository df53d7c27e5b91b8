"""The kommune's data-processing instruction pages: the overview, the guided form saved step by
step, the difference of two versions and the print view. Signing is in test_instruction_sign.py."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from orders import services
from orders.models import Instruction, Service
from tenants.models import Organisation
from tests.conftest import World
from tests.factories import InstructionFactory

pytestmark = pytest.mark.django_db


def url(name: str, kommune: Organisation, *args: Any) -> str:
    return reverse(f"orders:{name}", args=[kommune.orgnr, *args])


def as_(client: Client, person: User) -> Client:
    client.force_login(person)
    return client


def text(response: Any) -> str:
    return str(response.content.decode())


def draft_of(world: World, **changes: Any) -> Instruction:
    """A draft after the world's signed version: a copy of it with ``changes``."""
    data = {name: getattr(world.instruction, name) for name in services.INSTRUCTION_FIELDS}
    chosen = changes.pop("services", list(world.instruction.services.all()))
    return services.instruction_create(
        kommune=world.kommune,
        actor=world.people["kommune_admin"],
        services=chosen,
        data=data | changes,
    )


def snapshot(instruction: Instruction) -> dict[str, Any]:
    instruction.refresh_from_db()
    data = {name: getattr(instruction, name) for name in services.INSTRUCTION_FIELDS}
    data["services"] = sorted(instruction.services.values_list("code", flat=True))
    data["signed_at"] = instruction.signed_at
    return data


PURPOSE = {
    "subject_matter": "Trygghetsalarmer",
    "nature_and_purpose": "Gjør alarmdata tilgjengelig for kommunens systemer",
    "personal_data_categories": "helseopplysninger\nkontaktopplysninger\n",
    "data_subject_categories": "pasienter",
}
CONTACT = {
    "retention": "Så lenge tjenesten leveres",
    "duration": "Til avtalen opphører",
    "sub_processors_acknowledged": "",
    "contact_name": "Ola Nordmann",
    "contact_email": "ola@kommune.example",
    "contact_phone": "",
}


# --- Reading: who sees what ---------------------------------------------------------------------


def test_the_overview_says_which_version_is_signed_by_whom_and_what_it_covers(
    client: Client, world: World
) -> None:
    signed = world.instruction
    signed.signed_at = datetime.datetime(2026, 3, 1, 12, 30, tzinfo=datetime.UTC)
    signed.save()

    response = as_(client, world.people["kommune_admin"]).get(url("instruction", world.kommune))

    assert response.status_code == 200
    page = text(response)
    assert "Databehandlerinstruks · Tilgang" in page
    assert f"Versjon {signed.version}" in page
    assert "Signert av Kari Nordmann, 1. mars 2026 kl. 13:30." in page
    for service in Service.objects.all():
        assert f"{service.name_nb} ({service.code})" in page
    assert "Ny versjon" in page  # an admin may start one
    assert url("instruction_new", world.kommune) in page
    assert url("instruction_print", world.kommune, signed.version) in page


def test_the_overview_in_english_writes_dates_the_english_way(client: Client, world: World) -> None:
    world.instruction.signed_at = datetime.datetime(2026, 3, 1, 12, 30, tzinfo=datetime.UTC)
    world.instruction.save()

    response = as_(client, world.people["kommune_admin"]).get(
        url("instruction", world.kommune), HTTP_ACCEPT_LANGUAGE="en"
    )

    page = text(response)
    assert "Data-processing instruction · Tilgang" in page
    assert "Signed by Kari Nordmann, 1 March 2026, 13:30." in page
    assert "New version" in page


def test_a_kommune_without_a_signed_instruction_is_told_what_waits_and_what_to_do(
    client: Client, people: dict[str, User], kommune: Organisation
) -> None:
    response = as_(client, people["kommune_admin"]).get(url("instruction", kommune))

    page = text(response)
    assert response.status_code == 200
    assert "Kommunen har ingen signert instruks ennå" in page
    assert "Ingen versjoner ennå. Start med «Ny versjon» over." in page
    assert "Ny versjon" in page


def test_a_draft_in_progress_is_shown_with_a_link_to_continue_it(
    client: Client, world: World
) -> None:
    draft = draft_of(world)

    page = text(as_(client, world.people["kommune_admin"]).get(url("instruction", world.kommune)))

    assert f"Versjon {draft.version} er et utkast" in page
    assert "Fortsett utkastet" in page
    # A copy of the signed version lacks nothing: it continues at the review.
    assert url("instruction_review", world.kommune, draft.version) in page
    assert url("instruction_new", world.kommune) not in page  # one draft at a time


def test_a_reader_reads_everything_but_gets_403_for_every_write(
    client: Client, world: World
) -> None:
    draft = draft_of(world)
    before = snapshot(draft)
    reader = as_(client, world.people["kommune_reader"])

    overview = reader.get(url("instruction", world.kommune))
    assert overview.status_code == 200
    assert "Ny versjon" not in text(overview)
    assert "Fortsett utkastet" not in text(overview)
    assert reader.get(url("instruction_print", world.kommune, draft.version)).status_code == 200
    compared = reader.get(
        url("instruction_compare", world.kommune),
        {"a": world.instruction.version, "b": draft.version},
    )
    assert compared.status_code == 200

    assert reader.get(url("instruction_new", world.kommune)).status_code == 403
    assert reader.post(url("instruction_new", world.kommune), {"services": []}).status_code == 403
    step = url("instruction_step", world.kommune, draft.version, "purpose")
    assert reader.get(step).status_code == 403
    assert reader.post(step, PURPOSE).status_code == 403
    assert reader.get(url("instruction_review", world.kommune, draft.version)).status_code == 403
    assert reader.post(url("instruction_sign", world.kommune, draft.version)).status_code == 403
    assert snapshot(draft) == before
    assert Instruction.objects.filter(kommune=world.kommune).count() == 2


def test_another_kommune_and_vendors_find_nothing(
    client: Client, world: World, people: dict[str, User]
) -> None:
    draft = draft_of(world)
    theirs = InstructionFactory(kommune=world.other_kommune, version=50)
    pages = [
        url("instruction", world.kommune),
        url("instruction_new", world.kommune),
        url("instruction_compare", world.kommune),
        url("instruction_print", world.kommune, draft.version),
        url("instruction_step", world.kommune, draft.version, "services"),
        url("instruction_review", world.kommune, draft.version),
    ]
    for who in ("other_kommune_admin", "vendor_admin", "vendor_developer", "nhn_operator"):
        visitor = as_(client, people[who])
        for page in pages:
            assert visitor.get(page).status_code == 404, (who, page)
        signing = visitor.post(url("instruction_sign", world.kommune, draft.version))
        assert signing.status_code == 404
    # A vendor's own organisation has no instruction pages.
    vendor = as_(client, people["vendor_admin"])
    assert vendor.get(url("instruction", world.vendor)).status_code == 404
    # The other kommune's version number is not found through this kommune.
    admin = as_(client, people["kommune_admin"])
    assert admin.get(url("instruction_print", world.kommune, theirs.version)).status_code == 404
    assert draft.signed_at is None
    assert Instruction.objects.get(pk=draft.pk).signed_at is None


def test_the_history_lists_versions_newest_first_filters_and_sorts(
    client: Client, world: World
) -> None:
    draft = draft_of(world)
    admin = as_(client, world.people["kommune_admin"])

    listed = admin.get(url("instruction", world.kommune))
    rows = [row.version for row, _ in listed.context["rows"]]
    assert rows == [draft.version, world.instruction.version]

    drafts = admin.get(url("instruction", world.kommune), {"status": "draft"})
    assert [row.version for row, _ in drafts.context["rows"]] == [draft.version]
    oldest_first = admin.get(url("instruction", world.kommune), {"sort": "version"})
    assert [row.version for row, _ in oldest_first.context["rows"]] == rows[::-1]

    nothing = admin.get(url("instruction", world.kommune), {"status": "superseded"})
    assert "Ingen versjon har denne statusen" in text(nothing)
    bad = admin.get(url("instruction", world.kommune), {"status": "deleted", "sort": "secret"})
    assert bad.status_code == 200
    assert "deleted" in text(bad)  # kept in the filter, with its error
    assert [row.version for row, _ in bad.context["rows"]] == rows


def test_the_overview_reads_a_constant_number_of_queries(
    client: Client, world: World, django_assert_max_num_queries: Any
) -> None:
    admin = as_(client, world.people["kommune_admin"])
    for _ in range(3):
        draft = draft_of(world)
        services.instruction_sign(instruction=draft, actor=world.people["kommune_admin"])
    draft_of(world)

    with django_assert_max_num_queries(16):
        response = admin.get(url("instruction", world.kommune))
    assert response.status_code == 200
    assert len(response.context["rows"]) == 5


# --- The guided form ----------------------------------------------------------------------------


def test_a_new_version_starts_as_a_copy_of_the_signed_one_and_saves_each_step(
    client: Client, world: World
) -> None:
    admin = as_(client, world.people["kommune_admin"])
    first = Service.objects.order_by("position")[:2]

    started = admin.get(url("instruction_new", world.kommune))
    assert started.status_code == 200
    page = text(started)
    assert "Steg 1 av 5" in page
    assert "Den nye versjonen starter som en kopi av versjon" in page
    assert "Neste" in page

    response = admin.post(
        url("instruction_new", world.kommune), {"services": [s.pk for s in first]}
    )
    draft = Instruction.objects.get(kommune=world.kommune, signed_at__isnull=True)
    assert draft.version == world.instruction.version + 1
    assert response.status_code == 302
    assert response["Location"] == url("instruction_step", world.kommune, draft.version, "purpose")
    assert sorted(draft.services.values_list("code", flat=True)) == sorted(s.code for s in first)
    assert draft.retention == world.instruction.retention  # copied
    assert draft.contact_email == world.instruction.contact_email

    purpose = admin.get(response["Location"])
    assert "Steg 2 av 5" in text(purpose)
    assert world.instruction.subject_matter in text(purpose)  # the copy, to change
    saved = admin.post(response["Location"], PURPOSE, follow=True)
    assert "Utkastet til versjon" in text(saved)
    assert "Neste steg: Deling." in text(saved)
    assert "Steg 3 av 5" in text(saved)
    draft.refresh_from_db()
    assert draft.subject_matter == "Trygghetsalarmer"
    assert draft.personal_data_categories == ["helseopplysninger", "kontaktopplysninger"]

    sharing = url("instruction_step", world.kommune, draft.version, "sharing")
    to_contact = admin.post(
        sharing,
        {"sharing_scope": "named_organisations", "shared_with": "958 935 420\n974 760 673"},
    )
    contact = url("instruction_step", world.kommune, draft.version, "contact")
    assert to_contact["Location"] == contact
    draft.refresh_from_db()
    assert draft.sharing_scope == "named_organisations"
    assert draft.shared_with == ["958935420", "974760673"]

    to_review = admin.post(to_contact["Location"], CONTACT)
    assert to_review["Location"] == url("instruction_review", world.kommune, draft.version)
    draft.refresh_from_db()
    assert draft.contact_name == "Ola Nordmann"
    assert draft.signed_at is None
    # Every step went through the service: one audit event each.
    assert AuditEvent.objects.filter(action="instruction.updated").count() == 3

    review = admin.get(to_review["Location"])
    page = text(review)
    assert "Steg 5 av 5" in page
    assert "Trygghetsalarmer" in page
    assert "958 935 420" in page
    assert "Signer" in page
    assert "Mangler" not in page


def test_the_first_version_is_saved_step_by_step_although_it_is_not_complete(
    client: Client, people: dict[str, User], kommune: Organisation
) -> None:
    admin = as_(client, people["kommune_admin"])
    service = Service.objects.order_by("position").first()
    assert service is not None

    admin.post(url("instruction_new", kommune), {"services": [service.pk], "action": "save"})

    draft = Instruction.objects.get(kommune=kommune)
    assert draft.version == 1
    assert draft.subject_matter == ""
    overview = text(admin.get(url("instruction", kommune)))
    assert "Versjon 1 er et utkast" in overview
    # It continues where something is missing.
    assert url("instruction_step", kommune, 1, "purpose") in overview
    review = text(admin.get(url("instruction_review", kommune, 1)))
    assert "Fyll ut dette før du signerer" in review
    assert "Mangler" in review
    assert url("instruction_sign", kommune, 1) not in review  # nothing to sign yet


def test_back_saves_the_step_and_returns_to_the_one_before_and_save_returns_to_the_overview(
    client: Client, world: World
) -> None:
    draft = draft_of(world)
    admin = as_(client, world.people["kommune_admin"])
    sharing = url("instruction_step", world.kommune, draft.version, "sharing")

    back = admin.post(sharing, {"sharing_scope": "kommune_only", "action": "back"})
    assert back["Location"] == url("instruction_step", world.kommune, draft.version, "purpose")

    later = admin.post(
        url("instruction_step", world.kommune, draft.version, "contact"),
        {
            **CONTACT,
            "retention": "Ett år",
            "action": "save",
        },
        follow=True,
    )
    assert later.redirect_chain[-1][0] == url("instruction", world.kommune)
    assert "Fortsett fra denne siden når du er klar" in text(later)
    draft.refresh_from_db()
    assert draft.retention == "Ett år"


@pytest.mark.parametrize(
    ("step", "data", "field", "message"),
    [
        ("services", {"services": []}, "services", "Velg minst én tjeneste."),
        ("services", {"services": ["not-a-uuid"]}, "services", ""),
        ("purpose", {**PURPOSE, "subject_matter": ""}, "subject_matter", "Dette feltet er"),
        (
            "purpose",
            {**PURPOSE, "data_subject_categories": "x" * 201},
            "data_subject_categories",
            "Hver linje kan ha høyst 200 tegn",
        ),
        ("sharing", {"sharing_scope": "everyone"}, "sharing_scope", ""),
        (
            "sharing",
            {"sharing_scope": "named_organisations", "shared_with": ""},
            "shared_with",
            "",  # the service's rule: name the organisations
        ),
        (
            "sharing",
            {"sharing_scope": "kommune_only", "shared_with": "958935420"},
            "shared_with",
            "",  # the service's rule: inside the kommune names no one else
        ),
        (
            "sharing",
            {"sharing_scope": "named_organisations", "shared_with": "123 456"},
            "shared_with",
            "123456",
        ),
        ("contact", {**CONTACT, "contact_email": "not an address"}, "contact_email", ""),
        ("contact", {**CONTACT, "retention": "x" * 501}, "retention", ""),
    ],
)
def test_bad_input_shows_errors_beside_the_field_keeps_what_was_typed_and_changes_nothing(
    client: Client, world: World, step: str, data: dict[str, Any], field: str, message: str
) -> None:
    draft = draft_of(world)
    before = snapshot(draft)
    events = AuditEvent.objects.count()

    response = as_(client, world.people["kommune_admin"]).post(
        url("instruction_step", world.kommune, draft.version, step), data
    )

    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors, form.errors
    page = text(response)
    assert "ds-error-summary" in page
    assert f'id="id_{field}_error"' in page or f'id="id_{field}_0_error"' in page
    if message:
        assert message in page
    for value in data.values():
        if isinstance(value, str) and value and len(value) < 100 and "\n" not in value:
            assert value in page  # what was typed is kept
    assert snapshot(draft) == before
    assert AuditEvent.objects.count() == events


def test_the_service_s_rule_on_sharing_lands_beside_the_field_in_its_own_words(
    client: Client, world: World
) -> None:
    draft = draft_of(world)

    response = as_(client, world.people["kommune_admin"]).post(
        url("instruction_step", world.kommune, draft.version, "sharing"),
        {"sharing_scope": "named_organisations", "shared_with": ""},
    )

    errors = response.context["form"].errors["shared_with"]
    assert errors == ["Oppgi virksomhetene (organisasjonsnummer) som kan dele dataene."]


def test_a_new_version_without_a_service_is_refused_and_nothing_is_made(
    client: Client, world: World
) -> None:
    response = as_(client, world.people["kommune_admin"]).post(
        url("instruction_new", world.kommune), {"services": []}
    )

    assert response.status_code == 200
    assert "Velg minst én tjeneste." in text(response)
    assert Instruction.objects.filter(kommune=world.kommune).count() == 1


def test_a_signed_version_is_not_edited(client: Client, world: World) -> None:
    signed = world.instruction
    before = snapshot(signed)
    admin = as_(client, world.people["kommune_admin"])
    step = url("instruction_step", world.kommune, signed.version, "purpose")

    shown = admin.get(step, follow=True)
    posted = admin.post(step, PURPOSE, follow=True)

    for response in (shown, posted):
        assert response.redirect_chain[-1][0] == url("instruction", world.kommune)
        assert f"Versjon {signed.version} er signert og kan ikke endres" in text(response)
    assert snapshot(signed) == before


def test_starting_a_new_version_while_a_draft_exists_continues_that_draft(
    client: Client, world: World
) -> None:
    draft = draft_of(world, retention="")

    response = as_(client, world.people["kommune_admin"]).get(url("instruction_new", world.kommune))

    assert response["Location"] == url("instruction_step", world.kommune, draft.version, "contact")
    assert Instruction.objects.filter(kommune=world.kommune).count() == 2


# --- Versions side by side, and the print view ------------------------------------------------


def test_two_versions_side_by_side_mark_each_changed_field_in_words(
    client: Client, world: World
) -> None:
    kept = list(Service.objects.order_by("position")[:1])
    draft = draft_of(world, services=kept, retention="Ett år etter avsluttet tjeneste")

    response = as_(client, world.people["kommune_admin"]).get(
        url("instruction_compare", world.kommune),
        {"a": draft.version, "b": world.instruction.version},  # either order: oldest left
    )

    assert response.status_code == 200
    rows = {str(row.label): row for row in response.context["rows"]}
    assert rows["Lagringstid"].changed
    assert rows["Lagringstid"].before == [world.instruction.retention]
    assert rows["Lagringstid"].after == ["Ett år etter avsluttet tjeneste"]
    assert rows["Tjenester"].changed
    assert rows["Tjenester"].after == [f"{kept[0].name_nb} ({kept[0].code})"]
    assert not rows["Kontaktperson"].changed
    page = text(response)
    assert "2 felt er endret fra versjon" in page
    assert page.count(">Endret<") == 2
    assert page.count(">Uendret<") == len(rows) - 2
    assert "Ett år etter avsluttet tjeneste" in page


@pytest.mark.parametrize("query", [{"a": "1", "b": "1"}, {"a": "x", "b": "999"}])
def test_comparing_a_version_with_itself_or_one_that_does_not_exist_gives_field_errors(
    client: Client, world: World, query: dict[str, str]
) -> None:
    draft_of(world)
    query = {"a": str(world.instruction.version), "b": query["b"]} if query["a"] == "1" else query
    if query["b"] == "1":
        query["b"] = query["a"]

    response = as_(client, world.people["kommune_admin"]).get(
        url("instruction_compare", world.kommune), query
    )

    assert response.status_code == 200
    assert response.context["form"].errors
    assert "ds-error-summary" in text(response)
    assert "rows" not in response.context


def test_the_print_view_holds_every_field_the_signature_the_kommune_and_the_version(
    client: Client, world: World
) -> None:
    signed = world.instruction
    signed.signed_at = datetime.datetime(2026, 3, 1, 8, 5, tzinfo=datetime.UTC)
    signed.sub_processors_acknowledged = ["Driftspartner AS"]
    signed.contact_phone = "+47 22 00 00 00"
    signed.save()

    response = as_(client, world.people["kommune_reader"]).get(
        url("instruction_print", world.kommune, signed.version)
    )

    assert response.status_code == 200
    page = text(response)
    orgnr = world.kommune.orgnr
    assert f"{orgnr[:3]} {orgnr[3:6]} {orgnr[6:]}" in page
    assert world.kommune.name in page
    assert f"<dd>{signed.version}</dd>" in page
    assert "Kari Nordmann" in page
    assert "1. mars 2026 kl. 09:05" in page
    for value in (
        signed.subject_matter,
        signed.nature_and_purpose,
        signed.retention,
        signed.duration,
        signed.contact_name,
        signed.contact_email,
        "+47 22 00 00 00",
        "Driftspartner AS",
        "helseopplysninger",
        "pasienter",
        "Bare innad i kommunen",
    ):
        assert value in page, value
    assert "css/instruction.css" in page  # its print rules
    assert "Utkast – ikke signert" not in page


def test_the_print_view_of_a_draft_says_it_is_not_signed(client: Client, world: World) -> None:
    draft = draft_of(world)

    page = text(
        as_(client, world.people["kommune_admin"]).get(
            url("instruction_print", world.kommune, draft.version)
        )
    )

    assert "Utkast – ikke signert." in page
    assert "Ikke signert" in page


def test_dates_follow_the_language(client: Client, world: World) -> None:
    world.instruction.signed_at = datetime.datetime(2026, 3, 1, 13, 0, tzinfo=datetime.UTC)
    world.instruction.save()

    page = text(
        as_(client, world.people["kommune_admin"]).get(
            url("instruction_print", world.kommune, world.instruction.version),
            HTTP_ACCEPT_LANGUAGE="en",
        )
    )

    assert "1 March 2026, 14:00" in page
    assert "Data-processing instruction to Norsk helsenett SF" in page
