"""Hostile input at the door: control characters anywhere in a request, bodies too large or
nested too deep. Each is a 400 that says what was wrong, never a 500, and nothing is stored; in a
page's posted form, the error stands beside the field instead, with the rest of what was typed."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEvent
from orders import services
from orders.models import Instruction
from tenants.models import ClientKey, OAuthClient
from tests import routes
from tests.conftest import World
from tests.keys import rsa_public_jwk
from tests.routes import every_route

pytestmark = pytest.mark.django_db

ROUTES = list(every_route())
#: Every query parameter a list endpoint or a page's filter form reads, and the paging ones.
FILTERS = (
    "q",
    "vendor",
    "status",
    "organisation",
    "system_type",
    "kommune",
    "service",
    "environment",
    "sort",
    "ordering",
    "before",
    "after",
    "page",
    "limit",
    "offset",
    "cursor",
    "unread",
    "show",
    "role",
    "client",
    "days",
    "order",
    "action",
    "actor",
    "county",
    "epj",
    "kind",
    "object_id",
    "only",
    "path",
    "product",
    "removed",
    "state",
    "code",
    "next",
)
#: Who asks, and the organisation each acts for on the pages.
ASKERS = (("kommune_admin", "kommune"), ("vendor_admin", "vendor"), ("nhn_operator", "nhn"))


def argument_values(world: World, acting_for: str) -> dict[str, str]:
    """A real object for each kind of path argument, so a view gets as far as it can."""
    organisation = {
        "kommune": world.kommune,
        "vendor": world.vendor,
        "nhn": world.people["nhn_operator"].memberships.get().organisation,
    }[acting_for]
    return routes.argument_values(world, organisation)


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def refusal_text(response: Any) -> str:
    """The words of a 400 (the API's JSON detail, or the page), or "" for any other answer."""
    if response.status_code != 400:
        return ""
    if response["Content-Type"].startswith("application/json"):
        return str(response.json())
    return str(response.content.decode())


def test_a_nul_byte_in_any_query_parameter_is_a_400_on_every_route(world: World) -> None:
    query = {name: "9\x00" for name in FILTERS}
    clients = {person: logged_in(world.people[person]) for person, _ in ASKERS}
    failures = []
    for (person, acting_for), route in itertools.product(ASKERS, ROUTES):
        url = route.url(argument_values(world, acting_for))
        response = clients[person].get(url, query)
        if "Søkeparameteren «q» inneholder et kontrolltegn (U+0000)" not in refusal_text(response):
            failures.append((person, url, response.status_code))
    assert failures == []
    assert len(ROUTES) > 100  # the walk found the URLs


def test_a_nul_byte_in_any_path_segment_is_a_400_on_every_route(world: World) -> None:
    clients = {person: logged_in(world.people[person]) for person, _ in ASKERS}
    failures = []
    for (person, acting_for), route in itertools.product(ASKERS, ROUTES):
        values = argument_values(world, acting_for)
        for argument in route.arguments:
            url = route.url(values | {argument: values[argument] + "%00"})
            response = clients[person].get(url)
            if "Adressen inneholder et kontrolltegn (U+0000)" not in refusal_text(response):
                failures.append((person, url, response.status_code))
    assert failures == []


@pytest.mark.parametrize("character", ["\x00", "\x1b", "\x7f", "\x85"], ids=repr)
def test_other_control_characters_in_a_query_are_refused_too(world: World, character: str) -> None:
    response = logged_in(world.people["kommune_admin"]).get(
        "/api/v1/grants/", {"status": f"active{character}"}
    )
    assert response.status_code == 400
    assert f"U+{ord(character):04X}" in response.json()["detail"]


def test_the_refusal_on_a_page_is_a_page_in_bokmal_that_names_the_parameter(
    world: World,
) -> None:
    response = logged_in(world.people["kommune_admin"]).get(
        f"/o/{world.kommune.orgnr}/delegations/vendors/", {"vendor": "Trygg\x00"}
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert "Søkeparameteren «vendor» inneholder et kontrolltegn (U+0000)" in text
    assert "<html" in text  # the portal's page, not Django's bare "Bad Request"


def test_a_line_break_in_a_query_is_refused_but_ordinary_norwegian_text_is_not(
    world: World,
) -> None:
    people = logged_in(world.people["kommune_admin"])
    url = f"/o/{world.kommune.orgnr}/people/"
    assert people.get(url, {"q": "Bjørn Åsmund Sørby-Ávžš"}).status_code == 200
    assert people.get(url, {"q": "Bjørn\nÅsmund"}).status_code == 400


def row_counts() -> dict[str, int]:
    """Rows per model; the sessions of the people logged in for the test aside."""
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if model._meta.label != "sessions.Session"
    }


def api(world: World, who: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(world.people[who])
    return client


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/clients/",
            lambda w: {
                "name": "Trygghet",
                "product": str(w.product.pk),
                "environment": "production",
                "jwks": {"keys": [rsa_public_jwk("key\x00one")]},
            },
            "jwks.keys.0.kid",
        ),
        (
            "/api/v1/clients/",
            lambda w: {
                "name": "Trygghet",
                "product": str(w.product.pk),
                "environment": "production",
                "jwks": {"keys": [rsa_public_jwk("k") | {"x-note\x00": "a"}]},
            },
            "jwks.keys.0.x-noteU+0000",
        ),
        (
            "/api/v1/instructions/",
            lambda w: {
                "kommune": w.kommune.orgnr,
                "services": ["patient"],
                "subject_matter": "Helsedata",
                "duration": "Løpende",
                "nature_and_purpose": "Innsamling",
                "personal_data_categories": ["helse\x00"],
                "data_subject_categories": ["pasienter"],
                "sharing_scope": "kommune_only",
                "retention": "5 år",
                "contact_name": "Kari",
                "contact_email": "kari@k.example",
            },
            "personal_data_categories.0",
        ),
        (
            "/api/v1/access-requests/",
            lambda w: {
                "client": str(w.client.pk),
                "kommune": w.kommune.orgnr + "\x00",
                "items": [{"service": "patient", "access": "read"}],
            },
            "kommune",
        ),
        (
            "/api/v1/access-requests/",
            lambda w: {
                "client": str(w.client.pk),
                "kommune": w.kommune.orgnr,
                "items": [{"service": "patient\x00", "access": "read"}],
            },
            "items.0.service",
        ),
    ],
    ids=["jwks-kid", "jwks-member-name", "instruction-list-item", "orgnr", "item-service"],
)
def test_a_nul_byte_anywhere_in_a_json_body_is_a_field_error_and_stores_nothing(
    world: World, path: str, body: Any, field: str
) -> None:
    who = "kommune_admin" if "instruction" in path else "vendor_admin"
    before = row_counts()

    response = api(world, who).post(path, body(world), format="json")

    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert "U+0000" in " ".join(response.json()[field])
    assert row_counts() == before


def test_a_nul_byte_in_a_free_text_field_of_a_page_is_an_error_beside_it_and_what_was_typed_stays(
    world: World,
) -> None:
    """The page's form is drawn again: the error beside the field that held the character, the
    rest of what was typed in the fields, and nothing stored."""
    data = {name: getattr(world.instruction, name) for name in services.INSTRUCTION_FIELDS}
    draft = services.instruction_create(
        kommune=world.kommune,
        actor=world.people["kommune_admin"],
        services=list(world.instruction.services.all()),
        data=data,
    )
    before, events = row_counts(), AuditEvent.objects.count()
    stored = Instruction.objects.filter(pk=draft.pk).values().get()

    response = logged_in(world.people["kommune_admin"]).post(
        reverse("orders:instruction_step", args=[world.kommune.orgnr, draft.version, "purpose"]),
        {
            "subject_matter": "Velferds\x00teknologi",
            "nature_and_purpose": "Hjemmeoppfølging av kommunens pasienter",
            "personal_data_categories": "helseopplysninger",
            "data_subject_categories": "pasienter",
        },
    )

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["subject_matter"], errors
    assert "kontrolltegn (U+0000)" in errors["subject_matter"][0]
    page = response.content.decode()
    assert 'id="id_subject_matter_error"' in page
    assert "Velferdsteknologi" in page  # what was typed, less the character
    assert "Hjemmeoppfølging av kommunens pasienter" in page
    assert "helseopplysninger" in page
    assert "\x00" not in page
    assert row_counts() == before
    assert AuditEvent.objects.count() == events
    assert Instruction.objects.filter(pk=draft.pk).values().get() == stored


def test_a_nul_byte_in_a_page_form_field_looked_up_in_the_database_is_an_error_not_a_500(
    world: World,
) -> None:
    """The value reaches the form without its NUL, so the lookup never gives PostgreSQL one."""
    before = row_counts()
    response = logged_in(world.people["kommune_admin"]).post(
        f"/o/{world.kommune.orgnr}/delegations/new/",
        {"vendor": world.vendor.orgnr + "\x00", "items": ["patient.read"]},
    )
    assert response.status_code == 200
    assert "vendor" in response.context["form"].errors
    assert "kontrolltegn (U+0000)" in response.content.decode()
    assert row_counts() == before


def test_every_form_of_the_portal_is_a_page_form_so_a_control_character_is_refused_beside_it() -> (
    None
):
    """The refusal beside the field is ``PageForm``'s: a form that bypassed it would take the
    value with its control character silently taken out."""
    import importlib

    from django import forms

    from portal.forms import PageForm
    from tests.components import PROJECT_DIR
    from tests.test_layers import LAYERS

    modules = [
        path.relative_to(PROJECT_DIR).with_suffix("").as_posix().replace("/", ".")
        for app in LAYERS
        for path in [
            *PROJECT_DIR.joinpath(app).glob("forms.py"),
            *PROJECT_DIR.glob(f"{app}/forms/*.py"),
        ]
    ]
    for module in modules:
        importlib.import_module(module)

    def subclasses(cls: type) -> list[type]:
        return [cls, *itertools.chain.from_iterable(subclasses(s) for s in cls.__subclasses__())]

    ours = [
        cls
        for cls in subclasses(forms.BaseForm)
        if cls.__module__.split(".")[0] in LAYERS and cls.__module__ in modules
    ]
    assert len(ours) >= 30
    assert [cls.__qualname__ for cls in ours if not issubclass(cls, PageForm)] == []


def test_a_control_character_in_a_form_field_s_name_or_in_a_form_sent_to_the_api_is_a_400(
    world: World,
) -> None:
    before = row_counts()
    page = logged_in(world.people["vendor_admin"]).post(
        f"/o/{world.vendor.orgnr}/products/new/",
        {"name": "Trygg\x01", "note\x00": "a", "system_type": "VFT"},
    )
    form_to_the_api = api(world, "vendor_admin").post(
        "/api/v1/products/",
        {"vendor": world.vendor.orgnr, "name": "Trygg\x00", "system_type": "VFT"},
        format="multipart",
    )
    assert page.status_code == 400
    assert "Feltet «noteU+0000» inneholder et kontrolltegn (U+0000)" in page.content.decode()
    assert form_to_the_api.status_code == 400
    assert "U+0000" in " ".join(form_to_the_api.json()["name"])
    assert row_counts() == before


def test_a_jwks_file_uploaded_on_the_page_with_a_control_character_in_a_kid_is_a_field_error(
    world: World,
) -> None:
    import json

    from django.core.files.uploadedfile import SimpleUploadedFile

    keyset = json.dumps({"keys": [rsa_public_jwk("bad\x00kid")]})
    before = (OAuthClient.objects.count(), ClientKey.objects.count())
    response = logged_in(world.people["vendor_admin"]).post(
        f"/o/{world.vendor.orgnr}/clients/new/",
        {
            "name": "Trygghet",
            "product": str(world.product.pk),
            "environment": "production",
            "jwks_file": SimpleUploadedFile("keys.json", keyset.encode(), "application/json"),
        },
    )
    assert response.status_code == 200  # the form again, with the error beside the field
    assert "kid inneholder et kontrolltegn" in response.content.decode()
    assert (OAuthClient.objects.count(), ClientKey.objects.count()) == before


def test_json_nested_100000_levels_deep_is_a_400_not_a_crash(world: World) -> None:
    before = Instruction.objects.count()
    response = api(world, "kommune_admin").generic(
        "POST", "/api/v1/instructions/", "[" * 100_000 + "]" * 100_000, "application/json"
    )
    assert response.status_code == 400
    assert "32" in response.json()["detail"]
    assert Instruction.objects.count() == before


def test_json_nested_deeper_than_any_body_of_ours_is_refused_before_a_serializer_sees_it(
    world: World,
) -> None:
    body = '{"name": ' + "[" * 40 + "]" * 40 + "}"
    response = api(world, "vendor_admin").generic(
        "POST", "/api/v1/clients/", body, "application/json"
    )
    assert response.status_code == 400
    assert "nøstet" in response.json()["detail"]


def test_a_10_mb_body_is_a_400_that_says_it_is_too_large_on_the_api_and_on_a_page(
    world: World,
) -> None:
    ten_mb = "a" * (10 * 1024 * 1024)
    before = row_counts()
    api_response = api(world, "vendor_admin").generic(
        "POST",
        "/api/v1/clients/",
        '{"name": "' + ten_mb + '"}',
        "application/json",
    )
    page_response = logged_in(world.people["vendor_admin"]).post(
        f"/o/{world.vendor.orgnr}/clients/new/", {"name": ten_mb}
    )
    assert api_response.status_code == 400
    assert api_response.json() == {"detail": "Innholdet i forespørselen er for stort."}
    assert page_response.status_code == 400
    assert row_counts() == before
