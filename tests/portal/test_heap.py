"""The web entry point loads every view at start-up and keeps what it loaded out of the garbage
collector's full collections (``portal.heap``); the worker's side is in test_celery_worker.py."""

from __future__ import annotations

import json
import os
import subprocess

from tests.components import PROJECT_DIR, VENV_BIN

LOAD_WSGI = """
import gc, json, sys
before = gc.get_freeze_count()
import portal.wsgi
print(json.dumps({
    "before": before,
    "frozen": gc.get_freeze_count(),
    "views_loaded": "orders.api.views" in sys.modules,
}))
"""


def test_the_wsgi_entry_point_loads_the_views_and_freezes_them() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "python"), "-c", LOAD_WSGI],
        cwd=PROJECT_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])

    assert answer["before"] == 0
    assert answer["views_loaded"]  # in the start-up, not in the first request
    assert answer["frozen"] > 10_000
