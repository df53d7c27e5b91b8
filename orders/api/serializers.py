from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orders.models import Environment, Service


class AvailabilitySerializer(serializers.Serializer[Any]):
    environment = serializers.ChoiceField(choices=Environment.choices)
    available_from = serializers.DateField(allow_null=True)
    available = serializers.BooleanField()


class ServiceSerializer(serializers.ModelSerializer[Service]):
    name = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    availability = serializers.SerializerMethodField()

    class Meta:
        model = Service
        fields = [
            "code",
            "name",
            "description",
            "fhir_resource",
            "read_scope",
            "write_scope",
            "readable_by",
            "writable_by",
            "epj_requirement",
            "planned_quarter",
            "availability",
        ]
        read_only_fields = fields

    @extend_schema_field(AvailabilitySerializer(many=True))
    def get_availability(self, service: Service) -> list[dict[str, Any]]:
        today = timezone.localdate()
        return [
            {
                "environment": environment,
                "available_from": service.available_from(environment),
                "available": service.is_available(environment, on=today),
            }
            for environment in Environment.values
        ]
