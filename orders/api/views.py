from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import viewsets

from orders.api.serializers import ServiceSerializer
from orders.models import Service


class ServiceViewSet(viewsets.ReadOnlyModelViewSet[Service]):
    """The service catalogue, for any logged-in person. Services are named by code."""

    serializer_class = ServiceSerializer
    lookup_field = "code"
    pagination_class = None  # nine services; the catalogue is one document

    def get_queryset(self) -> QuerySet[Service]:
        return Service.objects.with_availability()
