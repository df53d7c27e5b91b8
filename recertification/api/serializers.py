"""The recertification API's shapes: organisations by orgnr, services by code."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tenants.validators import validate_orgnr

STATES = [
    ("current", "current"),
    ("due", "due"),
    ("lapsed", "lapsed"),
]


class RecertificationGrantSerializer(serializers.Serializer[Any]):
    """One live grant of the vendor in the kommune, and the day it lapses."""

    id = serializers.UUIDField(source="grant.pk")
    client = serializers.UUIDField(source="grant.client_id", help_text="The client's id.")
    client_name = serializers.CharField(source="grant.client.name")
    environment = serializers.CharField(source="grant.client.environment")
    service = serializers.CharField(source="grant.service.code")
    access = serializers.CharField(source="grant.access")
    status = serializers.CharField(source="grant.status")
    approved_at = serializers.DateTimeField(
        source="grant.created_at", help_text="When it was approved: its clock's first start."
    )
    lapses_on = serializers.DateField(
        help_text="The day it is revoked unless the kommune confirms the vendor before."
    )


class RecertificationSerializer(serializers.Serializer[Any]):
    """A vendor's live access in a kommune: when the kommune last confirmed it, and when it
    lapses."""

    kommune = serializers.CharField(source="kommune.orgnr")
    kommune_name = serializers.CharField(source="kommune.name")
    vendor = serializers.CharField(source="vendor.orgnr")
    vendor_name = serializers.CharField(source="vendor.name")
    confirmed_at = serializers.DateTimeField(
        allow_null=True, help_text="The kommune's last confirmation (null: never)."
    )
    confirmed_by = serializers.CharField(source="confirmed_by_name", allow_blank=True)
    lapses_on = serializers.DateField(
        help_text="The day its first grant lapses unless the kommune confirms the vendor before."
    )
    days_left = serializers.IntegerField()
    state = serializers.ChoiceField(
        choices=STATES,
        help_text="`due` within the first reminder's days, `lapsed` on its lapse day or after "
        "(the daily check revokes it), `current` otherwise.",
    )
    grants = RecertificationGrantSerializer(many=True)


class RecertificationConfirmSerializer(serializers.Serializer[Any]):
    kommune = serializers.CharField(max_length=9, validators=[validate_orgnr])
    vendor = serializers.CharField(max_length=9, validators=[validate_orgnr])
    not_confirmed = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        default=list,
        max_length=1000,
        help_text="Ids of the vendor's grants to revoke instead of confirming them.",
    )


class RecertificationConfirmedSerializer(serializers.Serializer[Any]):
    kommune = serializers.CharField(source="recertification.kommune.orgnr")
    vendor = serializers.CharField(source="recertification.vendor.orgnr")
    confirmed_at = serializers.DateTimeField(source="recertification.confirmed_at")
    lapses_on = serializers.DateField(
        help_text="The day the confirmed access lapses next, unless confirmed again before."
    )
    confirmed = serializers.ListField(
        child=serializers.UUIDField(),
        source="confirmed_ids",
        help_text="The grants confirmed: their clocks start again.",
    )
    not_confirmed = serializers.ListField(
        child=serializers.UUIDField(),
        source="revoked_ids",
        help_text="The grants revoked instead (through provisioning).",
    )
