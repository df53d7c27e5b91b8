"""With the broker down, a write that committed still answers; the sweeper sends its job later.
Against a real Redis of the test's own, stopped and started again on the same port."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import pools
from rest_framework.test import APIClient

from orders.models import GrantStatus, ProvisioningJob, Service
from portal import celery_app
from provisioning.runner import jobs_sweep
from tests.components import port_open, process, stop, wait_until
from tests.conftest import World
from tests.factories import ClientFactory, GrantFactory
from tests.integration import RedisServer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _reset_pools() -> None:
    """Forget the connections to the broker this process had: the next send connects anew."""
    pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisServer]:
    """This process publishes to the test's own Redis (not the shared one)."""
    _reset_pools()
    monkeypatch.setattr(celery_app.conf, "broker_write_url", redis_server.url)
    yield redis_server
    _reset_pools()


def _restart(server: RedisServer, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    args = ["redis-server", "--bind", "127.0.0.1", "--port", str(server.port)]
    args += ["--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    with process(args, log=tmp_path / "redis-2.log") as proc:
        wait_until(lambda: port_open(server.port), timeout=10, what="redis again")
        yield proc


def test_a_revocation_answers_while_the_broker_is_down_and_the_sweeper_sends_its_job_later(
    world: World, broker: RedisServer, tmp_path: Path, settings: Any
) -> None:
    service = Service.objects.get(code="patient")
    grant = GrantFactory(
        client=world.client,
        kommune=world.kommune,
        service=service,
        status=GrantStatus.ACTIVE,
    )
    api = APIClient()
    api.force_authenticate(world.people["kommune_admin"])
    stop(broker.proc)

    response = api.post(f"/api/v1/grants/{grant.pk}/revoke/", {}, format="json")

    assert response.status_code == 200, response.content
    grant.refresh_from_db()
    assert grant.status == GrantStatus.REVOKING
    job = ProvisioningJob.objects.get(client=world.client)
    assert job.status == ProvisioningJob.Status.PENDING

    restarted = _restart(broker, tmp_path)
    next(restarted)
    try:
        _reset_pools()
        assert jobs_sweep() >= 1  # not sent: due again at once, not in 10 s
        queue = redis.Redis(port=broker.port)
        wait_until(lambda: queue.llen("celery") >= 1, timeout=10, what="the job's message")
        bodies = [queue.lindex("celery", i) for i in range(queue.llen("celery"))]
        assert any(str(job.pk).encode() in (body or b"") for body in bodies)
    finally:
        restarted.close()


def test_revocations_answer_quickly_while_the_broker_is_down(
    world: World, broker: RedisServer
) -> None:
    """Each revocation sends two messages after COMMIT (its client's job and the gateway
    close); kombu's publish retries made each wait for seconds with the broker down. The
    sends give up at once instead: the sweeper sends the jobs later, and the job closes the
    gateway as well."""
    service = Service.objects.get(code="patient")
    clients = [ClientFactory(product=world.product) for _ in range(10)]
    grants = [
        GrantFactory(
            client=client,
            kommune=world.kommune,
            service=service,
            status=GrantStatus.ACTIVE,
        )
        for client in clients
    ]
    api = APIClient()
    api.force_authenticate(world.people["kommune_admin"])
    stop(broker.proc)

    started = time.monotonic()
    for grant in grants:
        response = api.post(f"/api/v1/grants/{grant.pk}/revoke/", {}, format="json")
        assert response.status_code == 200, response.content
    elapsed = time.monotonic() - started

    assert elapsed < 4.0, f"ten revocations answered in {elapsed:.1f} s"
    unsent = ProvisioningJob.objects.filter(client__in=clients, sent_at__isnull=True)
    assert unsent.count() == 10  # the sweeper's to send
