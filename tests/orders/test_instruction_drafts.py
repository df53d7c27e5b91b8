"""A draft of an instruction may be incomplete while it is filled in step by step; only a
complete one is signed."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from orders import services
from orders.models import Service
from tests.conftest import World

pytestmark = pytest.mark.django_db


def test_a_draft_is_saved_incomplete_and_names_what_it_lacks_before_it_is_signed(
    world: World,
) -> None:
    admin = world.people["kommune_admin"]
    draft = services.instruction_create(
        kommune=world.other_kommune, actor=admin, services=[], data={}
    )

    assert services.instruction_missing(draft) == [
        "services",
        *services.INSTRUCTION_FIELDS_TO_SIGN,
    ]
    with pytest.raises(ValidationError) as refused:
        services.instruction_sign(instruction=draft, actor=admin)
    assert set(refused.value.message_dict) == {"services", *services.INSTRUCTION_FIELDS_TO_SIGN}
    draft.refresh_from_db()
    assert draft.signed_at is None


def test_the_grants_a_signature_revokes_are_the_live_production_ones_it_no_longer_covers(
    world: World,
) -> None:
    (patient,) = world.vendor_grants("patient.read")
    draft = services.instruction_create(
        kommune=world.kommune,
        actor=world.people["kommune_admin"],
        services=list(Service.objects.exclude(code="patient")),
        data={},
    )

    assert list(services.instruction_uncovered_grants(draft)) == [patient]
    assert not services.instruction_uncovered_grants(world.instruction).exists()


def test_an_update_that_changes_nothing_records_no_event_and_one_that_does_records_it(
    world: World,
) -> None:
    """The guided form saves each step; a step sent as it was (the sharing step's default, say)
    is no change for the audit trail to show."""
    admin = world.people["kommune_admin"]
    draft = services.instruction_create(
        kommune=world.other_kommune, actor=admin, services=[], data={}
    )
    updates = AuditEvent.objects.filter(action="instruction.updated", object_id=str(draft.pk))

    services.instruction_update(
        instruction=draft, actor=admin, services=None, data={"sharing_scope": draft.sharing_scope}
    )
    services.instruction_update(instruction=draft, actor=admin, services=[], data={})
    assert not updates.exists()

    services.instruction_update(
        instruction=draft, actor=admin, services=None, data={"retention": "Ett år."}
    )
    [event] = updates
    assert event.before is not None
    assert event.after is not None
    assert (event.before["retention"], event.after["retention"]) == ("", "Ett år.")
