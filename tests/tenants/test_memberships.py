from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from guardian.shortcuts import get_perms

from tenants import services
from tenants.models import Membership, Organisation, Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_an_invitation_binds_to_the_person_at_their_first_login(kommune: Organisation) -> None:
    invitation = services.membership_invite(
        organisation=kommune, email="Kari.Nordmann@Oslo.example ", role=Role.KOMMUNE_ADMIN
    )
    assert invitation.user is None
    assert invitation.email == "kari.nordmann@oslo.example"

    person = UserFactory(username="kari.nordmann@oslo.example")
    bound = services.memberships_bind(user=person, identity="KARI.NORDMANN@oslo.example")

    assert [m.pk for m in bound] == [invitation.pk]
    invitation.refresh_from_db()
    assert invitation.user == person
    assert invitation.bound_at is not None


def test_inviting_someone_who_has_logged_in_before_binds_at_once(vendor: Organisation) -> None:
    person = UserFactory(username="dev@vendor.example")
    membership = services.membership_invite(
        organisation=vendor, email="dev@vendor.example", role=Role.VENDOR_DEVELOPER
    )
    assert membership.user == person


def test_a_second_membership_for_the_same_person_is_refused(kommune: Organisation) -> None:
    services.membership_invite(organisation=kommune, email="a@k.example", role=Role.KOMMUNE_READER)
    with pytest.raises(ValidationError) as excinfo:
        services.membership_invite(
            organisation=kommune, email="A@K.example", role=Role.KOMMUNE_ADMIN
        )
    assert "allerede medlem" in str(excinfo.value)  # bokmål first
    assert Membership.objects.get(organisation=kommune, email="a@k.example").role == (
        Role.KOMMUNE_READER
    )


@pytest.mark.parametrize(
    ("kind_fixture", "role"),
    [("kommune", Role.VENDOR_ADMIN), ("vendor", Role.KOMMUNE_ADMIN), ("vendor", Role.NHN_OPERATOR)],
)
def test_a_role_the_organisation_kind_does_not_give_is_refused(
    request: pytest.FixtureRequest, kind_fixture: str, role: str
) -> None:
    organisation = request.getfixturevalue(kind_fixture)
    with pytest.raises(ValidationError) as excinfo:
        services.membership_invite(organisation=organisation, email="x@y.example", role=role)
    assert "role" in excinfo.value.message_dict
    assert not Membership.objects.filter(email="x@y.example").exists()


def test_admins_hold_object_permissions_on_their_organisation_and_readers_only_view(
    kommune: Organisation,
) -> None:
    admin = UserFactory(username="admin@k.example")
    reader = UserFactory(username="reader@k.example")
    services.membership_invite(organisation=kommune, email=admin.username, role=Role.KOMMUNE_ADMIN)
    services.membership_invite(
        organisation=kommune, email=reader.username, role=Role.KOMMUNE_READER
    )

    assert set(get_perms(admin, kommune)) == {
        "view_organisation",
        "change_organisation",
        "manage_organisation",
    }
    assert set(get_perms(reader, kommune)) == {"view_organisation"}
    assert admin.has_perm("tenants.manage_organisation", kommune)
    assert not reader.has_perm("tenants.manage_organisation", kommune)


def test_permission_sync_removes_what_memberships_no_longer_give(kommune: Organisation) -> None:
    admin = UserFactory(username="admin@k.example")
    membership = services.membership_invite(
        organisation=kommune, email=admin.username, role=Role.KOMMUNE_ADMIN
    )
    Membership.objects.filter(pk=membership.pk).update(role=Role.KOMMUNE_READER)

    services.organisation_permissions_sync(organisation=kommune)

    assert set(get_perms(admin, kommune)) == {"view_organisation"}
    membership.delete()
    services.organisation_permissions_sync(organisation=kommune)
    assert get_perms(admin, kommune) == []


def test_an_open_invitation_holds_no_permissions(kommune: Organisation) -> None:
    services.membership_invite(organisation=kommune, email="later@k.example", role="kommune_admin")
    later = UserFactory(username="later@k.example")
    assert get_perms(later, kommune) == []  # the user exists now, but has not logged in yet
    services.memberships_bind(user=later, identity="later@k.example")
    assert "manage_organisation" in get_perms(later, kommune)


def test_a_duplicate_that_races_past_the_check_is_still_a_validation_error(
    kommune: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.membership_invite(organisation=kommune, email="a@k.example", role=Role.KOMMUNE_READER)
    # Simulate the race: the check before INSERT sees nothing, the constraint catches it.
    original = Membership.validate_constraints
    calls = {"n": 0}

    def first_check_misses(self: Membership, exclude: object = None) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            original(self, exclude)  # type: ignore[arg-type]

    monkeypatch.setattr(Membership, "validate_constraints", first_check_misses)
    with pytest.raises(ValidationError):
        services.membership_invite(organisation=kommune, email="a@k.example", role="kommune_admin")
    assert Membership.objects.filter(organisation=kommune).count() == 1
