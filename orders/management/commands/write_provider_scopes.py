"""Write the catalogue's scopes for the local OpenID provider, which reads them at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from orders.models import Service


class Command(BaseCommand):
    help = "Write every service's read and write scope to the local provider's scopes file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output",
            default=str(settings.VAR_DIR / "oidc" / "scopes.txt"),
            help="The file to write (default: var/oidc/scopes.txt).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        scopes = sorted(
            scope
            for read, write in Service.objects.values_list("read_scope", "write_scope")
            for scope in (read, write)
        )
        target = Path(options["output"])
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text("\n".join(scopes) + "\n")
        tmp.replace(target)
        self.stdout.write(f"{len(scopes)} scopes written to {target}")
