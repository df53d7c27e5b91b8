"""tests/leaks.py, the session-end search for secrets in logs and audit events, can fail: a
pytest of its own runs tests/portal/leak_probe.py, which leaks on purpose."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from django.db import connection

from tests.components import LOG_DIR, PROJECT_DIR, VENV_BIN


def probe(kind: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    database = connection.settings_dict
    env = {
        **os.environ,
        # A log directory and a database of its own: this session's stay untouched.
        "TILGANG_TEST_LOG_DIR": str(tmp_path / "logs"),
        "DATABASE_URL": (
            f"postgresql://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
            f"{database['PORT'] or 5432}/tilgang_leak_probe"
        ),
    }
    return subprocess.run(
        [
            str(VENV_BIN / "pytest"),
            "tests/portal/leak_probe.py",
            "-k",
            "logged" if kind == "log" else "audit",
            "-p",
            "no:cacheprovider",
            "--create-db",
        ],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_secret_in_a_log_fails_the_session(tmp_path: Path) -> None:
    result = probe("log", tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "SECRETS LEAKED:" in result.stdout
    assert "web.log: holds the Fernet key (TILGANG_ENCRYPTION_KEY)" in result.stdout


def test_a_secret_in_an_audit_event_fails_the_session(tmp_path: Path) -> None:
    if connection.vendor != "postgresql":
        pytest.fail("needs PostgreSQL: `make test` runs the suite on it")
    result = probe("audit", tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "(probe) holds Django's SECRET_KEY" in result.stdout


def test_the_session_keeps_its_logs_in_one_directory() -> None:
    assert LOG_DIR.is_dir()
    assert (LOG_DIR / "web.log").exists()
