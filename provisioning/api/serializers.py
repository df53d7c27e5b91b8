from __future__ import annotations

import datetime
import re
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from orders.models import ProvisioningJob, Service
from provisioning import data_access
from provisioning.models import DataAccessEntry


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


DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class MomentField(serializers.Field):  # type: ignore[type-arg]
    """An ISO 8601 date (``2026-11-30``: the whole local day) or date and time (naive: local
    time). Gives ``(moment, is_date)``."""

    default_error_messages = {
        "invalid": gettext_lazy("Not an ISO 8601 date or date and time: %(value)s."),
    }

    def to_internal_value(self, data: Any) -> tuple[datetime.datetime, bool]:
        text = str(data).strip()
        moment = day = None
        try:
            # A date alone is a whole day (parse_datetime would read it as its midnight).
            if DATE.fullmatch(text):
                day = parse_date(text)
            else:
                moment = parse_datetime(text)
        except ValueError:
            pass
        if moment is not None:
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment)
            return moment, False
        if day is not None:
            return data_access.day_start(day), True
        self.fail("invalid", value=text[:40])
        raise AssertionError  # fail raises

    def to_representation(self, value: Any) -> Any:
        return value


class DataAccessQuerySerializer(serializers.Serializer[Any]):
    """The filters of ``GET /api/v1/data-access/``."""

    kommune = serializers.RegexField(
        r"^[0-9]{9}$",
        required=False,
        error_messages={"invalid": gettext_lazy("A kommune's orgnr has 9 digits.")},
    )
    client = serializers.CharField(max_length=200, required=False)
    service = serializers.SlugField(max_length=50, required=False)
    start = MomentField(required=False)
    end = MomentField(required=False)
    refused = serializers.BooleanField(required=False, allow_null=True, default=None)

    def get_fields(self) -> dict[str, serializers.Field]:  # type: ignore[type-arg]
        # "from" is a Python keyword: the fields are renamed here, not declared so.
        fields = super().get_fields()
        fields["from"] = fields.pop("start")
        fields["to"] = fields.pop("end")
        return fields

    def validate_service(self, value: str) -> str:
        if not Service.objects.filter(code=value).exists():
            raise serializers.ValidationError(
                gettext_lazy("No service of the catalogue has the code %(code)s.") % {"code": value}
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("from"), attrs.get("to")
        end_at = None
        if end is not None:
            moment, whole_day = end
            end_at = moment + datetime.timedelta(days=1) if whole_day else moment
        start_at = start[0] if start is not None else None
        attrs["period"] = data_access.period(start_at, end_at)
        if start_at is not None and end_at is not None and end_at <= start_at:
            raise serializers.ValidationError(
                {"to": [gettext_lazy("The end (to) must come after the start (from).")]}
            )
        return attrs


class DataAccessEntrySerializer(serializers.ModelSerializer[DataAccessEntry]):
    class Meta:
        model = DataAccessEntry
        fields = [
            "id",
            "occurred_at",
            "client_id",
            "kommune",
            "service",
            "access",
            "environment",
            "method",
            "path",
            "status",
            "duration_ms",
            "refused",
        ]
        read_only_fields = fields


class DailyCountSerializer(serializers.Serializer[Any]):
    day = serializers.DateField()
    service = serializers.CharField(help_text="The service's code; empty before one was known.")
    client_id = serializers.CharField(help_text="Empty when no valid token named one.")
    status_class = serializers.CharField(help_text="2xx, 3xx, 4xx or 5xx.")
    calls = serializers.IntegerField()
    refused = serializers.IntegerField(help_text="Of the calls, those the gateway refused.")


class DataAccessPageSerializer(serializers.Serializer[Any]):
    """A page of calls, newest first, and the daily counts of every call the filters select."""

    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = DataAccessEntrySerializer(many=True)
    start = serializers.DateTimeField(help_text="The period's start (included).")
    end = serializers.DateTimeField(help_text="The period's end (excluded).")
    daily = DailyCountSerializer(many=True)

    def get_fields(self) -> dict[str, serializers.Field]:  # type: ignore[type-arg]
        fields = super().get_fields()
        fields["from"] = fields.pop("start")
        fields["to"] = fields.pop("end")
        return fields
