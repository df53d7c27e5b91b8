"""Fixtures that start real components: the local OpenID provider, Redis, Celery workers."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.components import (
    NODE,
    PROJECT_DIR,
    VENV_BIN,
    free_port,
    port_open,
    process,
    wait_until,
)

OIDC_TEST_CLIENT_SECRET = "test-only-portal-secret"  # noqa: S105 - a throwaway provider's secret


@dataclass(frozen=True)
class Provider:
    issuer: str
    var_dir: Path
    proc: subprocess.Popen[bytes]

    def discovery(self) -> dict[str, object]:
        response = requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=5)
        response.raise_for_status()
        result: dict[str, object] = response.json()
        return result


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """The project's oidc-provider config, run by Node on a free loopback port."""
    var_dir = tmp_path_factory.mktemp("oidc-var")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    log = var_dir / "provider.log"
    env = {
        "OIDC_ISSUER": issuer,
        "TILGANG_VAR_DIR": str(var_dir),
        "OIDC_RP_CLIENT_SECRET": OIDC_TEST_CLIENT_SECRET,
        # The Django test client's host.
        "OIDC_RP_REDIRECT_URIS": "http://testserver/oidc/callback/",
        "PORTAL_URL": "http://testserver",
    }
    with process([str(NODE), str(PROJECT_DIR / "oidc" / "provider.mjs")], log=log, env=env) as proc:
        wait_until(lambda: port_open(port), timeout=20, what="oidc-provider", log=log)
        yield Provider(issuer=issuer, var_dir=var_dir, proc=proc)


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
    settings.OIDC_RP_CLIENT_SECRET = OIDC_TEST_CLIENT_SECRET
    settings.PORTAL_URL = "http://testserver"
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
