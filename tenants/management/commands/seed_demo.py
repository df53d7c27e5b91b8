"""Demo data: NHN, three kommuner, four vendors with products, and their first people.

Idempotent: running it again changes nothing. No clients, requests or grants: the demo starts clean.
It also writes the demo people to ``OIDC_DEMO_PEOPLE_FILE``, which the local provider's development
login page offers as one-click choices.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import translation

from tenants import services
from tenants.models import Membership, Organisation, Product, Role

NHN = ("994598759", "Norsk helsenett SF")
KOMMUNER = [
    # orgnr, name, kommune number, admin
    ("958935420", "Oslo kommune", "0301", "admin@oslo.example"),
    ("942110464", "Trondheim kommune", "5001", "admin@trondheim.example"),
    ("964338531", "Bergen kommune", "4601", "admin@bergen.example"),
]
VENDORS = [
    # orgnr, name, admin, product name, system type, is Epic
    ("910000004", "Journal AS", "admin@journal.example", "Journal EPJ", "EPJ", False),
    ("910000012", "Trygghet AS", "admin@trygghet.example", "Trygghet Alarm", "VFT", False),
    ("910000020", "Hjemme AS", "admin@hjemme.example", "Hjemme Oppfølging", "DHO", False),
    ("910000039", "Helseplattformen AS", "admin@helseplattformen.example", "Epic", "EPJ", True),
]
#: kommune orgnr -> the vendor orgnr whose EPJ it runs today.
EPJ_IN_USE = {"958935420": "910000004", "942110464": "910000039", "964338531": "910000004"}

DEMO_LOGINS = [
    ("drift@nhn.example", Role.NHN_OPERATOR, NHN[1]),
    ("revisor@nhn.example", Role.NHN_AUDITOR, NHN[1]),
    *[(admin, Role.KOMMUNE_ADMIN, name) for _, name, _, admin in KOMMUNER],
    *[(admin, Role.VENDOR_ADMIN, name) for _, name, admin, *_ in VENDORS],
]


def _organisation(orgnr: str, name: str, kind: str, kommune: str | None = None) -> Organisation:
    existing = Organisation.objects.filter(orgnr=orgnr).first()
    if existing is not None:
        return existing
    return services.organisation_register(orgnr=orgnr, name=name, kind=kind, kommune_number=kommune)


def _member(organisation: Organisation, email: str, role: str) -> None:
    if not Membership.objects.filter(organisation=organisation, email=email).exists():
        services.membership_invite(organisation=organisation, email=email, role=role)


def _product(vendor: Organisation, name: str, system_type: str, is_epic: bool) -> Product:
    existing = Product.objects.filter(vendor=vendor, name=name).first()
    if existing is not None:
        return existing
    product = services.product_register(
        vendor=vendor, name=name, system_type=system_type, is_epic=is_epic
    )
    # The demo is one in which NHN has verified every product, so production orders go through.
    return services.product_verify(
        product=product, system_type=system_type, is_epic=is_epic, actor=None
    )


def demo_people() -> list[dict[str, Any]]:
    """The demo logins as the provider's login page shows them: labels in both languages."""
    people = []
    for email, role, organisation in DEMO_LOGINS:
        labels = {}
        for language, _name in settings.LANGUAGES:
            with translation.override(language):
                labels[language] = str(Role(role).label)
        people.append(
            {"email": email, "organisation": organisation, "role": str(role), "role_label": labels}
        )
    return people


def write_demo_people(target: Path) -> None:
    """Write the file whole or not at all (a rename), so the provider never reads half of it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps({"people": demo_people()}, ensure_ascii=False, indent=2) + "\n")
    tmp.replace(target)


class Command(BaseCommand):
    help = "Create the demo organisations, products and logins (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--people-file",
            default=str(settings.OIDC_DEMO_PEOPLE_FILE),
            help="Where to write the demo people for the local provider's login page "
            "(default: OIDC_DEMO_PEOPLE_FILE, var/oidc/demo-people.json).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.seed()
        write_demo_people(Path(options["people_file"]))
        self.stdout.write(self.style.SUCCESS("Demo data in place. Log in as any of:"))
        for email, role, organisation in DEMO_LOGINS:
            self.stdout.write(f"  {email:34} {Role(role).label} ({organisation})")

    @transaction.atomic
    def seed(self) -> None:
        nhn = _organisation(*NHN, kind=Organisation.Kind.OPERATOR)
        _member(nhn, "drift@nhn.example", Role.NHN_OPERATOR)
        _member(nhn, "revisor@nhn.example", Role.NHN_AUDITOR)

        epj_by_vendor: dict[str, Product] = {}
        for orgnr, name, admin, product, system_type, is_epic in VENDORS:
            vendor = _organisation(orgnr, name, kind=Organisation.Kind.VENDOR)
            _member(vendor, admin, Role.VENDOR_ADMIN)
            epj_by_vendor[orgnr] = _product(vendor, product, system_type, is_epic)

        for orgnr, name, number, admin in KOMMUNER:
            kommune = _organisation(orgnr, name, kind=Organisation.Kind.KOMMUNE, kommune=number)
            _member(kommune, admin, Role.KOMMUNE_ADMIN)
            if kommune.epj_product_id is None:
                services.kommune_epj_set(kommune=kommune, product=epj_by_vendor[EPJ_IN_USE[orgnr]])
