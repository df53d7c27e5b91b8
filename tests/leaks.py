"""Secrets never appear in logs or audit events: a check over the whole test session.

The secrets are the portal's own (Django's SECRET_KEY, the Fernet key TILGANG_ENCRYPTION_KEY,
the OpenID client secret, the provider's initial access token) and every registration access
token the session's providers issued (their stores hold them) or the portal kept
(provisioning.ClientRegistration).

- Logs: every component's log of the session is kept in one directory (``LOG_DIR`` in
  tests/components.py: the provider, Celery workers and beat, HAProxy and its access log, the
  echo upstream, Redis), and the in-process portal (the test client's and the live server's
  requests, the services) logs to web.log there too. At the session's end, after every fixture
  has stopped its processes, each file is searched for each secret.
- Audit events: rows live only as long as their test (rolled back or flushed after it), so
  after each test that used the database, before its fixtures are torn down, its audit events
  are searched (one query), and the registration tokens it left are added to the secrets.

A secret found fails the session (exit status 1) with where it was found, whatever order the
tests ran in: the check is a hook at the session's end, not a test.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.components import LOG_DIR

#: Secrets shorter than this are test placeholders that may occur by chance.
MIN_LENGTH = 12

_secrets: dict[str, str] = {}  # value -> what it is
_findings: list[str] = []


def add_secret(value: str | None, what: str) -> None:
    if value and len(value) >= MIN_LENGTH:
        _secrets.setdefault(value, what)


def _settings_secrets() -> None:
    from django.conf import settings

    from tests.integration import OIDC_TEST_CLIENT_SECRET

    add_secret(settings.SECRET_KEY, "Django's SECRET_KEY")
    add_secret(settings.TILGANG_ENCRYPTION_KEY, "the Fernet key (TILGANG_ENCRYPTION_KEY)")
    add_secret(settings.OIDC_RP_CLIENT_SECRET, "the OpenID client secret")
    add_secret(OIDC_TEST_CLIENT_SECRET, "the test provider's OpenID client secret")
    add_secret(settings.OIDC_INITIAL_ACCESS_TOKEN, "the initial access token")


def _provider_tokens() -> None:
    """The registration access tokens in the stores of the session's providers."""
    from tests.integration import PROVIDER_DIRS

    for var_dir in PROVIDER_DIRS:
        store = var_dir / "oidc" / "store"
        for path in sorted((store / "RegistrationAccessToken").glob("*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            add_secret(record.get("jti") or path.stem, "a registration access token")
        for path in sorted((store / "InitialAccessToken").glob("*.json")):
            add_secret(path.stem, "an initial access token")


class _Handler(logging.FileHandler):
    """The in-process portal's log lines, as the web process would write them."""


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    LOG_DIR.mkdir(parents=True)
    handler = _Handler(LOG_DIR / "web.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)


def _uses_database(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    return (
        item.get_closest_marker("django_db") is not None
        or "db" in names
        or "transactional_db" in names
        or "live_server" in names
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Before the test's fixtures are torn down (its rows rolled back or flushed): its
    registration tokens, and its audit events searched for every secret."""
    if _uses_database(item):
        _check_database(item.nodeid)
    return (yield)


def _check_database(nodeid: str) -> None:
    from django.db import DatabaseError, connection

    from provisioning.models import ClientRegistration

    if connection.vendor != "postgresql":
        return
    try:
        for registration in ClientRegistration.objects.all():
            add_secret(registration.registration_access_token, "a registration access token")
        _settings_secrets()
        patterns = [f"%{value}%" for value in _secrets]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, action, row_to_json(a)::text FROM audit_auditevent a "
                "WHERE row_to_json(a)::text LIKE ANY(%s)",
                [patterns],
            )
            rows = cursor.fetchall()
    except DatabaseError:
        return  # the test broke its transaction: it has failed already
    except Exception as exc:  # e.g. the database blocked outside a db test
        if "Database access not allowed" in str(exc):
            return
        raise
    for event_id, action, text in rows:
        names = sorted({what for value, what in _secrets.items() if value in text})
        _findings.append(f"{nodeid}: audit event {event_id} ({action}) holds {', '.join(names)}")


def leaks_in_logs() -> list[str]:
    """Each log file of LOG_DIR and the secrets it holds."""
    _settings_secrets()
    _provider_tokens()
    found = []
    for path in sorted(LOG_DIR.rglob("*")):
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        names = sorted({what for value, what in _secrets.items() if value in text})
        if names:
            found.append(f"{path}: holds {', '.join(names)}")
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for handler in list(logging.getLogger().handlers):
        if isinstance(handler, _Handler):
            handler.close()
            logging.getLogger().removeHandler(handler)
    findings = [*_findings, *leaks_in_logs()]
    logs = len([path for path in LOG_DIR.rglob("*") if path.is_file()])
    reporter: Any = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"secrets: {len(_secrets)} looked for in {logs} log file(s) under {LOG_DIR} "
            "and in every test's audit events"
        )
    if findings:
        if reporter is not None:
            reporter.write_line("SECRETS LEAKED:", red=True, bold=True)
            for line in findings:
                reporter.write_line(f"  {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
