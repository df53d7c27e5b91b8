"""Print the audit chain's head (the newest event's id, time and hash) as JSON, to be kept
somewhere the portal cannot write: `audit_verify --head` with it later proves that nothing up to
that event was rewritten or removed.

    manage.py audit_head > /secure/elsewhere/audit-head-$(date +%F).json
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from audit.selectors import audit_chain_head


class Command(BaseCommand):
    help = "Print the audit chain's head (id, occurred_at, hash) as JSON."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps(audit_chain_head().as_json()))
