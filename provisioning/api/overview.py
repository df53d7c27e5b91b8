"""The national overview in the API: ``GET /api/v1/overview/?months=&interval=``, for NHN staff
(403 for anyone else: it is nobody's object, so there is nothing to hide by a 404). In
provisioning, the top layer: it reads orders' figures and the gateway's counts."""

from __future__ import annotations

import datetime
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from orders.forms.oversight import OverviewForm, field_errors
from orders.overview import Overview
from provisioning.data_access import Traffic
from provisioning.overview import national_figures
from tenants.models import Environment
from tenants.permissions import IsNhnStaff


class KommunerPerEnvironmentSerializer(serializers.Serializer[Any]):
    test = serializers.IntegerField()
    production = serializers.IntegerField()


class ServiceOnboardingSerializer(serializers.Serializer[Any]):
    service = serializers.CharField(help_text="The service's code.")
    kommuner = KommunerPerEnvironmentSerializer(help_text="Kommuner with an active grant of it.")


class GrantsAtSerializer(serializers.Serializer[Any]):
    start = serializers.DateField(help_text="The first day of the day or week.")
    end = serializers.DateField(help_text="The day the count is read at the end of (today: now).")
    test = serializers.IntegerField()
    production = serializers.IntegerField()


class GrantsOverTimeSerializer(serializers.Serializer[Any]):
    months = serializers.IntegerField()
    interval = serializers.ChoiceField(choices=["day", "week"])
    points = GrantsAtSerializer(many=True)


class OrderToActiveSerializer(serializers.Serializer[Any]):
    grants = serializers.IntegerField(help_text="Grants that turned active over the last day.")
    p50_seconds = serializers.FloatField(allow_null=True)
    p95_seconds = serializers.FloatField(allow_null=True)


class ProvisioningHealthSerializer(serializers.Serializer[Any]):
    pending = serializers.IntegerField(help_text="Jobs waiting: the queue's depth.")
    running = serializers.IntegerField()
    failed_jobs = serializers.IntegerField()
    failed_last_day = serializers.IntegerField()
    failed_grants = serializers.IntegerField()
    oldest_pending_at = serializers.DateTimeField(allow_null=True)
    oldest_pending_age_seconds = serializers.FloatField(allow_null=True)
    order_to_active = OrderToActiveSerializer()


class ServiceTrafficSerializer(serializers.Serializer[Any]):
    service = serializers.CharField(
        allow_blank=True,
        help_text='The service\'s code; "" for calls refused before one was known.',
    )
    calls = serializers.IntegerField()
    refused = serializers.IntegerField(help_text="Calls the gateway refused itself.")


class TrafficAtSerializer(serializers.Serializer[Any]):
    start = serializers.DateField(help_text="The first day of the day or week.")
    end = serializers.DateField(help_text="Its last day (today at most).")
    calls = serializers.IntegerField()
    refused = serializers.IntegerField()


class GatewayTrafficSerializer(serializers.Serializer[Any]):
    calls = serializers.IntegerField(help_text="Over the whole period, every service.")
    refused = serializers.IntegerField()
    services = ServiceTrafficSerializer(many=True, help_text="Per service over the period.")
    points = TrafficAtSerializer(many=True, help_text="Per day or week, every service.")


class OverviewSerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField(help_text="When the figures were read.")
    kommuner = serializers.IntegerField(help_text="Kommuner registered in Tilgang.")
    onboarding = ServiceOnboardingSerializer(many=True)
    grants_over_time = GrantsOverTimeSerializer()
    provisioning = ProvisioningHealthSerializer()
    gateway_traffic = GatewayTrafficSerializer(
        help_text="Calls through the gateway over the period of grants_over_time."
    )


def _seconds(duration: datetime.timedelta | None) -> float | None:
    return None if duration is None else duration.total_seconds()


def overview_data(overview: Overview, traffic: Traffic) -> dict[str, Any]:
    """The overview as the API's document."""
    health = overview.health
    return {
        "at": overview.at,
        "kommuner": overview.kommuner,
        "onboarding": [
            {"service": row.service.code, "kommuner": row.kommuner} for row in overview.onboarding
        ],
        "grants_over_time": {
            "months": overview.months,
            "interval": overview.interval,
            "points": [
                {
                    "start": point.start,
                    "end": point.end,
                    **{env: point.counts.get(env, 0) for env in Environment.values},
                }
                for point in overview.points
            ],
        },
        "provisioning": {
            "pending": health.pending,
            "running": health.running,
            "failed_jobs": health.failed_jobs,
            "failed_last_day": health.failed_last_day,
            "failed_grants": health.failed_grants,
            "oldest_pending_at": health.oldest_pending_at,
            "oldest_pending_age_seconds": _seconds(health.oldest_pending_age),
            "order_to_active": {
                "grants": health.activated,
                "p50_seconds": _seconds(health.order_to_active_p50),
                "p95_seconds": _seconds(health.order_to_active_p95),
            },
        },
        "gateway_traffic": {
            "calls": traffic.calls,
            "refused": traffic.refused,
            "services": [
                {"service": code, "calls": calls, "refused": refused}
                for code, calls, refused in traffic.services
            ],
            "points": [
                {"start": start, "end": end, "calls": calls, "refused": refused}
                for start, end, calls, refused in traffic.spans
            ],
        },
    }


@extend_schema(
    parameters=[
        OpenApiParameter("months", int, enum=[3, 6, 12, 24], description="Default 6."),
        OpenApiParameter("interval", str, enum=["week", "day"], description="Default week."),
    ],
    responses=OverviewSerializer,
    description="NHN's national overview: kommuner onboarded per service and environment, "
    "active grants over time, provisioning health, and the gateway's calls per service and per "
    "day or week, as of `at`: read at most once a minute per period. NHN staff only.",
)
@api_view(["GET"])
@permission_classes([IsAuthenticated, IsNhnStaff])
def overview(request: Request) -> Response:
    form = OverviewForm(request.query_params)
    if not form.is_valid():
        raise ValidationError(field_errors(form))
    months, interval = form.period()
    return Response(
        OverviewSerializer(overview_data(*national_figures(months=months, interval=interval))).data
    )
