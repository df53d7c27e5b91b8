"""List the products NHN has not verified whose clients still hold live production grants.

Production access goes by NHN's verification. Grants made before verification existed (or on a
vendor's word in any other way) are not taken away by the migration: NHN runs this at deploy,
verifies each product listed, and the verification re-evaluates its grants (revoking those the
verified type does not allow).
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Count, Q

from orders.models import Grant
from tenants.models import Environment, Product


class Command(BaseCommand):
    help = (
        "List unverified products whose clients hold live production grants; verify each "
        "(POST /api/v1/products/<id>/verify/), which re-evaluates its grants."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fail", action="store_true", help="Exit with status 1 when any product is listed."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        live = Q(
            clients__grants__in=Grant.objects.live(),
            clients__environment=Environment.PRODUCTION,
        )
        products = (
            Product.objects.filter(verified_at__isnull=True)
            .annotate(
                grants=Count("clients__grants", filter=live, distinct=True),
                client_count=Count("clients", filter=live, distinct=True),
                kommuner=Count("clients__grants__kommune", filter=live, distinct=True),
            )
            .filter(grants__gt=0)
            .order_by("vendor__name", "name")
            .values(
                "pk", "name", "system_type", "is_epic", "vendor__name", "vendor__orgnr",
                "grants", "client_count", "kommuner",
            )
        )  # fmt: skip
        rows = list(products)
        if not rows:
            self.stdout.write("No unverified product holds a live production grant.")
            return
        self.stdout.write(
            f"{len(rows)} unverified product(s) hold live production grants. Verify each "
            "(POST /api/v1/products/<id>/verify/ as an NHN operator); verifying re-evaluates "
            "its grants and revokes those the verified system type does not allow."
        )
        for p in rows:
            epic = " (Epic)" if p["is_epic"] else ""
            self.stdout.write(
                f"  {p['pk']}  {p['vendor__name']} ({p['vendor__orgnr']}): {p['name']}, "
                f"declared {p['system_type']}{epic}: "
                f"{p['grants']} live production grant{'s' if p['grants'] != 1 else ''}, "
                f"{p['client_count']} client{'s' if p['client_count'] != 1 else ''}, "
                f"{p['kommuner']} kommune{'r' if p['kommuner'] != 1 else ''}"
            )
        if options["fail"]:
            sys.exit(1)
