"""The real stack on loopback, started as separate processes: what `make bench` (bench/run.py)
and `make chaos` (chaos/run.py) both run. A fresh PostgreSQL database, the local authorization
server, the echo upstream, HAProxy gateways from the files `manage.py gateway_config` writes,
Celery workers (and beat), gunicorn. Production-like settings: no DEBUG, secrets given."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NODE = ROOT / "node_modules" / ".bin" / "node"
HAPROXY = "haproxy"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_listens(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port: int, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_listens(port):
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not listen on {port} within {timeout} s")


class Processes:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: dict[str, list[subprocess.Popen[bytes]]] = {}

    def start(self, role: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{role}-{len(self.running.get(role, []))}.log").open("wb")
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.running.setdefault(role, []).append(proc)
        return proc

    def latest(self, role: str) -> subprocess.Popen[bytes]:
        return self.running[role][-1]

    def stop_all(self) -> None:
        for procs in self.running.values():
            for proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for procs in self.running.values():
            for proc in procs:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)

    def peak_rss_mb(self, role: str) -> float:
        """The largest peak resident set (VmHWM) of any process of the role, children included."""
        peaks = [0]
        for proc in self.running.get(role, []):
            for pid in [proc.pid, *descendants(proc.pid)]:
                peaks.append(vm_hwm_kb(pid))
        return max(peaks) / 1024


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def admin_url() -> str:
    return os.environ.get(
        "BENCH_DATABASE_ADMIN_URL", "postgresql://tilgang:tilgang@127.0.0.1:5432/postgres"
    )


@contextmanager
def database(name: str, *, drop_after: bool = False) -> Iterator[str]:
    """A fresh database ``name`` (dropped first if a run left it); its URL. With
    ``drop_after`` it is dropped again when the block ends."""
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url().rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        if drop_after:
            with psycopg.connect(admin_url(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def production_env(
    *, run_dir: Path, database_url: str, broker: str, issuer: str, web: str
) -> dict[str, str]:
    """The environment of every process of the stack: production-like (no DEBUG: it keeps every
    query in memory), fresh secrets, the API's throttles out of the way (one person and one
    automation client make thousands of calls a minute here)."""
    return {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_SESSION_COOKIE_SECURE": "0",
        "DJANGO_CSRF_COOKIE_SECURE": "0",
        "DJANGO_SECURE_HSTS_SECONDS": "0",
        "DJANGO_LOG_LEVEL": "WARNING",
        **{
            f"TILGANG_THROTTLE_{who}_{what}": "1000000/min"
            for who in ("PERSON", "CLIENT")
            for what in ("READ", "WRITE")
        },
        "OIDC_RP_CLIENT_SECRET": secrets.token_urlsafe(32),
        "OIDC_INITIAL_ACCESS_TOKEN": secrets.token_urlsafe(32),
        "OIDC_COOKIE_KEY": secrets.token_urlsafe(32),
        "TILGANG_ENCRYPTION_KEY": secrets.token_urlsafe(32),
        "TILGANG_VAR_DIR": str(run_dir),
        "DATABASE_URL": database_url,
        "DATABASE_CONN_MAX_AGE": "600",
        "CELERY_BROKER_URL": broker,
        "OIDC_OP_ISSUER": issuer,
        "OIDC_ISSUER": issuer,
        "PORTAL_URL": web,
        "PYTHONUNBUFFERED": "1",
    }


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [str(BIN / "python"), "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def start_provider(procs: Processes, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """The local authorization server (its registrations kept under TILGANG_VAR_DIR)."""
    proc = procs.start("provider", [str(NODE), "oidc/provider.mjs"], env)
    wait_port(port, "the authorization server")
    return proc


def start_echo(procs: Processes, env: dict[str, str], port: int) -> None:
    procs.start("echo", [str(BIN / "python"), "gateway/echo.py", "--port", str(port)], env)


def start_haproxy(
    procs: Processes, env: dict[str, str], directory: Path, port: int
) -> subprocess.Popen[bytes]:
    """One gateway from the files in ``directory`` (`manage.py gateway_config` writes them)."""
    args = [HAPROXY, "-W", "-db", "-f", str(directory / "haproxy.cfg")]
    proc = procs.start("gateway", [*args, "-S", str(directory / "master.sock")], env)
    wait_port(port, "HAProxy")
    return proc


def start_worker(
    procs: Processes, env: dict[str, str], name: str, queue: str = "celery", role: str = "worker"
) -> subprocess.Popen[bytes]:
    """A Celery worker process (one child) on ``queue``, started under ``role``."""
    args = [str(BIN / "celery"), "-A", "portal", "worker", "--concurrency=1"]
    args += [f"--hostname={name}@%h", "--without-gossip", "--without-mingle"]
    return procs.start(role, [*args, "--loglevel=INFO", "-Q", queue], env)


def start_beat(procs: Processes, env: dict[str, str], schedule: Path) -> subprocess.Popen[bytes]:
    args = [str(BIN / "celery"), "-A", "portal", "beat", "--loglevel=INFO", "-s", str(schedule)]
    return procs.start("beat", args, env)


def start_web(
    procs: Processes, env: dict[str, str], port: int, workers: int = 2
) -> subprocess.Popen[bytes]:
    args = [str(BIN / "gunicorn"), "portal.wsgi", "--workers", str(workers), "--threads", "8"]
    args += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    proc = procs.start("web", args, env)
    wait_port(port, "gunicorn")
    return proc
