"""Check the audit trail's hash chain end to end: exit 0 when every event follows from the one
before it, otherwise exit 1 naming the first event that does not.

    manage.py audit_verify                 # the whole chain
    manage.py audit_verify --head head.json  # and that a head saved earlier is still in it
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.selectors import CHUNK, audit_chain_verify, audit_head_problem


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain (streams; exits 1 at the first broken event)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--head",
            type=Path,
            help="a head saved earlier by audit_head (JSON): its event must still have its hash",
        )
        parser.add_argument("--chunk-size", type=int, default=CHUNK, help="rows read at a time")

    def handle(self, *args: Any, **options: Any) -> None:
        saved = None
        if options["head"] is not None:
            try:
                saved = json.loads(options["head"].read_text())
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot read the saved head {options['head']}: {exc}") from exc
            if not isinstance(saved, dict):
                raise CommandError("the saved head is not a chain head (id, occurred_at, hash)")
        started = time.monotonic()
        checked = audit_chain_verify(chunk_size=options["chunk_size"])
        if checked.broken is not None:
            raise CommandError(
                f"audit chain broken at event {checked.broken.event_id}: its hash "
                f"{checked.broken.stored or '(none)'} is not the hash of its content after the "
                f"event before it ({checked.broken.expected}); checked {checked.events} events"
            )
        if saved is not None and (problem := audit_head_problem(saved)) is not None:
            raise CommandError(problem)
        seconds = time.monotonic() - started
        self.stdout.write(
            f"audit chain intact: {checked.events} events, head {checked.last_id} "
            f"{checked.last_hash} ({seconds:.1f} s)"
            + (f"; the saved head (event {saved.get('id')}) is in it" if saved else "")
        )
