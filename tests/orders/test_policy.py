"""The self-service policy, rule by rule (DESIGN.md section 5)."""

from __future__ import annotations

import datetime

import pytest

from orders import policy
from orders.models import AccessRequest, Instruction, ItemStatus, Service, ServiceAvailability
from tenants.models import Environment, Organisation, Product
from tests.factories import DelegationFactory, InstructionFactory, ProductFactory

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2026, 11, 25)


def decide(
    kommune: Organisation,
    code: str,
    access: str = "read",
    *,
    system_type: str = "VFT",
    environment: str = Environment.PRODUCTION,
    initiated_by: str = AccessRequest.Initiator.VENDOR,
    instruction: Instruction | None = None,
    delegated: bool = True,
    kommune_approved: bool = False,
    vendor_consented: bool = False,
    today: datetime.date = TODAY,
) -> policy.Decision:
    service = Service.objects.with_availability().get(code=code)
    return policy.decide(
        policy.Context(
            service=service,
            access=access,
            system_type=system_type,
            environment=environment,
            kommune=kommune,
            vendor_name="Trygghet AS",
            initiated_by=initiated_by,
            instruction=instruction,
            delegation=DelegationFactory(kommune=kommune) if delegated else None,
            kommune_approved=kommune_approved,
            vendor_consented=vendor_consented,
            today=today,
        )
    )


@pytest.fixture
def signed(kommune: Organisation) -> Instruction:
    return InstructionFactory(kommune=kommune)


def test_everything_in_place_is_approved(kommune: Organisation, signed: Instruction) -> None:
    decision = decide(kommune, "patient", instruction=signed)
    assert decision.status == ItemStatus.APPROVED
    assert decision.instruction == signed
    assert decision.delegation is not None


@pytest.mark.parametrize(
    ("code", "access", "system_type"),
    [
        ("patient", "write", "VFT"),
        ("patient", "read", "EPJ"),
        ("observation", "read", "DHO"),
        ("journaling", "write", "EPJ"),
    ],
)
def test_rule_1_the_catalogue_decides_who_reads_and_writes(
    kommune: Organisation, signed: Instruction, code: str, access: str, system_type: str
) -> None:
    decision = decide(kommune, code, access, system_type=system_type, instruction=signed)
    assert decision.status == ItemStatus.REJECTED
    assert decision.reason_code == "system_type"
    text = policy.reason_text(decision.reason_code, decision.reason_params)
    assert system_type in text
    assert Service.objects.get(code=code).name_nb in text  # the service by its name (bokmål)


def test_rule_2_epic_only_services_need_a_kommune_on_epic(
    kommune: Organisation, signed: Instruction
) -> None:
    kommune.epj_product = ProductFactory(system_type=Product.SystemType.EPJ, name="Journal EPJ")
    kommune.save()
    refused = decide(kommune, "condition", instruction=signed)
    assert (refused.status, refused.reason_code) == (ItemStatus.REJECTED, "epj_not_epic")
    assert "Journal EPJ" in policy.reason_text(refused.reason_code, refused.reason_params)

    kommune.epj_product = ProductFactory(system_type="EPJ", name="Epic", is_epic=True)
    kommune.save()
    assert decide(kommune, "condition", instruction=signed).status == ItemStatus.APPROVED


def test_rule_2_a_kommune_that_recorded_no_epj_is_told_to_record_it(
    kommune: Organisation, signed: Instruction
) -> None:
    decision = decide(kommune, "medication-statement", instruction=signed)
    assert (decision.status, decision.reason_code) == (ItemStatus.REJECTED, "epj_unknown")


def test_rule_2_reads_the_epj_switch_plan(kommune: Organisation, signed: Instruction) -> None:
    """Test follows a planned switch to Epic at once; production from the switch date."""
    kommune.epj_product = ProductFactory(system_type="EPJ", name="Journal EPJ")
    kommune.epj_switch_product = ProductFactory(system_type="EPJ", name="Epic", is_epic=True)
    kommune.epj_switch_date = datetime.date(2027, 3, 1)
    kommune.save()

    assert decide(kommune, "condition", environment="test").status == ItemStatus.APPROVED
    before = decide(kommune, "condition", instruction=signed)
    assert before.reason_code == "epj_not_epic"
    after = decide(kommune, "condition", instruction=signed, today=datetime.date(2027, 3, 1))
    assert after.status == ItemStatus.APPROVED


def test_rule_3_production_needs_a_signed_instruction_covering_the_service(
    kommune: Organisation,
) -> None:
    missing = decide(kommune, "patient", instruction=None)
    assert (missing.status, missing.reason_code) == (
        ItemStatus.AWAITING_KOMMUNE,
        "instruction_missing",
    )
    narrow = InstructionFactory(kommune=kommune, services=Service.objects.filter(code="care-plan"))
    assert decide(kommune, "patient", instruction=narrow).reason_code == "instruction_missing"
    assert decide(kommune, "care-plan", instruction=narrow).status == ItemStatus.APPROVED


def test_rule_3_the_test_environment_needs_no_instruction(kommune: Organisation) -> None:
    decision = decide(kommune, "patient", environment=Environment.TEST, instruction=None)
    assert decision.status == ItemStatus.APPROVED
    assert decision.instruction is None


def test_rule_4_a_vendor_without_delegation_waits_for_the_kommune(
    kommune: Organisation, signed: Instruction
) -> None:
    decision = decide(kommune, "patient", instruction=signed, delegated=False)
    assert (decision.status, decision.reason_code) == (
        ItemStatus.AWAITING_KOMMUNE,
        "delegation_missing",
    )
    assert "Trygghet AS" in policy.reason_text(decision.reason_code, decision.reason_params)
    approved = decide(
        kommune, "patient", instruction=signed, delegated=False, kommune_approved=True
    )
    assert approved.status == ItemStatus.APPROVED


def test_rule_4_the_kommune_asking_itself_needs_no_delegation_but_the_vendor_s_consent(
    kommune: Organisation, signed: Instruction
) -> None:
    waiting = decide(
        kommune,
        "patient",
        instruction=signed,
        delegated=False,
        initiated_by=AccessRequest.Initiator.KOMMUNE,
    )
    assert (waiting.status, waiting.reason_code) == (
        ItemStatus.AWAITING_VENDOR,
        "vendor_consent_missing",
    )
    decision = decide(
        kommune,
        "patient",
        instruction=signed,
        delegated=False,
        initiated_by=AccessRequest.Initiator.KOMMUNE,
        vendor_consented=True,
    )
    assert decision.status == ItemStatus.APPROVED


def test_rule_5_a_service_not_yet_open_waits_for_its_date(
    kommune: Organisation, signed: Instruction
) -> None:
    ServiceAvailability.objects.filter(service__code="care-plan", environment="production").update(
        available_from=datetime.date(2027, 1, 1)
    )
    waiting = decide(kommune, "care-plan", instruction=signed)
    assert (waiting.status, waiting.reason_code) == (
        ItemStatus.AWAITING_AVAILABILITY,
        "not_available",
    )
    assert waiting.reason_params["date"] == "2027-01-01"
    opened = decide(kommune, "care-plan", instruction=signed, today=datetime.date(2027, 1, 1))
    assert opened.status == ItemStatus.APPROVED


def test_rule_5_a_service_with_no_date_waits_until_nhn_opens_it(
    kommune: Organisation, signed: Instruction
) -> None:
    ServiceAvailability.objects.filter(service__code="care-plan", environment="test").delete()
    decision = decide(kommune, "care-plan", environment="test", instruction=signed)
    assert (decision.status, decision.reason_code) == (
        ItemStatus.AWAITING_AVAILABILITY,
        "not_scheduled",
    )


def test_the_first_rule_that_fails_decides(kommune: Organisation) -> None:
    """No instruction, no delegation and a write a VFT may not do: the catalogue speaks first."""
    decision = decide(kommune, "patient", "write", instruction=None, delegated=False)
    assert decision.reason_code == "system_type"


def test_every_reason_reads_in_bokmal_and_english(kommune: Organisation) -> None:
    from django.utils import translation

    params = {
        "service": "patient",
        "kommune": "Oslo kommune",
        "environment": "produksjon",
        "vendor": "Trygghet AS",
        "system_type": "VFT",
        "access": "skrive",
        "allowed": "EPJ",
        "epj": "Journal EPJ",
        "date": "2027-01-01",
        "person": "Kari",
        "product": "Trygghet Alarm",
        "reason": "Ikke avtalt",
    }
    for code in policy.REASONS:
        with translation.override("nb"):
            norwegian = policy.reason_text(code, params)
        with translation.override("en"):
            english = policy.reason_text(code, params)
        assert norwegian
        assert english
        assert norwegian != english, code
