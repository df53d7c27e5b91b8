"""The provisioning queue, for NHN's operators: what waits, what failed and why, and `retry`."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from orders.models import ProvisioningJob
from provisioning import runner
from provisioning.api.serializers import ProvisioningJobSerializer
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
