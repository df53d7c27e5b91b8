"""Fixtures that start real components: the local OpenID provider, Redis, Celery workers."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.components import (
    NODE,
    PROJECT_DIR,
    VENV_BIN,
    free_port,
    port_open,
    process,
    stop,
    wait_until,
)

OIDC_TEST_CLIENT_SECRET = "test-only-portal-secret"  # noqa: S105 - a throwaway provider's secret


GATEWAY_AUDIENCE = "http://gateway.tilgang.test"
PORTAL_API_AUDIENCE = "http://testserver/api/"


def live_server_url() -> str | None:
    """The address pytest-django's ``live_server`` will listen on, fixed before the session's
    provider starts (``pytest_configure`` in tests/conftest.py), so the provider can name the
    live portal's callback among the redirect URIs it accepts."""
    address = os.environ.get("DJANGO_LIVE_TEST_SERVER_ADDRESS", "")
    return f"http://{address}" if ":" in address else None


def catalogue_scopes() -> list[str]:
    """The catalogue's scopes, as its data migration writes them (the test database is not up
    when the session's provider starts)."""
    import importlib

    migration = importlib.import_module("orders.migrations.0002_fill_services")
    return [
        f"nhn:ksp/{row[0]}.{access}" for row in migration.SERVICES for access in ("read", "write")
    ]


#: Every provider's var directory of the session: its store holds the registration access tokens
#: it issued, which tests/leaks.py looks for in every log.
PROVIDER_DIRS: list[Path] = []


class Provider:
    """The project's oidc-provider, run by Node on a loopback port; restartable in place."""

    def __init__(self, var_dir: Path, initial_access_token: str) -> None:
        self.var_dir = var_dir
        PROVIDER_DIRS.append(var_dir)
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.initial_access_token = initial_access_token
        scopes = var_dir / "scopes.txt"
        scopes.write_text("\n".join(catalogue_scopes()))
        #: Where the provider's login page reads the demo people (``seed_demo --people-file``).
        self.demo_people_file = var_dir / "demo-people.json"
        # The Django test client's host, and the live server's for the browser tests.
        portals = ["http://testserver"]
        if (live := live_server_url()) is not None:
            portals.append(live)
        self.env = {
            "OIDC_ISSUER": self.issuer,
            "TILGANG_VAR_DIR": str(var_dir),
            "OIDC_RP_CLIENT_SECRET": OIDC_TEST_CLIENT_SECRET,
            "OIDC_INITIAL_ACCESS_TOKEN": initial_access_token,
            "OIDC_SCOPES_FILE": str(scopes),
            "OIDC_RP_REDIRECT_URIS": ",".join(f"{url}/oidc/callback/" for url in portals),
            "OIDC_RP_POST_LOGOUT_REDIRECT_URIS": ",".join(f"{url}/" for url in portals),
            "OIDC_DEMO_PEOPLE_FILE": str(self.demo_people_file),
            "PORTAL_URL": "http://testserver",
            "GATEWAY_AUDIENCE": GATEWAY_AUDIENCE,
            "PORTAL_API_AUDIENCE": PORTAL_API_AUDIENCE,
        }
        self._stack = ExitStack()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.var_dir / f"provider-{self.starts}.log"
        args = [str(NODE), str(PROJECT_DIR / "oidc" / "provider.mjs")]
        self.proc = self._stack.enter_context(process(args, log=log, env=self.env))
        wait_until(lambda: port_open(self.port), timeout=20, what="oidc-provider", log=log)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            wait_until(lambda: not port_open(self.port), timeout=10, what="provider stopped")

    def pause(self) -> None:
        """Freeze the process: calls to it hang (as a stuck server's would) until resume()."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self._stack.close()

    def registrations(self) -> int:
        """How many clients the provider has registered (its persistent store)."""
        store = self.var_dir / "oidc" / "store" / "Client"
        return len(list(store.glob("*.json"))) if store.exists() else 0


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """The project's oidc-provider config, run by Node on a free loopback port."""
    from django.conf import settings

    provider = Provider(tmp_path_factory.mktemp("oidc-var"), settings.OIDC_INITIAL_ACCESS_TOKEN)
    provider.start()
    try:
        yield provider
    finally:
        provider.close()


@pytest.fixture
def oidc_settings(settings: pytest.FixtureRequest, oidc_provider: Provider) -> Provider:
    """Point the portal's login at the test provider."""
    issuer = oidc_provider.issuer
    settings.OIDC_OP_ISSUER = issuer
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{issuer}/auth"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{issuer}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{issuer}/me"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{issuer}/jwks"
    settings.OIDC_OP_END_SESSION_ENDPOINT = f"{issuer}/session/end"
    settings.OIDC_OP_REGISTRATION_ENDPOINT = f"{issuer}/reg"
    settings.OIDC_OP_REGISTRATIONS_ENDPOINT = f"{issuer}/registrations"
    settings.OIDC_RP_CLIENT_SECRET = OIDC_TEST_CLIENT_SECRET
    settings.PORTAL_URL = "http://testserver"
    settings.PORTAL_API_AUDIENCE = PORTAL_API_AUDIENCE
    settings.GATEWAY_AUDIENCE = GATEWAY_AUDIENCE
    return oidc_provider


@dataclass(frozen=True)
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of the test's own, so a test may stop it without disturbing others."""
    port = free_port()
    log = tmp_path / "redis.log"
    args = [
        "redis-server",
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
    ]
    args += ["no", "--dir", str(tmp_path)]
    with process(args, log=log) as proc:
        wait_until(lambda: port_open(port), timeout=10, what="redis-server", log=log)
        yield RedisServer(port=port, proc=proc)


def celery_env(tmp_path: Path, broker_url: str) -> dict[str, str]:
    """Environment for the project's Celery processes: this broker, var/ under tmp_path."""
    return {
        "CELERY_BROKER_URL": broker_url,
        "CELERY_RESULT_BACKEND": "",
        "TILGANG_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def start_worker(
    tmp_path: Path,
) -> Iterator[Callable[[dict[str, str]], subprocess.Popen[bytes]]]:
    """Start a real ``celery worker`` process (prefork) of the project; stopped after the test."""
    with ExitStack() as stack:

        def start(env: dict[str, str], name: str = "worker") -> subprocess.Popen[bytes]:
            log = tmp_path / f"{name}.log"
            args = [str(VENV_BIN / "celery"), "-A", "portal", "worker", "--loglevel=INFO"]
            args += ["--concurrency=1", f"--hostname={name}@%h", "--without-gossip"]
            proc = stack.enter_context(process(args, log=log, env=env))
            wait_until(
                lambda: "ready." in log.read_text(), timeout=60, what=f"celery {name}", log=log
            )
            return proc

        yield start
