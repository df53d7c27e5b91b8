"""/metrics: only for the bearer of METRICS_TOKEN, labelled by view and not by path, and the
database's figures read when it is scraped. The end-to-end scrape after a real worker's work is
in tests/provisioning/test_observability.py."""

from __future__ import annotations

import ast
import datetime
import logging
import uuid
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from audit.services import audit_event_record
from orders.models import GrantStatus, ProvisioningJob
from orders.services import grant_periods_open
from provisioning import reconcile
from provisioning.gateway import Entry, GatewayConfig, GatewayUnavailable, HAProxyGateway
from tests.components import PROJECT_DIR
from tests.factories import GrantFactory

TOKEN = "metrics-token-for-the-tests-" + "x" * 20

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(settings: Any) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client: Client | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by name and labels."""
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_without_a_token_setting_there_is_no_metrics_endpoint(settings: Any) -> None:
    settings.METRICS_TOKEN = ""

    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ")

    assert response.status_code == 404
    assert b"tilgang_" not in response.content


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer wrong"},
        {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}x"},
        {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"},
        {"HTTP_AUTHORIZATION": TOKEN},
        {"HTTP_X_FORWARDED_FOR": "127.0.0.1"},
    ],
    ids=["none", "wrong", "longer", "basic", "bare", "forwarded-from-loopback"],
)
def test_a_caller_without_the_bearer_token_gets_401_and_no_figures(
    token: str, headers: dict[str, str]
) -> None:
    response = Client().get("/metrics", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"tilgang_" not in response.content


def test_the_token_is_neither_in_the_query_string_nor_in_any_log_line(
    token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    in_query = Client().get(f"/metrics?token={TOKEN}")
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-metrics-token-1234")
    right = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert (in_query.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert "Unauthorized: /metrics" in caplog.text  # Django logged the refusals
    assert TOKEN not in caplog.text
    assert "not-the-metrics-token-1234" not in caplog.text


def test_request_latency_is_labelled_by_view_name_never_by_the_path(token: str) -> None:
    client = Client()
    before = scrape(client)
    paths = [f"/api/v1/grants/{uuid.uuid4()}/" for _ in range(2)]
    for path in paths:
        client.get(path)  # 401 or 403 for an anonymous caller: the view is known all the same
    client.get(f"/no-such-page-{uuid.uuid4()}")

    after = scrape(client)

    name = "tilgang_http_request_duration_seconds_count"
    assert value(after, name, view="grant-detail", method="GET", status="4xx") == (
        value(before, name, view="grant-detail", method="GET", status="4xx") + 2
    )
    assert value(after, name, view="unmatched", method="GET", status="4xx") == (
        value(before, name, view="unmatched", method="GET", status="4xx") + 1
    )
    labels = {value for (_, pairs) in after for _, value in pairs}
    assert not any("no-such-page" in label or "/api/" in label for label in labels)


def test_a_push_to_a_gateway_that_does_not_answer_is_counted_as_a_failed_push(
    token: str, tmp_path: Any
) -> None:
    """Counted in this process, read back through the multiprocess files like a worker's."""
    config = GatewayConfig(tmp_path, "127.0.0.1:1", "127.0.0.1:2", "http://i", "http://a")
    entry = Entry("production", "tilgang-metrics", "958935420", "patient", "read")
    before = scrape()

    with pytest.raises(GatewayUnavailable):
        HAProxyGateway(config).upsert(entry)
    after = scrape()

    pushes, failures = "tilgang_gateway_pushes_total", "tilgang_gateway_push_failures_total"
    assert value(after, pushes, operation="upsert") == value(before, pushes, operation="upsert") + 1
    for error, added in [("unavailable", 1), ("refused", 0)]:
        assert value(after, failures, operation="upsert", error=error) == (
            value(before, failures, operation="upsert", error=error) + added
        )


def test_jobs_and_grants_by_status_are_read_from_the_database(token: str) -> None:
    before = scrape()
    grant = GrantFactory(status=GrantStatus.ACTIVE)
    GrantFactory(status=GrantStatus.FAILED)
    ProvisioningJob.objects.create(client=grant.client, grant=grant, reason="test")
    ProvisioningJob.objects.create(
        client=grant.client, reason="test", status=ProvisioningJob.Status.DONE
    )

    after = scrape()

    for name, status, added in [
        ("tilgang_grants", "active", 1),
        ("tilgang_grants", "failed", 1),
        ("tilgang_grants", "revoked", 0),
        ("tilgang_provisioning_jobs", "pending", 1),
        ("tilgang_provisioning_jobs", "done", 1),
        ("tilgang_provisioning_jobs", "failed", 0),
    ]:
        assert value(after, name, status=status) == value(before, name, status=status) + added


def test_time_to_active_counts_each_grant_once_from_creation_to_its_first_period(
    token: str,
) -> None:
    before = scrape()
    grant = GrantFactory(status=GrantStatus.ACTIVE)
    created = timezone.now() - datetime.timedelta(minutes=10)
    type(grant).objects.filter(pk=grant.pk).update(created_at=created)
    grant_periods_open(grants=[grant], at=created + datetime.timedelta(seconds=3))

    after = scrape()

    name = "tilgang_grant_time_to_active_seconds"
    for bucket, added in [("2.0", 0), ("5.0", 1), ("+Inf", 1)]:
        assert value(after, f"{name}_bucket", le=bucket) == (
            value(before, f"{name}_bucket", le=bucket) + added
        )
    assert value(after, f"{name}_count") == value(before, f"{name}_count") + 1
    assert value(after, f"{name}_sum") == pytest.approx(value(before, f"{name}_sum") + 3)


def test_reconciler_heals_are_counted_from_its_audit_events(token: str) -> None:
    before = scrape()
    audit_event_record(
        actor=None, actor_label=reconcile.ACTOR, action="reconcile.gateway_grants", after={}
    )
    audit_event_record(actor=None, actor_label="someone", action="grant.activated", after={})

    after = scrape()

    name = "tilgang_reconciler_heals_total"
    assert value(after, name, action="gateway_grants") == (
        value(before, name, action="gateway_grants") + 1
    )
    assert value(after, name, action="registration") == value(before, name, action="registration")


def test_every_heal_the_reconciler_records_is_one_the_metric_counts() -> None:
    """The counter reads the actions of ``HEAL_ACTIONS`` (an index lookup): a new kind of heal
    must be added there."""
    tree = ast.parse((PROJECT_DIR / "provisioning" / "reconcile.py").read_text())
    recorded = {
        node.args[1].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", "") == "_heal"
        and isinstance(node.args[1], ast.Constant)
    }

    assert recorded
    assert recorded == set(reconcile.HEAL_ACTIONS)


def test_queue_depth_is_the_number_of_messages_waiting(token: str) -> None:
    from portal import celery_app

    queue = "notifications"
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(queue)
    before = scrape()
    celery_app.send_task("notifications.email_send", args=["0"], queue=queue)
    celery_app.send_task("notifications.email_send", args=["0"], queue=queue)
    try:
        after = scrape()
    finally:
        with celery_app.connection_for_write() as connection:
            connection.default_channel.queue_purge(queue)

    assert value(before, "tilgang_broker_up") == 1
    assert value(after, "tilgang_queue_depth", queue=queue) == (
        value(before, "tilgang_queue_depth", queue=queue) + 2
    )
