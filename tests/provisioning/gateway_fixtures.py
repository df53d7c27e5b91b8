"""A real HAProxy gateway for a test: its own directory, free port and echo upstream.

Import the fixtures into a test module: ``from tests.provisioning.gateway_fixtures import
gateway, rsa_signing_key  # noqa: F401``. A missing ``haproxy`` fails the test; nothing skips.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from provisioning.gateway import Entry, GatewayConfig, HAProxyGateway, SigningKey
from tests.components import PROJECT_DIR, free_port, port_open, process, stop, wait_until
from tests.keys import rsa_private_key

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
ISSUER = "http://issuer.test"
AUDIENCE = "http://gateway.test"
RESOURCES = {
    "Patient": "patient",
    "Observation": "observation",
    "CarePlan": "care-plan",
    "Bundle": "journaling",
}
#: The catalogue's scopes for RESOURCES, as the renderer gets them.
SCOPES = {code: (f"nhn:ksp/{code}.read", f"nhn:ksp/{code}.write") for code in RESOURCES.values()}
#: A token holding every scope: what the grants alone decide.
ALL_SCOPES = " ".join(scope for pair in SCOPES.values() for scope in pair)
KOMMUNE = "123456789"
OTHER_KOMMUNE = "987654321"


@dataclass(frozen=True)
class KeyPair:
    """A private key the test signs with, and its public half as the gateway knows it."""

    kid: str
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @property
    def alg(self) -> str:
        return "ES256" if isinstance(self.private_key, ec.EllipticCurvePrivateKey) else "RS256"

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def signing_key(self) -> SigningKey:
        return SigningKey(kid=self.kid, alg=self.alg, pem=self.public_pem)


def rsa_key_pair(kid: str, seed: int) -> KeyPair:
    return KeyPair(kid=kid, private_key=rsa_private_key(seed))


def ec_key_pair(kid: str) -> KeyPair:
    return KeyPair(kid=kid, private_key=ec.generate_private_key(ec.SECP256R1()))


def socket_answers(path: Path) -> bool:
    """Whether something accepts connections on the unix socket ``path``."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(str(path)) == 0


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Gateway:
    """A running HAProxy with its adapter, and a way to mint access tokens for it."""

    config: GatewayConfig
    adapter: HAProxyGateway
    key: KeyPair
    log: Path
    stack: ExitStack
    proc: subprocess.Popen[bytes] = field(init=False)

    @property
    def url(self) -> str:
        return f"http://{self.config.bind}"

    def start(self) -> None:
        args = [HAPROXY, "-W", "-db", "-f", str(self.config.config_file)]
        args += ["-S", f"{self.config.master_socket},mode,600"]
        self.proc = self.stack.enter_context(
            process(args, log=self.log, stdout=self.config.access_log)
        )
        port = int(self.config.bind.rsplit(":", 1)[1])
        wait_until(
            lambda: (
                port_open(port)
                and self.adapter.is_running()
                and socket_answers(self.config.master_socket)
            ),
            timeout=10,
            what="haproxy",
            log=self.log,
        )

    def stop(self) -> None:
        stop(self.proc)

    def restart(self) -> None:
        """Stop HAProxy and start it again: everything comes back from the files."""
        self.stop()
        self.start()

    def mint(
        self,
        client_id: str,
        /,
        *,
        key: KeyPair | None = None,
        kid: str | None = None,
        exp_in: int = 300,
        aud: str | list[str] | None = None,
        iss: str | None = None,
        alg: str = "RS256",
        scope: str | None = ALL_SCOPES,
        **claims: Any,
    ) -> str:
        """An access token for ``client_id``, by default with every scope of the catalogue.
        ``alg="HS256"`` signs with the public key's PEM as the HMAC secret (the classic
        algorithm-confusion forgery); ``alg="none"`` signs nothing. A claim given as None is
        left out."""
        key = key or self.key
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": iss or self.config.issuer,
            "aud": aud or self.config.audience,
            "sub": client_id,
            "client_id": client_id,
            "iat": now,
            "exp": now + exp_in,
            "scope": scope,
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}
        headers = {"kid": kid or key.kid}
        if alg == "HS256":
            header = {"alg": "HS256", "typ": "JWT", **headers}
            signing_input = ".".join(
                _b64url(json.dumps(part, separators=(",", ":")).encode())
                for part in (header, payload)
            )
            signature = hmac.new(key.public_pem, signing_input.encode(), hashlib.sha256)
            return f"{signing_input}.{_b64url(signature.digest())}"
        if alg == "none":
            return jwt.encode(payload, "", algorithm="none", headers=headers)
        return jwt.encode(payload, key.private_key, algorithm=alg, headers=headers)

    def grant(
        self,
        client_id: str,
        *,
        kommune: str = KOMMUNE,
        service: str = "patient",
        access: str = "read",
        environment: str = "production",
        service_codes: tuple[str, ...] = (),
    ) -> Entry:
        """Add a grant at the running gateway and return it."""
        entry = Entry(
            environment=environment,
            client_id=client_id,
            kommune=kommune,
            service=service,
            access=access,
            service_codes=service_codes,
        )
        self.adapter.upsert(entry)
        return entry


@pytest.fixture(scope="session")
def rsa_signing_key() -> KeyPair:
    """The authorization server's 2048-bit RSA signing key and its kid."""
    return rsa_key_pair("as-key-1", seed=2101)


def _gateway(
    tmp_path: Path, key: KeyPair, stack: ExitStack, name: str = "gateway", echo_port: int = 0
) -> Gateway:
    """A configured and running HAProxy in ``tmp_path / name``; its echo upstream too unless
    ``echo_port`` names one already running."""
    directory = tmp_path / ("gw" if name == "gateway" else name)
    config = GatewayConfig(
        directory=directory,
        bind=f"127.0.0.1:{free_port()}",
        upstream=f"127.0.0.1:{echo_port or free_port()}",
        issuer=ISSUER,
        audience=AUDIENCE,
        name=name,
    )
    adapter = HAProxyGateway(config)
    adapter.write_config([key.signing_key], scopes=SCOPES)
    adapter.write_map_files([], RESOURCES)
    if not echo_port:
        echo_port = int(config.upstream.rsplit(":", 1)[1])
        echo_log = tmp_path / "echo.log"
        echo = [sys.executable, str(PROJECT_DIR / "gateway" / "echo.py"), "--port", str(echo_port)]
        stack.enter_context(process(echo, log=echo_log))
        wait_until(lambda: port_open(echo_port), timeout=10, what="echo upstream", log=echo_log)
    gw = Gateway(
        config=config,
        adapter=adapter,
        key=key,
        log=tmp_path / f"haproxy-{name}.log",
        stack=stack,
    )
    gw.start()
    return gw


@pytest.fixture
def gateway(tmp_path: Path, rsa_signing_key: KeyPair) -> Iterator[Gateway]:
    """HAProxy on a free port in front of ``gateway/echo.py``, trusting ``rsa_signing_key``,
    with the resources map Patient, Observation, CarePlan and Bundle in its map file."""
    with ExitStack() as stack:
        yield _gateway(tmp_path, rsa_signing_key, stack)


@pytest.fixture
def two_gateways(tmp_path: Path, rsa_signing_key: KeyPair) -> Iterator[tuple[Gateway, Gateway]]:
    """Two such gateways, ``gw-a`` and ``gw-b``, each with its own directory (map files, keys,
    sockets) and port, in front of the same upstream: what production runs, several HAProxy."""
    with ExitStack() as stack:
        first = _gateway(tmp_path, rsa_signing_key, stack, "gw-a")
        echo_port = int(first.config.upstream.rsplit(":", 1)[1])
        yield first, _gateway(tmp_path, rsa_signing_key, stack, "gw-b", echo_port)


def map_disk_full(monkeypatch: pytest.MonkeyPatch, write: str = "_revoked_file_append") -> None:
    """The disk of the gateways' map files is full: ``write``, a method of HAProxyGateway that
    writes a line of the revoked map's file, fails as the kernel would (ENOSPC) until
    ``monkeypatch.undo()``."""

    def refused(self: HAProxyGateway, key: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(HAProxyGateway, write, refused)
