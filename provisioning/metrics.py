"""``/metrics`` for Prometheus: what the processes counted (``portal.metrics``) and what the
database and the broker hold, read when Prometheus asks.

The database figures are read at scrape time, one aggregate query each, not counted in a
process: they are right whichever process (web, worker, reconciler, a person in the admin) did
the work, survive restarts, and are the same on every host. The endpoint needs the bearer token
of settings.METRICS_TOKEN; without one set it does not exist.
"""

from __future__ import annotations

import datetime
import hmac
import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection
from kombu.exceptions import ChannelError
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from audit.models import AuditEvent
from orders.models import Grant, GrantStatus, ProvisioningJob
from provisioning.reconcile import HEAL_ACTIONS

logger = logging.getLogger(__name__)

#: The queues the Procfile's workers consume (settings.CELERY_TASK_ROUTES).
QUEUES = ("celery", settings.PROVISIONING_GATEWAY_CLOSE_QUEUE, settings.NOTIFICATIONS_QUEUE)
#: Upper bounds of the time-to-active histogram, in seconds: a worker's seconds, then minutes
#: for a server that was down, then days for an order that waited for its service to open.
ACTIVATION_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400, 604800)


class DatabaseCollector(Collector):
    """Jobs and grants by status, the time from a grant to its first activation, and the
    reconciler's heals: four queries a scrape."""

    def collect(self) -> Iterator[Metric]:
        yield self._by_status(
            "tilgang_provisioning_jobs",
            "Provisioning jobs (the outbox) by status.",
            ProvisioningJob.objects.order_by().values("status").annotate(n=Count("pk")),
            ProvisioningJob.Status.values,
        )
        yield self._by_status(
            "tilgang_grants",
            "Grants by status.",
            Grant.objects.order_by().values("status").annotate(n=Count("pk")),
            GrantStatus.values,
        )
        yield self._time_to_active()
        yield self._heals()

    @staticmethod
    def _by_status(name: str, text: str, rows: object, statuses: list[str]) -> Metric:
        counts = {status: 0 for status in statuses}
        counts.update({row["status"]: row["n"] for row in rows})  # type: ignore[attr-defined]
        family = GaugeMetricFamily(name, text, labels=["status"])
        for status, n in sorted(counts.items()):
            family.add_metric([status], n)
        return family

    @staticmethod
    def _time_to_active() -> Metric:
        """From a grant's creation (the order approved, by a person or by a delegation) to the
        start of its first period of access (orders.GrantPeriod: the authorization server
        accepted its scope and the gateway lets it through). Every grant ever activated, so the
        buckets only grow, as Prometheus expects of a histogram."""
        seconds = ExpressionWrapper(
            Min("periods__started_at") - F("created_at"), output_field=DurationField()
        )
        per_grant = (
            Grant.objects.order_by()
            .filter(periods__isnull=False)
            .values("pk")
            .annotate(seconds=seconds)
        )
        buckets = {
            f"le{i}": Count("pk", filter=Q(seconds__lte=datetime.timedelta(seconds=bound)))
            for i, bound in enumerate(ACTIVATION_BUCKETS)
        }
        row = per_grant.aggregate(count=Count("pk"), total=Sum("seconds"), **buckets)
        total: datetime.timedelta | None = row["total"]
        family = HistogramMetricFamily(
            "tilgang_grant_time_to_active_seconds",
            "Time from a grant's creation (its order approved) to its first activation.",
        )
        family.add_metric(
            [],
            buckets=[
                *[(str(float(b)), row[f"le{i}"]) for i, b in enumerate(ACTIVATION_BUCKETS)],
                ("+Inf", row["count"]),
            ],
            sum_value=total.total_seconds() if total is not None else 0.0,
        )
        return family

    @staticmethod
    def _heals() -> Metric:
        """The reconciler records an audit event for each drift it repairs: count those."""
        counts = dict.fromkeys(HEAL_ACTIONS, 0)
        rows = (
            AuditEvent.objects.order_by()
            .filter(action__in=HEAL_ACTIONS)
            .values("action")
            .annotate(n=Count("pk"))
        )
        counts.update({row["action"]: row["n"] for row in rows})
        family = CounterMetricFamily(
            "tilgang_reconciler_heals",
            "Drifts the reconciler found and repaired (its audit events), by kind.",
            labels=["action"],
        )
        for action, n in sorted(counts.items()):
            family.add_metric([action.removeprefix("reconcile.")], n)
        return family


class QueueCollector(Collector):
    """The messages waiting in each Celery queue (Redis list lengths, with the broker in
    Redis). When the broker does not answer, ``tilgang_broker_up`` is 0 and no depth is given."""

    def collect(self) -> Iterator[Metric]:
        depths: dict[str, int] = {}
        broker = Connection(
            settings.CELERY_BROKER_URL,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            connect_timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT,
        )
        try:
            broker.ensure_connection(max_retries=1)
            channel: Any = broker.default_channel  # a kombu virtual channel: queue_declare
            for queue in QUEUES:
                try:
                    depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                except ChannelError:  # never declared, or empty: Redis keeps no empty list
                    depths[queue] = 0
        except Exception as exc:  # kombu raises the transport's own errors
            logger.warning("metrics: broker unreachable: %s", type(exc).__name__)
            depths = {}
        finally:
            broker.release()
        up = GaugeMetricFamily("tilgang_broker_up", "Whether the Celery broker answered.")
        up.add_metric([], 1 if depths else 0)
        yield up
        family = GaugeMetricFamily(
            "tilgang_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        for queue, depth in depths.items():
            family.add_metric([queue], depth)
        yield family


def _authorized(request: HttpRequest) -> bool:
    expected = f"Bearer {settings.METRICS_TOKEN}".encode()
    given = request.headers.get("Authorization", "").encode()
    return hmac.compare_digest(given, expected)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text format, for a caller with the bearer token; 404 when no token is set
    (the endpoint is off), 401 for anyone else."""
    if not settings.METRICS_TOKEN:
        raise Http404
    if not _authorized(request):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    # Every process's files: request latency (web), gateway pushes (workers).
    MultiProcessCollector(registry, path=str(settings.PROMETHEUS_MULTIPROC_DIR))  # type: ignore[no-untyped-call]
    registry.register(DatabaseCollector())
    registry.register(QueueCollector())
    # The classic text format, which every Prometheus version reads.
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)
