from __future__ import annotations

from rest_framework import serializers

from orders.models import ProvisioningJob


class ProvisioningJobSerializer(serializers.ModelSerializer[ProvisioningJob]):
    client = serializers.UUIDField(source="client_id")
    client_id = serializers.CharField(source="client.client_id")
    vendor = serializers.CharField(source="client.vendor.orgnr")
    grant = serializers.UUIDField(source="grant_id", allow_null=True)
    coalesced_into = serializers.UUIDField(source="coalesced_into_id", allow_null=True)

    class Meta:
        model = ProvisioningJob
        fields = [
            "id",
            "client",
            "client_id",
            "vendor",
            "grant",
            "reason",
            "status",
            "attempts",
            "last_error",
            "next_attempt_at",
            "lease_expires_at",
            "coalesced_into",
            "created_at",
            "updated_at",
            "finished_at",
        ]
        read_only_fields = fields
