"""Settings come from the environment; production-like variables pass Django's deploy checks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.components import PROJECT_DIR, VENV_BIN

PRODUCTION_LIKE = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "x7Lq2v9PzR4mT8wK1nB6cF3hJ5dS0gA2eY7uI9oP4lZ6xC1vB8nM3qW5rT0yU2iO",
    "DJANGO_ALLOWED_HOSTS": "tilgang.nhn.example",
    "OIDC_RP_CLIENT_SECRET": "from-the-secret-store",
    "OIDC_INITIAL_ACCESS_TOKEN": "from-the-secret-store-too",
    "TILGANG_ENCRYPTION_KEY": "and-one-more-from-the-secret-store",
    "OIDC_OP_ISSUER": "https://login.nhn.example",
    "DATABASE_URL": "postgresql://tilgang@127.0.0.1:5432/tilgang",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
}


def manage(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OIDC_"))}
    return subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", *args],
        cwd=PROJECT_DIR,
        env={**clean, "TILGANG_VAR_DIR": str(tmp_path / "var"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_reports_nothing_with_production_like_variables(tmp_path: Path) -> None:
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_LIKE, tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "warning"),
    [
        ("DJANGO_SECURE_HSTS_SECONDS", "0", "security.W004"),
        ("DJANGO_SESSION_COOKIE_SECURE", "0", "security.W012"),
        ("DJANGO_CSRF_COOKIE_SECURE", "0", "security.W016"),
        ("DJANGO_SECURE_SSL_REDIRECT", "0", "security.W008"),
    ],
)
def test_check_deploy_fails_when_production_weakens_one_protection(
    tmp_path: Path, variable: str, value: str, warning: str
) -> None:
    """The check above can fail on one weakened setting, not only on DEBUG."""
    env = {**PRODUCTION_LIKE, variable: value}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert warning in result.stdout + result.stderr


def test_check_deploy_does_complain_in_development(tmp_path: Path) -> None:
    """The check above can fail: development settings are not fit to deploy."""
    result = manage("check", "--deploy", "--fail-level", "WARNING", env={}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "DEBUG" in result.stdout + result.stderr


def test_secrets_are_required_outside_development(tmp_path: Path) -> None:
    env = {k: v for k, v in PRODUCTION_LIKE.items() if k != "OIDC_RP_CLIENT_SECRET"}
    result = manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "OIDC_RP_CLIENT_SECRET (or OIDC_RP_CLIENT_SECRET_FILE) must be set" in result.stderr


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    secret_file = tmp_path / "oidc-secret"
    secret_file.write_text("from-a-file\n")
    env = {k: v for k, v in PRODUCTION_LIKE.items() if k != "OIDC_RP_CLIENT_SECRET"}
    env["OIDC_RP_CLIENT_SECRET_FILE"] = str(secret_file)
    result = manage("check", "--deploy", env=env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr


def test_development_generates_secrets_once_into_var(tmp_path: Path) -> None:
    assert manage("check", env={}, tmp_path=tmp_path).returncode == 0
    secret = tmp_path / "var" / "secrets" / "django_secret_key"
    first = secret.read_text()
    assert len(first) >= 50
    assert oct(secret.stat().st_mode & 0o777) == "0o600"
    assert manage("check", env={}, tmp_path=tmp_path).returncode == 0
    assert secret.read_text() == first
