"""The provisioning queue, for NHN's operators: what waits, what failed and why, and `retry`.
And the gateway's data-access log: who called what, when, with what answer."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from orders.models import ProvisioningJob
from portal.api import CursorPaginationReleased
from provisioning import data_access, runner
from provisioning.api.serializers import (
    DailyCountSerializer,
    DataAccessEntrySerializer,
    DataAccessPageSerializer,
    DataAccessQuerySerializer,
    ProvisioningJobSerializer,
)
from provisioning.models import DataAccessEntry
from tenants.permissions import IsNhnStaff, is_nhn_operator


@extend_schema(
    parameters=[
        OpenApiParameter("status", str, enum=ProvisioningJob.Status.values),
        OpenApiParameter("client", str, description="The client's id."),
    ]
)
class ProvisioningJobViewSet(viewsets.ReadOnlyModelViewSet[ProvisioningJob]):
    """Provisioning jobs (the outbox). NHN staff read them; NHN operators retry failed ones."""

    serializer_class = ProvisioningJobSerializer
    permission_classes = [IsAuthenticated, IsNhnStaff]

    def get_queryset(self) -> QuerySet[ProvisioningJob]:
        queryset = ProvisioningJob.objects.select_related("client__vendor").order_by("-created_at")
        params = self.request.query_params
        if job_status := params.get("status"):
            queryset = queryset.filter(status=job_status)
        if client := params.get("client"):
            try:
                queryset = queryset.filter(client_id=uuid.UUID(client))
            except ValueError:
                raise ValidationError({"client": _("Not a valid id.")}) from None
        return queryset

    @extend_schema(request=None, responses=ProvisioningJobSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str, *args: Any) -> Response:
        job = self.get_object()
        if not is_nhn_operator(request.user):
            raise PermissionDenied(_("Only NHN operators retry provisioning jobs."))
        job = runner.job_retry(job=job, actor=request.user)
        return Response(ProvisioningJobSerializer(self.get_queryset().get(pk=job.pk)).data)


class DataAccessPagination(CursorPaginationReleased):
    """A cursor, newest first: the log grows while it is read, and a page costs no COUNT."""

    ordering = ("-occurred_at", "-id")
    page_size = 100
    page_size_query_param = "limit"


class DataAccessView(generics.GenericAPIView[DataAccessEntry]):
    """The gateway's data-access log: every call through it, passed or refused, newest first,
    with the daily counts (per day, service, client and status class) of the calls selected.
    NHN staff read every kommune's; a kommune's members their kommune's; a vendor's members
    their clients' calls. Times and days are Europe/Oslo."""

    serializer_class = DataAccessEntrySerializer
    pagination_class = DataAccessPagination

    def get_queryset(self) -> QuerySet[DataAccessEntry]:
        return DataAccessEntry.objects.visible_to(self.request.user)

    @extend_schema(
        parameters=[
            OpenApiParameter("kommune", str, description="The kommune's orgnr."),
            OpenApiParameter(
                "client", str, description="A client_id, or the portal's id or name of a client."
            ),
            OpenApiParameter("service", str, description="The service's code, e.g. patient."),
            OpenApiParameter(
                "from",
                str,
                description="ISO 8601 date (the day's start) or date and time, included; default "
                "30 days before `to`.",
            ),
            OpenApiParameter(
                "to",
                str,
                description="ISO 8601 date (included whole) or date and time (excluded); "
                "default now.",
            ),
            OpenApiParameter(
                "refused", bool, description="Only calls the gateway refused, or not."
            ),
            OpenApiParameter("limit", int, description="Rows per page (at most 200)."),
        ],
        responses=DataAccessPageSerializer,
        operation_id="data_access_list",
    )
    def get(self, request: Request) -> Response:
        query = DataAccessQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        wanted = query.validated_data
        start, end = wanted["period"]
        client = wanted.get("client")
        entries = data_access.entries_filter(
            self.get_queryset(),
            kommune=wanted.get("kommune", ""),
            client_ids=data_access.client_ids_named(client) if client else None,
            service=wanted.get("service", ""),
            start=start,
            end=end,
            refused=wanted["refused"],
        )
        page = self.paginate_queryset(entries)
        response = self.get_paginated_response(self.get_serializer(page, many=True).data)
        response.data["from"] = start
        response.data["to"] = end
        response.data["daily"] = DailyCountSerializer(
            data_access.daily_counts(entries), many=True
        ).data
        return response
