from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.components import stop
from tests.integration import RedisServer

pytestmark = pytest.mark.django_db


def test_healthz_answers_while_the_process_runs(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_when_database_and_broker_answer(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.integration
def test_readyz_reports_a_stopped_broker_as_not_ready(
    client: Client, settings: Any, redis_server: RedisServer
) -> None:
    settings.CELERY_BROKER_URL = redis_server.url
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    assert client.get("/readyz").status_code == 200

    stop(redis_server.proc)
    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("unreachable")
