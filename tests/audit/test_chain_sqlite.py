"""The chain on `make run`'s SQLite default: the demo's events, single and batched writes from
several threads, `audit_verify`, `audit_head` and an export; a changed row is named (SQLite has
no trigger: there the chain alone shows it). Run through `manage.py` against a temporary SQLite
file, as `tests/orders/test_sqlite.py` does."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from tests.components import manage

SCRIPT = """
import threading
from django.db import connection, transaction
from audit.services import audit_event_record, audit_events_batched

def write(n):
    try:
        for r in range(10):
            with transaction.atomic():
                if r % 2:
                    with audit_events_batched():
                        for b in range(3):
                            audit_event_record(actor=None, action=f"w{n}.{r}.{b}", after={"b": b})
                else:
                    audit_event_record(actor=None, action=f"w{n}.{r}", after={"å": [r, None]})
    finally:
        connection.close()

threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("WRITTEN")

import json
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient
from tenants.models import Membership, Role

auditor = get_user_model().objects.create_user("revisor@sqlite.test")
Membership.objects.filter(role=Role.NHN_AUDITOR).update(user=auditor, bound_at=timezone.now())
api = APIClient(HTTP_HOST="localhost")
api.force_authenticate(auditor)
exported = api.get("/api/v1/audit-events/export/", {"format": "jsonl", "action": "w1.3.2"})
assert exported.status_code == 200, exported.content
[line] = [json.loads(text) for text in b"".join(exported.streaming_content).splitlines()]
assert line["after"] == {"b": 2}, line
assert api.get("/api/v1/audit-events/head/").json()["hash"]
print("EXPORTED")
"""


def test_the_chain_holds_on_sqlite_and_audit_verify_names_a_changed_event(tmp_path: Path) -> None:
    database = tmp_path / "tilgang.sqlite3"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")
    }
    env |= {
        "DATABASE_URL": f"sqlite:///{database}",
        "TILGANG_VAR_DIR": str(tmp_path / "var"),
        "GATEWAY_DIR": str(tmp_path / "var" / "gateway"),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    for step in (("migrate", "--no-input", "-v0"), ("seed_demo",), ("shell", "-c", SCRIPT)):
        done = manage(*step, env=env)
        assert done.returncode == 0, (step, done.stdout[-3000:], done.stderr[-3000:])
    assert "WRITTEN" in done.stdout
    assert "EXPORTED" in done.stdout

    intact = manage("audit_verify", env=env)
    assert intact.returncode == 0, intact.stderr
    head = json.loads(manage("audit_head", env=env).stdout)
    with sqlite3.connect(database) as db:
        count, last = db.execute("SELECT count(*), max(id) FROM audit_auditevent").fetchone()
        assert count > 4 * (5 + 5 * 3)  # the demo's events and the threads'
        assert head["id"] == last
        middle = db.execute("SELECT id FROM audit_auditevent WHERE action = 'w2.4'").fetchone()[0]
        db.execute("UPDATE audit_auditevent SET actor_label = 'someone' WHERE id = ?", [middle])

    broken = manage("audit_verify", env=env)
    assert broken.returncode == 1
    assert f"audit chain broken at event {middle}" in broken.stderr
