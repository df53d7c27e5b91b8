"""The adapter to the API gateway: HAProxy 2.6 in front of the FHIR services.

The gateway lets a request through when ``<environment>|<client_id>|<orgnr>|<service>|<access>``
is in its grants map (its value: the grant's service codes), the token's scope holds the
service's scope, and the FHIR interaction and search parameters reach nothing else (see
``gateway/haproxy.cfg.template`` and ``gateway/fhir.lua``). The workers keep that map in line
with the database through HAProxy's runtime API (a unix socket, level admin), and write the map
files and signing keys the configuration reads.

Run HAProxy as ``haproxy -W -db -f <directory>/haproxy.cfg -S <directory>/master.sock,mode,600``:
``-W`` is master-worker mode, ``-S`` the master CLI that :meth:`HAProxyGateway.reload` uses.

Two HAProxy facts shape this module:

* A runtime map change lives only in the running worker's memory. A reload or restart re-reads
  the map FILES, so whatever should survive one must be in the files too
  (:meth:`HAProxyGateway.write_map_files`) before it happens.
* ``add map`` and ``get map`` look a key up in the map's tree, but ``del map`` and ``set map``
  walk every entry (0.7 ms at 30,000 entries, 0.1 ms at 1,000). So a removal adds the key to a
  small second map, the revoked map, which the deny rule also reads; the reconciler folds those
  into a fresh grants map (:meth:`HAProxyGateway.replace_all`) and empties the revoked map.
  A removal is appended to the revoked map's FILE too, before the runtime change: a reload
  started from grants files written before the revocation loads it with them. Only
  :meth:`HAProxyGateway.write_map_files` (keys its new grants file no longer holds) and
  :meth:`HAProxyGateway.upsert` (a key granted again) take keys out of that file.
* ``jwt_verify`` needs each key's PEM path as a literal known at startup, and the scope rules
  are generated from the catalogue, so a new or removed signing key, or a changed catalogue
  scope, means a new configuration file and a reload (:meth:`HAProxyGateway.write_config`,
  then :meth:`HAProxyGateway.reload`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import functools
import os
import re
import socket
import string
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from portal.metrics import GATEWAY_PUSH_FAILURES, GATEWAY_PUSHES

TEMPLATE = Path(__file__).resolve().parent.parent / "gateway" / "haproxy.cfg.template"
FHIR_LUA = Path(__file__).resolve().parent.parent / "gateway" / "fhir.lua"

ENVIRONMENTS = ("production", "test")
ACCESSES = ("read", "write")
ALGORITHMS = ("RS256", "ES256")
MIN_RSA_BITS = 2048

# What may appear in a map key, a runtime API command line and the configuration unquoted.
# The runtime API splits on spaces and ';' and unescapes '\'; a map file line is "<key> <value>"
# and '#' starts a comment; '|' separates the key's fields; quotes would be taken by the
# configuration parser.
_TOKEN = re.compile(r"[!-~]+")
_TOKEN_FORBIDDEN = set("|;\\#'\"")
_ORGNR = re.compile(r"[0-9]{9}")
_SERVICE = re.compile(r"[A-Za-z0-9_-]+")
_RESOURCE_TYPE = re.compile(r"[A-Za-z]+")
_SCOPE = re.compile(r"[A-Za-z0-9:/._-]{1,100}")  # safe in a single-quoted regex literal
_SERVICE_CODE = re.compile(r"[A-Z]{1,8}")  # VKP's RT, TA, GPS, MD, DT, DHO
_KID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_PATH = re.compile(r"[A-Za-z0-9_./@+:=-]+")
_QUOTED_VALUE = re.compile(r"[!-&(-~]+")  # printable, no space, no single quote
_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
_ADDRESS = re.compile(r"[A-Za-z0-9_.:*-]*:[0-9]{1,5}")  # HAProxy's address:port

_UNIX_PATH_MAX = 107
# HAProxy drops, silently, a runtime API payload that does not fit its 16 KiB buffer.
_PAYLOAD_BYTES = 12_000
_KEY_NOT_FOUND = "Key not found."


#: The catalogue's scopes: service code -> (read scope, write scope).
Scopes = dict[str, tuple[str, str]]


class GatewayUnavailable(Exception):
    """The gateway cannot be reached now (socket missing, refused, timed out): retry later."""


class GatewayError(Exception):
    """HAProxy answered a command with an error: retrying the same command will not help."""


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _push(operation: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Count each call of a method that changes the running gateway, and each that fails, by
    how (``portal.metrics``: tilgang_gateway_pushes_total, tilgang_gateway_push_failures_total)."""

    def decorate(method: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(method)
        def counted(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            GATEWAY_PUSHES.labels(operation=operation).inc()
            try:
                return method(*args, **kwargs)
            except GatewayUnavailable:
                GATEWAY_PUSH_FAILURES.labels(operation=operation, error="unavailable").inc()
                raise
            except GatewayError:
                GATEWAY_PUSH_FAILURES.labels(operation=operation, error="refused").inc()
                raise
            except Exception:
                GATEWAY_PUSH_FAILURES.labels(operation=operation, error="other").inc()
                raise

        return counted

    return decorate


class MapFileUnwritable(GatewayUnavailable):
    """A map file of the gateway cannot be written now (disk full, permissions): unlike a
    gateway that only does not answer, its files do not hold the change either."""


def _check_token(name: str, value: str) -> None:
    if not _TOKEN.fullmatch(value) or _TOKEN_FORBIDDEN.intersection(value) or len(value) > 255:
        raise ValueError(f"{name} {value!r} has characters the gateway cannot carry")


@dataclass(frozen=True)
class Entry:
    """One grant as the gateway sees it. Validated, because its key goes into a map file line
    and a runtime API command: an unchecked ``;`` or space would be a second command."""

    environment: str
    client_id: str
    kommune: str
    service: str
    access: str
    #: The codes of tjenstlig behov the grant holds; normalised to a sorted tuple.
    service_codes: Iterable[str] = ()

    def __post_init__(self) -> None:
        codes = tuple(sorted(set(self.service_codes)))
        for code in codes:
            if not isinstance(code, str) or not _SERVICE_CODE.fullmatch(code):
                raise ValueError(f"service code {code!r} is not one of VKP's codes")
        object.__setattr__(self, "service_codes", codes)
        if self.environment not in ENVIRONMENTS:
            raise ValueError(f"environment must be one of {ENVIRONMENTS}, not {self.environment!r}")
        if self.access not in ACCESSES:
            raise ValueError(f"access must be one of {ACCESSES}, not {self.access!r}")
        if not _ORGNR.fullmatch(self.kommune):
            raise ValueError(f"kommune must be a 9-digit orgnr, not {self.kommune!r}")
        if not _SERVICE.fullmatch(self.service):
            raise ValueError(f"service code {self.service!r} is not a slug")
        _check_token("client_id", self.client_id)

    @property
    def key(self) -> str:
        """The grants map key the gateway builds from the token, the path and the method."""
        return "|".join((self.environment, self.client_id, self.kommune, self.service, self.access))

    @property
    def value(self) -> str:
        """The grants map value: the service codes, comma-separated, or "-" for none."""
        return ",".join(self.service_codes) or "-"


@dataclass(frozen=True)
class SigningKey:
    """A public key of the authorization server, as the gateway verifies tokens with it."""

    kid: str
    alg: str
    pem: bytes

    def __post_init__(self) -> None:
        if not _KID.fullmatch(self.kid):
            raise ValueError(f"kid {self.kid!r} cannot name a file and a configuration literal")
        if self.alg not in ALGORITHMS:
            raise ValueError(f"alg must be one of {ALGORITHMS}: HAProxy 2.6 has no PS*")
        if not self.pem.startswith(b"-----BEGIN PUBLIC KEY-----"):
            raise ValueError("pem must be a public key in PEM (SubjectPublicKeyInfo)")


def _b64url_int(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError("not a base64url string")
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    return int.from_bytes(raw, "big")


def _public_key(jwk: dict[str, Any]) -> tuple[str, rsa.RSAPublicKey | ec.EllipticCurvePublicKey]:
    """The algorithm and key of a JWK the gateway can use; ValueError for any other."""
    kty, alg = jwk.get("kty"), jwk.get("alg")
    if kty == "RSA" and alg in (None, "RS256"):
        key = rsa.RSAPublicNumbers(
            _b64url_int(jwk.get("e")), _b64url_int(jwk.get("n"))
        ).public_key()
        if key.key_size < MIN_RSA_BITS:
            raise ValueError("RSA key too short")
        return "RS256", key
    if kty == "EC" and jwk.get("crv") == "P-256" and alg in (None, "ES256"):
        numbers = ec.EllipticCurvePublicNumbers(
            _b64url_int(jwk.get("x")), _b64url_int(jwk.get("y")), ec.SECP256R1()
        )
        return "ES256", numbers.public_key()  # checks the point is on the curve
    raise ValueError(f"unsupported key type {kty!r} / alg {alg!r}")


def signing_keys_from_jwks(jwks: dict[str, Any]) -> list[SigningKey]:
    """The keys of a JWKS the gateway can verify tokens with: RSA (RS256 or no alg, at least
    2048 bits) and EC P-256 (ES256 or no alg) signature keys with a usable kid. Everything else
    (PS*, other curves, encryption keys, malformed keys, a repeated kid) is skipped, not fatal:
    one odd key must not stop the rotation of the others."""
    keys: list[SigningKey] = []
    seen: set[str] = set()
    for jwk in jwks.get("keys", []):
        if not isinstance(jwk, dict) or jwk.get("use") not in (None, "sig"):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not _KID.fullmatch(kid) or kid in seen:
            continue
        try:
            alg, public_key = _public_key(jwk)
        except (ValueError, TypeError, binascii.Error):
            continue
        pem = public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        keys.append(SigningKey(kid=kid, alg=alg, pem=pem))
        seen.add(kid)
    return keys


@dataclass(frozen=True)
class GatewayConfig:
    """Where the gateway's files live and what it checks. Paths are absolute in the rendered
    configuration: HAProxy names a map by the path it was loaded from, and the runtime API
    commands must use the same name."""

    directory: Path
    bind: str
    upstream: str
    issuer: str
    audience: str
    #: How the settings, the logs and the audit trail name this gateway among several.
    name: str = "gateway"

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"gateway name {self.name!r} must be a slug")
        for name in ("bind", "upstream"):
            if not _ADDRESS.fullmatch(getattr(self, name)):
                raise ValueError(f"{name} must be host:port")
        for name in ("issuer", "audience"):
            if not _QUOTED_VALUE.fullmatch(getattr(self, name)):
                raise ValueError(f"{name} must be printable, without spaces or single quotes")
        if not _PATH.fullmatch(str(self.root)):
            raise ValueError(f"directory {self.root} has characters HAProxy's parsers would take")
        for sock in (self.runtime_socket, self.master_socket):
            if len(str(sock).encode()) > _UNIX_PATH_MAX:
                raise ValueError(f"{sock} is too long for a unix socket")

    @property
    def root(self) -> Path:
        return Path(os.path.abspath(self.directory))

    @property
    def config_file(self) -> Path:
        return self.root / "haproxy.cfg"

    @property
    def grants_map(self) -> Path:
        return self.root / "maps" / "grants.map"

    @property
    def revoked_map(self) -> Path:
        return self.root / "maps" / "revoked.map"

    @property
    def revoked_lock(self) -> Path:
        """Held (flock) while the revoked map file is appended to or rewritten: the workers,
        the revocation task and the reconciler share it."""
        return self.root / "maps" / ".revoked.lock"

    @property
    def resources_map(self) -> Path:
        return self.root / "maps" / "resources.map"

    @property
    def scopes_map(self) -> Path:
        """``<service>|<access> <scope>``, for fhir.lua: written with the configuration."""
        return self.root / "maps" / "scopes.map"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def runtime_socket(self) -> Path:
        return self.root / "runtime.sock"

    @property
    def master_socket(self) -> Path:
        return self.root / "master.sock"

    @property
    def access_log(self) -> Path:
        """Where the gateway's starter appends HAProxy's stdout, the data-access log, unless
        ``GATEWAY_ACCESS_LOG`` names another file (``provisioning.settings.access_log_path``)."""
        return self.root / "access.log"


@dataclass(frozen=True)
class _Master:
    """The master process as ``show proc`` tells it: how often it reloaded, and how many of
    the latest reloads failed in a row (0 once one succeeds)."""

    reloads: int
    failed: int


def _write_if_changed(path: Path, content: bytes, mode: int = 0o644) -> bool:
    """Replace ``path`` atomically (temporary file in the same directory, then rename), so
    HAProxy never reads half a file; leave it alone when the content is already right."""
    try:
        if path.read_bytes() == content:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _batches(lines: Iterable[str], limit: int = _PAYLOAD_BYTES) -> Iterator[str]:
    batch: list[str] = []
    size = 0
    for line in lines:
        if batch and size + len(line) > limit:
            yield "".join(batch)
            batch, size = [], 0
        batch.append(line)
        size += len(line)
    if batch:
        yield "".join(batch)


class HAProxyGateway:
    """HAProxy's files and sockets, for the provisioning workers.

    Each call opens the socket afresh (no state to go stale across a reload). A missing or
    refusing socket, or a timeout, raises :class:`GatewayUnavailable`; an error answer raises
    :class:`GatewayError` with HAProxy's text (commands carry map keys, never a token).
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        timeout: float = 2.0,
        template: Path = TEMPLATE,
        lua: Path = FHIR_LUA,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.template = template
        self.lua = lua

    # -- files ------------------------------------------------------------------------------

    def render(self, keys: list[SigningKey], *, scopes: Scopes) -> str:
        """The configuration text for these signing keys and the catalogue's scopes."""
        config = self.config
        _check_scopes(scopes)
        kids = [key.kid for key in keys]
        if len(set(kids)) != len(kids):
            raise ValueError("two signing keys with the same kid")
        rules = [
            "    http-request set-var(txn.signature_ok) "
            f'var(txn.bearer),jwt_verify(txn.alg,"{config.keys_dir / f"{key.kid}.pem"}") '
            f"if {{ var(txn.kid) -m str {key.kid} }} {{ var(txn.alg) -m str {key.alg} }}"
            for key in keys
        ] or ["    # No signing keys: every token is refused."]
        scope_rules = []
        for service, pair in sorted(scopes.items()):
            for access, scope in zip(ACCESSES, pair, strict=True):
                route = f"{{ var(txn.route) -m str '{service}|{access}' }}"
                # Whole words of the space-separated claim: patient.read is not patient.readx.
                held = f"{{ var(txn.scope) -m reg '(^| ){re.escape(scope)}( |$)' }}"
                scope_rules += [
                    f"    http-request set-var(txn.scope_needed) str({scope}) if {route}",
                    f"    http-request set-var(txn.scope_ok) int(1) if {route} {held}",
                ]
        if not scope_rules:
            scope_rules = ["    # No catalogue scopes: every grant is refused."]
        return string.Template(self.template.read_text()).substitute(
            runtime_socket=config.runtime_socket,
            bind=config.bind,
            upstream=config.upstream,
            grants_map=config.grants_map,
            revoked_map=config.revoked_map,
            resources_map=config.resources_map,
            scopes_map=config.scopes_map,
            fhir_lua=self.lua,
            scope_rules="\n".join(scope_rules),
            issuer=config.issuer,
            audience=config.audience,
            jwt_rules="\n".join(rules),
        )

    def write_config(self, keys: list[SigningKey], *, scopes: Scopes) -> bool:
        """Write the keys' PEM files, the scopes map and the configuration; remove the PEMs of
        keys that are gone; create empty map files when missing (HAProxy refuses to start
        without them). ``scopes`` is the catalogue: service code to (read scope, write scope).
        Returns whether anything changed, that is whether a :meth:`reload` is needed: the
        running worker verifies with the keys and checks the scopes it loaded at startup."""
        config = self.config
        text = self.render(keys, scopes=scopes)  # validates before anything is written
        changed = False
        config.keys_dir.mkdir(parents=True, exist_ok=True)
        for key in keys:
            changed |= _write_if_changed(config.keys_dir / f"{key.kid}.pem", key.pem)
        scope_lines = "".join(
            f"{service}|{access} {scope}\n"
            for service, pair in sorted(scopes.items())
            for access, scope in zip(ACCESSES, pair, strict=True)
        )
        changed |= _write_if_changed(config.scopes_map, scope_lines.encode())
        for map_file in (config.grants_map, config.revoked_map, config.resources_map):
            if not map_file.exists():
                changed |= _write_if_changed(map_file, b"")
        changed |= _write_if_changed(config.config_file, text.encode())
        # Only now that no configuration names them: a restart in between must find every file.
        wanted = {f"{key.kid}.pem" for key in keys}
        for pem in config.keys_dir.glob("*.pem"):
            if pem.name not in wanted:
                pem.unlink()
                changed = True
        return changed

    def write_map_files(self, entries: Iterable[Entry], resources: dict[str, str]) -> bool:
        """Rewrite the map files a reload or restart loads, atomically and only when their
        content differs. Runtime grants never reach these files by themselves: without this,
        a reload silently drops every grant added since the files were last written.

        ``entries`` were read from the database a moment ago; a revocation that committed
        since then is in the revoked map's file already (:meth:`remove` appends it). So that
        file keeps every key the new grants file still holds, and lets go of the others only:
        a key the grants file no longer holds is closed without it."""
        _check_resources(resources)
        values = {entry.key: entry.value for entry in entries}
        grants = "".join(f"{key} {values[key]}\n" for key in sorted(values))
        types = "".join(f"{name} {code}\n" for name, code in sorted(resources.items()))
        with self._revoked_file_locked():
            wrote = _write_if_changed(self.config.grants_map, grants.encode())
            kept = self._revoked_file_keys() & values.keys()
            revoked = "".join(f"{key} 1\n" for key in sorted(kept))
            wrote = _write_if_changed(self.config.revoked_map, revoked.encode()) or wrote
        return _write_if_changed(self.config.resources_map, types.encode()) or wrote

    @contextlib.contextmanager
    def _revoked_file_locked(self) -> Iterator[None]:
        lock = self.config.revoked_lock
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _revoked_file(self, change: Callable[[str], None], key: str) -> None:
        """Append or discard ``key`` in the revoked map's file. A file that cannot be written
        now (disk full, permissions) is the gateway being unavailable: the caller retries, and
        a removal never reaches the runtime API without its line in the file."""
        try:
            change(key)
        except OSError as exc:
            raise MapFileUnwritable(f"{self.config.revoked_map.name}: {exc}") from exc

    def _revoked_file_keys(self) -> set[str]:
        """The keys in the revoked map's file (call with the lock held)."""
        try:
            text = self.config.revoked_map.read_text()
        except FileNotFoundError:
            return set()
        return {line.split(" ", 1)[0] for line in text.splitlines() if line.strip()}

    def _revoked_file_append(self, key: str) -> None:
        """One line at the end of the revoked map's file, whatever its size: one ``write`` of
        a complete line with O_APPEND, under the lock (a rewrite never loses it)."""
        with self._revoked_file_locked():
            fd = os.open(self.config.revoked_map, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{key} 1\n".encode())
            finally:
                os.close(fd)

    def _revoked_file_append_once(self, key: str) -> None:
        """Append ``key`` unless the revoked map's file holds it already (a gateway that does
        not answer is told each time the closer tries again)."""
        with self._revoked_file_locked():
            if key in self._revoked_file_keys():
                return
        self._revoked_file_append(key)

    def _revoked_file_discard(self, key: str) -> None:
        """Take ``key`` out of the revoked map's file, when it is there (a small file: it holds
        the removals since the reconciler last wrote the map files)."""
        with self._revoked_file_locked():
            try:
                text = self.config.revoked_map.read_text()
            except FileNotFoundError:
                return
            lines = text.splitlines(keepends=True)
            kept = [line for line in lines if line.split(" ", 1)[0].strip() != key]
            if len(kept) != len(lines):
                _write_if_changed(self.config.revoked_map, "".join(kept).encode())

    # -- runtime API: grants ----------------------------------------------------------------

    @_push("upsert")
    def upsert(self, entry: Entry) -> None:
        """Make ``entry`` pass with its service codes, idempotently, in one or two exchanges of
        a few hundred bytes whatever the map size. One exchange looks the key up in both maps
        (a tree lookup each); a new key is then added. A key held in the revoked map leaves it
        (a walk of that small map only). A key already granted is left as it is: ``add map``
        would add a second entry with the same key, and ``del map`` would walk the whole grants
        map. Only when its service codes changed is its value set, with ``set map``, which in
        HAProxy 2.6 walks the grants map too (0.7 ms at 30,000 entries): rare, and never on
        the path of a revocation.

        The key leaves the revoked map's file first: a reload in between then loads no stale
        removal, and at worst the grant waits closed for this runtime change."""
        grants, revoked = self.config.grants_map, self.config.revoked_map
        self._revoked_file(self._revoked_file_discard, entry.key)
        in_revoked, value = self._lookup(entry)
        commands = []
        if in_revoked:
            commands.append(f"del map {revoked} {entry.key}")
        if value is None:
            commands.append(f"add map {grants} {entry.key} {entry.value}")
        elif value != entry.value:
            commands.append(f"set map {grants} {entry.key} {entry.value}")
        if commands:
            _expect_empty(self._runtime(";".join(commands) + "\n"), allowed={_KEY_NOT_FOUND})

    @_push("remove")
    def remove(self, entry: Entry) -> None:
        """Stop ``entry`` passing at once, at the same cost however large the grants map is:
        its key goes into the revoked map, in its file first, then at runtime. The file first:
        a reload from then on loads the removal with the grants file, even one written before
        it. A key the running grants map does not hold is revoked too: the grants file may hold
        it, or the reconciler's add-back may be about to add it. Removing twice is harmless.

        A gateway that does not answer still gets the line in its file (then
        :class:`GatewayUnavailable`): when it starts again, it loads the removal with its
        grants file. A running gateway whose file cannot take the line (disk full) closes the
        key all the same, then :class:`MapFileUnwritable`: the caller tries again until the
        line is there too (a key already closed still gets its line)."""
        try:
            in_revoked, _ = self._lookup(entry)
        except GatewayUnavailable:
            self._revoked_file(self._revoked_file_append_once, entry.key)
            raise
        if in_revoked:
            self._revoked_file(self._revoked_file_append_once, entry.key)
            return
        close = f"add map {self.config.revoked_map} {entry.key} 1\n"
        try:
            self._revoked_file(self._revoked_file_append, entry.key)
        except MapFileUnwritable:
            # Closed now rather than left open for as long as the disk is full: a reload
            # before the retry would reopen it, as leaving it open would have (make chaos).
            _expect_empty(self._runtime(close))
            raise
        _expect_empty(self._runtime(close))

    @_push("add_if_absent")
    def add_if_absent(self, entry: Entry) -> bool:
        """Add ``entry`` to the grants map when the map lacks its key, and never touch the
        revoked map (unlike :meth:`upsert`): what the reconciler re-adds after a swap stays
        closed when it was revoked meanwhile. Returns whether it added."""
        answer = self._runtime(f"get map {self.config.grants_map} {entry.key}\n")
        [value] = _found(answer, 1)
        if value is not None:
            return False
        _expect_empty(
            self._runtime(f"add map {self.config.grants_map} {entry.key} {entry.value}\n")
        )
        return True

    def granted(self) -> set[str]:
        """The keys in the running grants map, revoked or not."""
        return {key for key, _ in self._show_map(self.config.grants_map)}

    def _lookup(self, entry: Entry) -> tuple[bool, str | None]:
        """Whether the key is in the revoked map, and its value in the grants map (None when
        it is not there): one exchange, a tree lookup in each."""
        config = self.config
        answer = self._runtime(
            f"get map {config.revoked_map} {entry.key};get map {config.grants_map} {entry.key}\n"
        )
        in_revoked, value = _found(answer, 2)
        return in_revoked is not None, value

    def entries(self) -> set[str]:
        """The keys that pass: in the running grants map and not in the revoked map."""
        return set(self.values())

    def values(self) -> dict[str, str]:
        """The keys that pass, with their values (the service codes, or "-")."""
        revoked = self.revoked()
        return {
            key: value
            for key, value in self._show_map(self.config.grants_map)
            if key not in revoked
        }

    def revoked(self) -> set[str]:
        """The keys removed since the grants map was last replaced (see :meth:`replace_all`)."""
        return {key for key, _ in self._show_map(self.config.revoked_map)}

    @_push("replace_all")
    def replace_all(self, entries: Iterable[Entry]) -> None:
        """Swap the whole grants map for ``entries`` atomically: requests see the old map until
        the commit, then the new one, never a half-loaded one. The new version is loaded in
        batches (HAProxy ignores a payload over its 16 KiB buffer), 30,000 entries in ~0.1 s.
        The commit drops every entry of the older version, including one that an
        :meth:`upsert` added while this ran: compute ``entries`` to include those.

        Then the revoked map lets go of the keys the new grants map does not hold. A key it
        does hold stays revoked: it was removed while ``entries`` was being computed."""
        values = {e.key: e.value for e in entries}
        keys = set(values)
        self._replace_map(self.config.grants_map, (f"{k} {v}\n" for k, v in values.items()))
        folded = [key for key in self.revoked() if key not in keys]
        for batch in _batches(f"del map {self.config.revoked_map} {key};" for key in folded):
            _expect_empty(self._runtime(batch.rstrip(";") + "\n"), allowed={_KEY_NOT_FOUND})

    # -- runtime API: resource types --------------------------------------------------------

    def resources(self) -> dict[str, str]:
        """The running resources map: FHIR ResourceType → service code."""
        return dict(self._show_map(self.config.resources_map))

    @_push("set_resources")
    def set_resources(self, mapping: dict[str, str]) -> None:
        """Replace the running resources map atomically."""
        _check_resources(mapping)
        lines = (f"{name} {code}\n" for name, code in mapping.items())
        self._replace_map(self.config.resources_map, lines)

    # -- processes --------------------------------------------------------------------------

    @_push("reload")
    def reload(self, *, wait: float = 10.0) -> None:
        """Have the master start a new worker on the files as they are now (keys, maps,
        configuration) and wait, at most ``wait`` seconds, until that worker answers on the
        runtime socket. The old worker finishes its requests and exits (at most 5 s later).
        Runtime-only map entries are gone afterwards: write the map files first.

        Raises :class:`GatewayError` when HAProxy rejected the new configuration (the old
        worker then keeps serving) and :class:`GatewayUnavailable` when it cannot be asked or
        does not finish in time."""
        # Just after a start the master may refuse for a few milliseconds after the worker
        # already answers: a short grace, not the whole wait, for a gateway that is down.
        grace = time.monotonic() + min(wait, 1.0)
        while True:
            try:
                before = self._master_process()
                break
            except GatewayUnavailable:
                if time.monotonic() >= grace:
                    raise
                time.sleep(0.05)
        old_pid = self._worker_pid()
        self._command(self.config.master_socket, "reload\n")
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                master = self._master_process()
                if master.reloads <= before.reloads:
                    continue
                if master.failed > 0:
                    raise GatewayError(
                        "HAProxy rejected the new configuration (see its log); "
                        "the previous worker keeps serving"
                    )
                pid = self._worker_pid()
            except GatewayUnavailable:
                continue  # the master re-executes itself; its socket comes back
            if pid is not None and pid != old_pid:
                return
        raise GatewayUnavailable(f"HAProxy did not finish reloading within {wait} s")

    def is_running(self) -> bool:
        """Whether a worker answers on the runtime socket."""
        return self._worker_pid() is not None

    # -- plumbing ---------------------------------------------------------------------------

    def _worker_pid(self) -> int | None:
        try:
            answer = self._runtime("show info\n")
        except GatewayUnavailable:
            return None
        match = re.search(r"^Pid: (\d+)$", answer, re.MULTILINE)
        return int(match.group(1)) if match else None

    def _master_process(self) -> _Master:
        answer = self._command(self.config.master_socket, "show proc\n")
        for line in answer.splitlines():
            match = re.match(r"\d+\s+master\s+(\d+)(?:\s+\[failed: (\d+)\])?", line)
            if match:
                return _Master(reloads=int(match.group(1)), failed=int(match.group(2) or 0))
        raise GatewayError(f"unexpected answer to 'show proc': {answer[:200]!r}")

    def _show_map(self, map_file: Path) -> Iterator[tuple[str, str]]:
        answer = self._runtime(f"show map {map_file}\n")
        for line in answer.splitlines():
            if not line:
                continue
            parts = line.split(" ", 2)
            if len(parts) != 3 or not parts[0].startswith("0x"):
                raise GatewayError(f"HAProxy: {line[:200]}")
            yield parts[1], parts[2]

    def _replace_map(self, map_file: Path, lines: Iterable[str]) -> None:
        answer = self._runtime(f"prepare map {map_file}\n")
        match = re.match(r"New version created: (\d+)", answer)
        if not match:
            raise GatewayError(f"HAProxy: {answer.strip()[:200]}")
        version = match.group(1)
        try:
            for batch in _batches(lines):
                # The payload form: one command, the lines, a blank line. HAProxy answers an
                # oversized payload with nothing at all, hence the size limit of a batch.
                answer = self._runtime(f"add map @{version} {map_file} <<\n{batch}\n")
                _expect_empty(answer)
            _expect_empty(self._runtime(f"commit map @{version} {map_file}\n"))
        except BaseException:
            # Drop the uncommitted version; the running map was never touched.
            with contextlib.suppress(GatewayUnavailable, GatewayError):
                self._runtime(f"clear map @{version} {map_file}\n")
            raise

    def _runtime(self, command: str) -> str:
        return self._command(self.config.runtime_socket, command)

    def _command(self, path: Path, command: str) -> str:
        """Send ``command`` (one line, or a payload), read the answer until HAProxy closes."""
        chunks: list[bytes] = []
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(path))
                sock.sendall(command.encode())
                # The master CLI keeps the connection open until the client closes its side.
                sock.shutdown(socket.SHUT_WR)
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:  # missing, refused, reset, timed out
            name = command.split(" ", 2)[:2]
            raise GatewayUnavailable(f"{path.name}: {' '.join(name).strip()}: {exc}") from exc
        return b"".join(chunks).decode(errors="replace")


class Gateways:
    """Every gateway of the settings (production runs several HAProxy instances): each change
    goes to each of them, and one that does not answer never holds the others back.

    * :meth:`upsert` (opening) changes every gateway that answers. The grant is open where it
      answered; one that did not is *behind* (:attr:`behind`, by name), and catches up from its
      map files when it starts again (rewritten from the database every few seconds) and from
      the reconciler, which compares each gateway with the database every 10 s. Only when no
      gateway answered does it raise :class:`GatewayUnavailable` (the job tries again): an
      opening is never lost, and a gateway that lacks a grant refuses it (fail closed).
    * :meth:`remove` (revocation) closes at every gateway that answers at once, and appends
      the key to the revoked map file of every gateway, answering or not, so one that is down
      starts again closed. It raises :class:`GatewayUnavailable` only when a gateway's file
      could not be written (:class:`MapFileUnwritable`): then nothing holds the revocation
      there. Callers that must see it closed at runtime everywhere (the closer) check
      :attr:`behind` and try again.
    * :class:`GatewayError` (HAProxy refused a command) is raised after every gateway was
      tried: the others still get the change.
    """

    def __init__(self, gateways: Iterable[HAProxyGateway]) -> None:
        self.gateways = list(gateways)
        if not self.gateways:
            raise ValueError("at least one gateway")
        names = [gw.config.name for gw in self.gateways]
        if len(set(names)) != len(names):
            raise ValueError(f"gateway names must differ: {names}")
        #: The gateways that did not take the latest changes at runtime, with the reason.
        self.behind: dict[str, str] = {}

    def __iter__(self) -> Iterator[HAProxyGateway]:
        return iter(self.gateways)

    def __len__(self) -> int:
        return len(self.gateways)

    def upsert(self, entry: Entry) -> None:
        """Open ``entry`` at every gateway that answers (see the class)."""
        reached = self._each(lambda gw: gw.upsert(entry))
        if not reached:
            raise GatewayUnavailable(f"no gateway answered: {self._reasons()}")

    def remove(self, entry: Entry) -> None:
        """Close ``entry`` at every gateway that answers, and in every gateway's files."""
        self._each(lambda gw: gw.remove(entry), durable_when_down=True)

    def remove_all(self, entries: Iterable[Entry]) -> None:
        """:meth:`remove` each of ``entries``, every one of them: a gateway whose disk is full
        closes an entry all the same (then :class:`MapFileUnwritable`), and that must not leave
        the next entries open (a revocation of several grants once stopped at the first).
        Raises the first MapFileUnwritable after the last entry."""
        unwritable: MapFileUnwritable | None = None
        for entry in entries:
            try:
                self.remove(entry)
            except MapFileUnwritable as exc:
                unwritable = unwritable or exc
        if unwritable is not None:
            raise unwritable

    def _each(
        self, change: Callable[[HAProxyGateway], None], *, durable_when_down: bool = False
    ) -> int:
        reached = 0
        unwritable: MapFileUnwritable | None = None
        refused: GatewayError | None = None
        for gw in self.gateways:
            try:
                change(gw)
            except MapFileUnwritable as exc:
                self.behind[gw.config.name] = str(exc)
                unwritable = unwritable or exc
            except GatewayUnavailable as exc:
                self.behind[gw.config.name] = str(exc)
            except GatewayError as exc:
                self.behind[gw.config.name] = str(exc)
                refused = refused or exc
            else:
                reached += 1
        if refused is not None:
            raise refused
        if durable_when_down and unwritable is not None:
            raise unwritable
        return reached

    def _reasons(self) -> str:
        return "; ".join(f"{name}: {reason}" for name, reason in sorted(self.behind.items()))


_GET_MAP_VALUE = re.compile(r'found=yes, .*value="([^"]*)"')


def _found(answer: str, count: int) -> list[str | None]:
    """The value each of ``count`` ``get map`` commands sent in one exchange found (None when
    it found nothing). A short answer is transient: a gateway still running a configuration
    without one of the maps gets it at the reconciler's next reload."""
    found = [line for line in answer.splitlines() if line.startswith("type=")]
    if len(found) != count:
        raise GatewayUnavailable(
            f"HAProxy answered {len(found)} of {count} lookups: {answer.strip()[:200]}"
        )
    values: list[str | None] = []
    for line in found:
        match = _GET_MAP_VALUE.search(line)
        values.append(match.group(1) if match else None)
    return values


def _expect_empty(answer: str, *, allowed: set[str] | None = None) -> None:
    """Commands that change a map answer an empty line each when they succeed. No answer at
    all means HAProxy closed without running them."""
    if not answer:
        raise GatewayUnavailable("HAProxy closed the runtime socket without answering")
    errors = [line for line in answer.splitlines() if line and line not in (allowed or set())]
    if errors:
        raise GatewayError(f"HAProxy: {' / '.join(errors)[:500]}")


def _check_scopes(scopes: Scopes) -> None:
    for service, pair in scopes.items():
        if not _SERVICE.fullmatch(service):
            raise ValueError(f"service code {service!r} is not a slug")
        for scope in pair:
            if not _SCOPE.fullmatch(scope):
                raise ValueError(f"scope {scope!r} has characters the gateway cannot carry")


def _check_resources(mapping: dict[str, str]) -> None:
    for name, code in mapping.items():
        if not _RESOURCE_TYPE.fullmatch(name):
            raise ValueError(f"{name!r} is not a FHIR resource type")
        if not _SERVICE.fullmatch(code):
            raise ValueError(f"service code {code!r} is not a slug")
