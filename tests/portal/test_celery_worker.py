"""A task run by a real Celery worker process, through Redis and through the embedded broker."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.components import PROJECT_DIR, VENV_BIN
from tests.integration import RedisServer, celery_env

pytestmark = pytest.mark.integration

StartWorker = Callable[[dict[str, str]], subprocess.Popen[bytes]]

# Sent from a separate process configured only by the environment, as the web process would be.
SEND_PING = """
import json, django
django.setup()
from portal.tasks import ping
print(json.dumps(ping.delay().get(timeout=30)))
"""


def send_ping(env: dict[str, str]) -> dict[str, str]:
    result = subprocess.run(
        [str(VENV_BIN / "python"), "-c", SEND_PING],
        cwd=PROJECT_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_a_worker_runs_a_task_sent_through_redis(
    tmp_path: Path, redis_server: RedisServer, start_worker: StartWorker
) -> None:
    env = celery_env(tmp_path, redis_server.url)
    start_worker(env)

    answer = send_ping(env)

    assert "pong" in answer
    # What the pool process loaded at start-up is out of the collector's full collections
    # (portal.heap): tens of thousands of objects, not the few a task leaves.
    assert int(answer["frozen_objects"]) > 10_000


@pytest.mark.usefixtures("postgresql")  # a database session of its own is a server's
def test_a_worker_keeps_its_database_connection_from_one_task_to_the_next(
    tmp_path: Path, redis_server: RedisServer, start_worker: StartWorker
) -> None:
    """Celery's Django fixup would connect anew for every task (3 ms, and no statement ever
    prepared); settings.CELERY_DB_REUSE_MAX keeps the connection, as CONN_MAX_AGE says."""
    env = celery_env(tmp_path, redis_server.url)
    start_worker(env)

    first, second = send_ping(env), send_ping(env)

    assert first["database_session"]
    assert second["database_session"] == first["database_session"]


def test_a_worker_runs_a_task_sent_through_the_embedded_broker(
    tmp_path: Path, start_worker: StartWorker
) -> None:
    env = celery_env(tmp_path, "filesystem://")
    start_worker(env)

    assert "pong" in send_ping(env)
    # The message really went through the folder queue of the embedded broker, and kombu keeps
    # its exchange tables there too, not in a control/ folder of the working directory.
    assert (tmp_path / "var" / "celery" / "queue").is_dir()
    assert (tmp_path / "var" / "celery" / "control" / "celery.exchange").is_file()


def test_without_a_worker_nothing_answers(tmp_path: Path) -> None:
    """The round trip above is the worker's doing: with no worker the sender times out."""
    env = celery_env(tmp_path, "filesystem://")
    script = SEND_PING.replace("timeout=30", "timeout=3")
    result = subprocess.run(
        [str(VENV_BIN / "python"), "-c", script],
        cwd=PROJECT_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "TimeoutError" in result.stderr
