"""People: who may act for us here. Any kind of organisation; admins manage, others read."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tenants.models import Membership, Organisation, Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def url(organisation: Organisation, name: str = "people", *args: Any) -> str:
    return reverse(f"tenants:{name}", args=[organisation.orgnr, *args])


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize(
    ("who", "whose", "expected", "manages"),
    [
        ("kommune_admin", "kommune", 200, True),
        ("kommune_reader", "kommune", 200, False),
        ("vendor_admin", "vendor", 200, True),
        ("vendor_developer", "vendor", 200, False),
        ("nhn_operator", "nhn", 200, True),
        ("nhn_auditor", "nhn", 200, False),
        ("other_kommune_admin", "kommune", 404, False),
        ("vendor_admin", "kommune", 404, False),
        ("nhn_operator", "kommune", 404, False),
    ],
)
def test_the_members_of_each_kind_of_organisation_are_listed_for_its_members(
    client: Client,
    people: dict[str, Any],
    request: pytest.FixtureRequest,
    who: str,
    whose: str,
    expected: int,
    manages: bool,
) -> None:
    organisation: Organisation = request.getfixturevalue(whose)
    client.force_login(people[who])

    response = client.get(url(organisation))

    assert response.status_code == expected
    if expected == 200:
        html = response.content.decode()
        for membership in Membership.objects.filter(organisation=organisation):
            assert membership.email in html
        assert ("Inviter en person" in html) is manages


def test_the_list_shows_open_invitations_filters_sorts_and_pages(
    client: Client,
    people: dict[str, Any],
    kommune: Organisation,
    django_assert_max_num_queries: Any,
) -> None:
    for n in range(30):
        MembershipFactory(
            organisation=kommune,
            user=None,
            email=f"invitert{n:02}@kommune.example",
            role=Role.KOMMUNE_READER,
        )
    client.force_login(people["kommune_admin"])

    with django_assert_max_num_queries(10):
        first = client.get(url(kommune) + "?sort=-email").content.decode()
    invited = client.get(url(kommune) + "?status=invited&q=invitert0").content.decode()
    admins = client.get(url(kommune) + "?role=kommune_admin").content.decode()

    assert "Viser 1–25 av 32" in first
    assert "invitert29@kommune.example" in first
    assert invited.count("Invitert, ikke logget inn ennå</span>") == 10
    assert people["kommune_admin"].username in admins
    assert people["kommune_reader"].username not in admins


def test_an_admin_invites_a_person_with_a_role_of_the_organisations_kind(
    client: Client, people: dict[str, Any], kommune: Organisation
) -> None:
    client.force_login(people["kommune_admin"])
    form = client.get(url(kommune, "person_invite")).content.decode()
    assert "Kommuneleser" in form
    assert "Leverandøradministrator" not in form

    response = client.post(
        url(kommune, "person_invite"), {"email": " Ola@Kommune.example ", "role": "kommune_reader"}
    )

    assert response.status_code == 302
    membership = Membership.objects.get(organisation=kommune, email="ola@kommune.example")
    assert membership.role == Role.KOMMUNE_READER
    assert membership.user is None
    assert messages_of(response) == [
        "ola@kommune.example er invitert som kommuneleser. Rollen gjelder når hen logger inn "
        "med den adressen; til da står hen som invitert i listen."
    ]
    assert AuditEvent.objects.filter(action="membership.invited", object_id=membership.pk).exists()


def test_inviting_someone_who_has_logged_in_before_gives_them_the_role_at_once(
    client: Client, people: dict[str, Any], vendor: Organisation
) -> None:
    UserFactory(username="utvikler@leverandor.example")
    client.force_login(people["vendor_admin"])

    response = client.post(
        url(vendor, "person_invite"),
        {"email": "utvikler@leverandor.example", "role": "vendor_developer"},
    )

    assert response.status_code == 302
    assert Membership.objects.get(email="utvikler@leverandor.example").user is not None
    assert "er nå leverandørutvikler i" in messages_of(response)[0]


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        (
            {"email": "ikke-en-adresse", "role": "kommune_reader"},
            "email",
            "Oppgi en gyldig epost-adresse.",
        ),
        ({"email": "ny@kommune.example", "role": "vendor_admin"}, "role", "Velg et gyldig valg"),
        ({"email": "ny@kommune.example"}, "role", "Dette feltet er påkrevd."),
    ],
)
def test_bad_input_gives_field_errors_keeps_what_was_typed_and_invites_nobody(
    client: Client,
    people: dict[str, Any],
    kommune: Organisation,
    data: dict[str, str],
    field: str,
    error: str,
) -> None:
    client.force_login(people["kommune_admin"])
    before = Membership.objects.count()

    response = client.post(url(kommune, "person_invite"), data)

    assert response.status_code == 200
    assert field in response.context["form"].errors
    html = response.content.decode()
    assert error in html
    assert f'href="#id_{field}"' in html
    assert f'value="{data["email"]}"' in html
    assert Membership.objects.count() == before


def test_the_services_refusal_of_a_second_membership_shows_on_the_form(
    client: Client, people: dict[str, Any], kommune: Organisation
) -> None:
    client.force_login(people["kommune_admin"])

    response = client.post(
        url(kommune, "person_invite"),
        {"email": people["kommune_reader"].username.upper(), "role": "kommune_admin"},
    )

    assert response.status_code == 200
    assert "Denne personen er allerede medlem av organisasjonen." in response.content.decode()
    assert (
        Membership.objects.get(organisation=kommune, user=people["kommune_reader"]).role
        == Role.KOMMUNE_READER
    )


def test_an_admin_changes_a_role(
    client: Client, people: dict[str, Any], kommune: Organisation
) -> None:
    reader = Membership.objects.get(organisation=kommune, user=people["kommune_reader"])
    client.force_login(people["kommune_admin"])
    assert "Endre rolle" in client.get(url(kommune, "person", reader.pk)).content.decode()

    response = client.post(url(kommune, "person", reader.pk), {"role": "kommune_admin"})

    assert response.status_code == 302
    reader.refresh_from_db()
    assert reader.role == Role.KOMMUNE_ADMIN
    assert messages_of(response) == [
        f"{reader.email} er nå kommuneadministrator. Det gjelder fra neste side hen åpner."
    ]


def test_the_last_admin_cannot_step_down_and_is_told_why(
    client: Client, people: dict[str, Any], kommune: Organisation
) -> None:
    me = Membership.objects.get(organisation=kommune, user=people["kommune_admin"])
    client.force_login(people["kommune_admin"])

    demoted = client.post(url(kommune, "person", me.pk), {"role": "kommune_reader"})
    removed = client.post(url(kommune, "person_remove", me.pk))

    for response in (demoted, removed):
        assert response.status_code == 200
        assert "Virksomheten ville stå uten administrator." in response.content.decode()
    me.refresh_from_db()
    assert me.role == Role.KOMMUNE_ADMIN


def test_an_admin_removes_a_person_after_confirming(
    client: Client, people: dict[str, Any], kommune: Organisation
) -> None:
    reader = Membership.objects.get(organisation=kommune, user=people["kommune_reader"])
    client.force_login(people["kommune_admin"])

    confirm = client.get(url(kommune, "person_remove", reader.pk))
    assert confirm.status_code == 200
    assert f"Fjerne {reader.email} fra {kommune.name}?" in confirm.content.decode()
    assert Membership.objects.filter(pk=reader.pk).exists()

    response = client.post(url(kommune, "person_remove", reader.pk))

    assert response.status_code == 302
    assert not Membership.objects.filter(pk=reader.pk).exists()
    assert f"{reader.email} har ikke lenger en rolle i {kommune.name}." in messages_of(response)[0]


def test_an_admin_who_removes_themselves_is_sent_to_their_organisations(
    client: Client, people: dict[str, Any], kommune: Organisation
) -> None:
    MembershipFactory(organisation=kommune, role=Role.KOMMUNE_ADMIN)
    me = Membership.objects.get(organisation=kommune, user=people["kommune_admin"])
    client.force_login(people["kommune_admin"])

    response = client.post(url(kommune, "person_remove", me.pk))

    assert response["Location"] == reverse("tenants:home")
    assert client.get(url(kommune)).status_code == 404


def test_a_reader_reads_but_may_not_invite_change_or_remove(
    client: Client, people: dict[str, Any], kommune: Organisation
) -> None:
    admin = Membership.objects.get(organisation=kommune, user=people["kommune_admin"])
    client.force_login(people["kommune_reader"])
    before = sorted(Membership.objects.values_list("email", "role"))

    page = client.get(url(kommune, "person", admin.pk))
    invite = client.post(
        url(kommune, "person_invite"), {"email": "x@k.example", "role": "kommune_reader"}
    )
    change = client.post(url(kommune, "person", admin.pk), {"role": "kommune_reader"})
    remove = client.post(url(kommune, "person_remove", admin.pk))

    assert page.status_code == 200
    assert "Bare en administrator kan endre roller." in page.content.decode()
    assert (invite.status_code, change.status_code, remove.status_code) == (403, 403, 403)
    assert client.get(url(kommune, "person_invite")).status_code == 403
    assert sorted(Membership.objects.values_list("email", "role")) == before


def test_a_member_of_another_organisation_is_not_found(
    client: Client, people: dict[str, Any], kommune: Organisation, vendor: Organisation
) -> None:
    theirs = Membership.objects.get(organisation=vendor, user=people["vendor_admin"])
    client.force_login(people["kommune_admin"])

    assert client.get(url(kommune, "person", theirs.pk)).status_code == 404
    assert client.post(url(kommune, "person_remove", theirs.pk)).status_code == 404
    assert Membership.objects.filter(pk=theirs.pk).exists()


def test_an_nhn_operator_appoints_an_auditor_of_nhn(
    client: Client, people: dict[str, Any], nhn: Organisation
) -> None:
    client.force_login(people["nhn_operator"])

    response = client.post(
        url(nhn, "person_invite"), {"email": "revisor@nhn.example", "role": "nhn_auditor"}
    )

    assert response.status_code == 302
    assert Membership.objects.get(email="revisor@nhn.example").organisation == nhn
