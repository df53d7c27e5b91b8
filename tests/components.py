"""Start and stop the real components the integration tests talk to, all on loopback.

A component that cannot start fails the test: nothing here skips. ``make test`` installs them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
NODE = PROJECT_DIR / "node_modules" / ".bin" / "node"
VENV_BIN = Path(sys.executable).parent
#: Every component's log of a test session ends up here (tests/leaks.py reads them all at the
#: end): each process's log is copied in when the process stops, the in-process portal's log
#: lines are written to web.log as they come.
LOG_DIR = Path(os.environ.get("TILGANG_TEST_LOG_DIR") or PROJECT_DIR / "var" / "test-logs")
_kept = 0


def keep_log(log: Path) -> None:
    """Copy ``log`` into LOG_DIR under a name of its own (a component may log to one path more
    than once, e.g. each restart)."""
    global _kept
    if not log.exists():
        return
    _kept += 1
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(log, LOG_DIR / f"{_kept:04d}-{log.name}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    detail = f"\n--- {log} ---\n{log.read_text()[-4000:]}" if log and log.exists() else ""
    raise AssertionError(f"{what} not ready within {timeout} s{detail}")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def process(
    args: list[str],
    *,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path = PROJECT_DIR,
    stdout: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` in its own process group for the block; stop it (and its children) after.
    Its output goes to ``log``; with ``stdout``, its standard output is appended to that file
    instead (as ``scripts/gateway.sh`` appends HAProxy's data-access log)."""
    if shutil.which(args[0]) is None and not Path(args[0]).exists():
        raise AssertionError(f"{args[0]} is not installed: run `make test`, which installs it")
    with ExitStack() as files:
        out = files.enter_context(log.open("wb"))
        appended = files.enter_context(stdout.open("ab")) if stdout is not None else None
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=appended or out,
            stderr=out if appended else subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            stop(proc)
            keep_log(log)
            if stdout is not None:
                keep_log(stdout)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def manage(
    *args: str, env: dict[str, str], cwd: Path = PROJECT_DIR
) -> subprocess.CompletedProcess[str]:
    """``manage.py`` in a subprocess, its output kept for the test to show."""
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
