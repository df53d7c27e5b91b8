from __future__ import annotations

from rest_framework import serializers

from audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.CharField(source="actor_label")
    organisation = serializers.CharField(source="organisation_orgnr")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "occurred_at",
            "actor",
            "organisation",
            "action",
            "object_type",
            "object_id",
            "before",
            "after",
            "request_id",
        ]
        read_only_fields = fields
