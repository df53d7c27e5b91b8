from __future__ import annotations

from rest_framework import serializers

from notifications.models import Notification
from notifications.render import absolute, notification_texts


class NotificationSerializer(serializers.ModelSerializer[Notification]):
    """A person's notification, worded in the request's language."""

    kind = serializers.CharField(source="notice.kind", read_only=True)
    organisation = serializers.CharField(source="organisation.orgnr", read_only=True)
    subject = serializers.SerializerMethodField()
    text = serializers.SerializerMethodField()
    link = serializers.SerializerMethodField()
    params = serializers.JSONField(source="notice.params", read_only=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "kind",
            "organisation",
            "subject",
            "text",
            "link",
            "params",
            "created_at",
            "read_at",
            "email_status",
        ]
        read_only_fields = fields

    def get_subject(self, notification: Notification) -> str:
        return notification_texts(notification).subject

    def get_text(self, notification: Notification) -> str:
        return notification_texts(notification).body

    def get_link(self, notification: Notification) -> str:
        return absolute(notification.link)
