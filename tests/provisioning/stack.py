"""The whole provisioning stack on loopback for integration tests: PostgreSQL (the test
database), the broker the tests use, real Celery worker (and beat) processes, the project's
oidc-provider, a real HAProxy rendered from the project's template (two of them, each with its
own directory and port, in ``stack_two_gateways``: ``GATEWAYS``), and the echo upstream."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from django.conf import settings
from django.db import connection

from provisioning.gateway import HAProxyGateway, signing_keys_from_jwks
from provisioning.reconcile import resource_map, scope_map
from provisioning.settings import gateway_configs
from tests.components import PROJECT_DIR, VENV_BIN, free_port, port_open, process, stop, wait_until
from tests.integration import Provider

HAPROXY = "/usr/sbin/haproxy"
#: The queue ``provisioning.gateway_close`` is routed to (``CELERY_TASK_ROUTES``).
GATEWAY_CLOSE_QUEUE = settings.PROVISIONING_GATEWAY_CLOSE_QUEUE


def database_url() -> str:
    """The test database, for the worker processes (they must see what the test commits)."""
    db = connection.settings_dict
    assert db["ENGINE"] == "django.db.backends.postgresql", (
        "integration tests share the test database with worker processes: run them on "
        "PostgreSQL (make test)"
    )
    return f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def private_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def client_credentials(
    issuer: str,
    client_id: str,
    key: PrivateKeyTypes,
    *,
    kid: str = "key-1",
    scope: str | None = None,
    algorithm: str = "RS256",
) -> requests.Response:
    """Client credentials at ``issuer`` with a private_key_jwt assertion, as a vendor's system
    does it."""
    now = int(time.time())
    token_endpoint = f"{issuer}/token"
    assertion = jwt.encode(
        {
            "iss": client_id,
            "sub": client_id,
            "aud": token_endpoint,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 60,
        },
        private_pem(key),
        algorithm=algorithm,
        headers={"kid": kid},
    )
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    if scope:
        data["scope"] = scope
    return requests.post(token_endpoint, data=data, timeout=10)


@dataclass
class Stack:
    provider: Provider
    tmp: Path
    #: Every gateway by name, in the settings' order; ``gateway`` is the first.
    gateways: dict[str, HAProxyGateway]
    env: dict[str, str]
    stack: ExitStack
    haproxies: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    worker_logs: list[Path] = field(default_factory=list)
    nodenames: dict[int, str] = field(default_factory=dict)  # by process id
    starts: int = 0

    # --- processes ---------------------------------------------------------------------------

    @property
    def gateway(self) -> HAProxyGateway:
        return next(iter(self.gateways.values()))

    @property
    def gateway_url(self) -> str:
        return self.url_of(None)

    def url_of(self, name: str | None) -> str:
        gw = self.gateways[name] if name else self.gateway
        return f"http://{gw.config.bind}"

    def start_haproxy(self, name: str | None = None) -> None:
        """Start the gateway ``name`` (default: the first) from its files."""
        self.starts += 1
        gw = self.gateways[name] if name else self.gateway
        cfg = gw.config
        log = self.tmp / f"haproxy-{cfg.name}-{self.starts}.log"
        args = [HAPROXY, "-W", "-db", "-f", str(cfg.config_file), "-S", str(cfg.master_socket)]
        proc = self.stack.enter_context(process(args, log=log, stdout=cfg.access_log))
        self.haproxies[cfg.name] = proc
        port = int(cfg.bind.rsplit(":", 1)[1])
        wait_until(lambda: port_open(port), timeout=15, what="haproxy", log=log)
        wait_until(gw.is_running, timeout=15, what="haproxy runtime API", log=log)

    def stop_haproxy(self, name: str | None = None) -> None:
        proc = self.haproxies.get(name or self.gateway.config.name)
        if proc is not None:
            stop(proc)

    def start_worker(
        self, name: str = "worker", *, queue: str = "celery", concurrency: int = 2
    ) -> subprocess.Popen[bytes]:
        """A worker consuming ``queue``; another queue than the one tasks go to keeps it idle
        until it is told to consume (``consume``)."""
        log = self.tmp / f"{name}-{len(self.workers)}.log"
        nodename = f"{name}{len(self.workers)}@{socket.gethostname()}"
        args = [str(VENV_BIN / "celery"), "-A", "portal", "worker", "--loglevel=INFO"]
        args += [f"--concurrency={concurrency}", f"--hostname={nodename}", "--without-gossip"]
        args += ["-Q", queue]
        worker = self.stack.enter_context(process(args, log=log, env=self.env))
        wait_until(lambda: "ready." in log.read_text(), timeout=60, what=name, log=log)
        self.workers.append(worker)
        self.worker_logs.append(log)
        self.nodenames[worker.pid] = nodename
        return worker

    def start_close_worker(self) -> subprocess.Popen[bytes]:
        """The dedicated worker of revocations' gateway closes (the Procfile's ``closer``): a
        revocation never waits behind jobs held by a slow authorization server."""
        return self.start_worker("closer", queue=GATEWAY_CLOSE_QUEUE, concurrency=1)

    def consume(self, worker: subprocess.Popen[bytes], queue: str = "celery") -> None:
        """Tell a running worker to take messages from ``queue`` too (Celery remote control)."""
        from portal import celery_app

        replies = celery_app.control.add_consumer(
            queue, destination=[self.nodenames[worker.pid]], reply=True, timeout=10
        )
        assert replies, f"{self.nodenames[worker.pid]} did not answer add_consumer"

    def task_results(self, name: str = "provisioning.run_job") -> dict[str, str]:
        """What the workers logged as the result of each finished task ``name``, by task id."""
        done = re.compile(rf"Task {re.escape(name)}\[([0-9a-f-]+)\] succeeded in \S+: '?([^'\n]*)")
        text = "".join(log.read_text(errors="replace") for log in self.worker_logs)
        return dict(done.findall(text))

    def kill_worker(self, worker: subprocess.Popen[bytes]) -> None:
        """SIGKILL, as a crash: no warm shutdown, no message acknowledged."""
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)

    def start_beat(self) -> subprocess.Popen[bytes]:
        log = self.tmp / "beat.log"
        schedule = self.tmp / "celerybeat-schedule"
        args = [
            str(VENV_BIN / "celery"),
            "-A",
            "portal",
            "beat",
            "--loglevel=INFO",
            "-s",
            str(schedule),
        ]
        beat = self.stack.enter_context(process(args, log=log, env=self.env))
        wait_until(lambda: "beat: Starting" in log.read_text(), timeout=30, what="beat", log=log)
        return beat

    # --- the vendor's side -------------------------------------------------------------------

    def token(
        self,
        client_id: str,
        key: PrivateKeyTypes,
        *,
        kid: str = "key-1",
        scope: str | None = None,
        algorithm: str = "RS256",
    ) -> requests.Response:
        """Client credentials with a private_key_jwt assertion, as a vendor's system does it."""
        return client_credentials(
            self.provider.issuer, client_id, key, kid=kid, scope=scope, algorithm=algorithm
        )

    def access_token(self, client_id: str, key: PrivateKeyTypes, **kw: Any) -> str:
        response = self.token(client_id, key, **kw)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def call(
        self, path: str, token: str | None, method: str = "GET", *, via: str | None = None
    ) -> requests.Response:
        """A request through the gateway ``via`` (default: the first)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = f"{self.url_of(via)}{path}"
        return requests.request(method, url, headers=headers, timeout=10)


def wait_for(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll until ``check`` returns something truthy (a generous deadline, not a measurement)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def broker_purge() -> None:
    """Empty the shared broker's queues: a message another test sent and left (no worker of its
    ran it) must not reach this test's workers, which would run and count it."""
    from portal import celery_app

    with celery_app.connection_for_write() as connection:
        for queue in ("celery", GATEWAY_CLOSE_QUEUE):
            connection.default_channel.queue_purge(queue)


def _stack(
    settings: Any, oidc_settings: Provider, tmp_path: Path, names: list[str]
) -> Iterator[Stack]:
    """The stack with a gateway per name; one name: the single-gateway settings (``GATEWAY_DIR``,
    ``GATEWAY_BIND``, ...), several: ``GATEWAYS``."""
    echo_port = free_port()
    settings.GATEWAY_UPSTREAM = f"127.0.0.1:{echo_port}"
    env = {
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "TILGANG_VAR_DIR": str(settings.VAR_DIR),  # the same development secrets as this process
        "OIDC_OP_ISSUER": oidc_settings.issuer,
        "OIDC_INITIAL_ACCESS_TOKEN": settings.OIDC_INITIAL_ACCESS_TOKEN,
        "GATEWAY_UPSTREAM": settings.GATEWAY_UPSTREAM,
        "GATEWAY_AUDIENCE": settings.GATEWAY_AUDIENCE,
        "PORTAL_URL": settings.PORTAL_URL,
        "PORTAL_API_AUDIENCE": settings.PORTAL_API_AUDIENCE,
        "PROVISIONING_LEASE_SECONDS": str(settings.PROVISIONING_LEASE_SECONDS),
        "PYTHONUNBUFFERED": "1",
    }
    if len(names) == 1:
        gateway_port = free_port()
        settings.GATEWAY_DIR = tmp_path / "gateway"
        settings.GATEWAY_BIND = f"127.0.0.1:{gateway_port}"
        settings.GATEWAY_URL = f"http://127.0.0.1:{gateway_port}"
        env["GATEWAY_DIR"] = str(settings.GATEWAY_DIR)
        env["GATEWAY_BIND"] = settings.GATEWAY_BIND
    else:
        settings.GATEWAYS = [
            {"name": name, "dir": str(tmp_path / name), "bind": f"127.0.0.1:{free_port()}"}
            for name in names
        ]
        settings.GATEWAY_URL = f"http://{settings.GATEWAYS[0]['bind']}"
        env["GATEWAYS"] = json.dumps(settings.GATEWAYS)
    env["GATEWAY_URL"] = settings.GATEWAY_URL
    broker_purge()
    with ExitStack() as exits:
        log = tmp_path / "echo.log"
        echo = [str(VENV_BIN / "python"), str(PROJECT_DIR / "gateway" / "echo.py")]
        exits.enter_context(process([*echo, "--port", str(echo_port)], log=log))
        wait_until(lambda: port_open(echo_port), timeout=10, what="echo upstream", log=log)
        jwks = requests.get(f"{oidc_settings.issuer}/jwks", timeout=5).json()
        gateways = {config.name: HAProxyGateway(config) for config in gateway_configs()}
        for gw in gateways.values():
            gw.write_config(signing_keys_from_jwks(jwks), scopes=scope_map())
            gw.write_map_files([], resource_map())
        result = Stack(
            provider=oidc_settings, tmp=tmp_path, gateways=gateways, env=env, stack=exits
        )
        for name in gateways:
            result.start_haproxy(name)
        yield result


@pytest.fixture
def stack(settings: Any, oidc_settings: Provider, tmp_path: Path) -> Iterator[Stack]:
    yield from _stack(settings, oidc_settings, tmp_path, ["gateway"])


@pytest.fixture
def stack_two_gateways(settings: Any, oidc_settings: Provider, tmp_path: Path) -> Iterator[Stack]:
    """The stack with two gateways, ``gw-a`` and ``gw-b`` (``GATEWAYS``), both running."""
    yield from _stack(settings, oidc_settings, tmp_path, ["gw-a", "gw-b"])
