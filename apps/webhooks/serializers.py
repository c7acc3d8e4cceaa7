from rest_framework import serializers

from apps.core.serializers import BlankAsNullCharField, InputSerializer, UtcDateTimeField

from . import services, targets
from .models import DeliveryStatus, Event, WebhookEndpoint

EVENTS_HELP = "Event types to receive; '*' for every event."


def validate_target_url(value: str) -> str:
    """Syntax and address check; a refused or unresolvable host is a 400 naming the reason."""
    try:
        targets.check_url(value)
    except (targets.InvalidTargetError, targets.UnresolvableTargetError) as exc:
        raise serializers.ValidationError(str(exc)) from exc
    return value


def validate_event_list(value: list[str]) -> list[str]:
    try:
        return services.validate_events(value)
    except ValueError as exc:
        raise serializers.ValidationError(str(exc)) from exc


class WebhookCreateSerializer(InputSerializer):
    url = serializers.CharField(max_length=2000, help_text="http(s) URL; must resolve to a public address.")
    events = serializers.ListField(child=serializers.ChoiceField(choices=Event.values), help_text=EVENTS_HELP)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    active = serializers.BooleanField(required=False, default=True)

    def validate_url(self, value: str) -> str:
        return validate_target_url(value)

    def validate_events(self, value: list[str]) -> list[str]:
        return validate_event_list(value)


class WebhookUpdateSerializer(InputSerializer):
    """PATCH: every field optional; only those sent change."""

    url = serializers.CharField(max_length=2000, required=False)
    events = serializers.ListField(child=serializers.ChoiceField(choices=Event.values), required=False)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    active = serializers.BooleanField(required=False)

    def validate_url(self, value: str) -> str:
        return validate_target_url(value)

    def validate_events(self, value: list[str]) -> list[str]:
        return validate_event_list(value)


class DeliveryQuerySerializer(InputSerializer):
    status = serializers.ChoiceField(choices=DeliveryStatus.values, required=False)


# Response shapes: each serializer renders its model and is the schema of that shape (docstrings are published).
class WebhookSerializer(serializers.Serializer):
    """A webhook endpoint."""

    id = serializers.CharField(source="public_id", help_text="Public ID, e.g. wh_3f0c…")
    url = serializers.CharField()
    description = serializers.CharField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=Event.values))
    active = serializers.BooleanField()
    createdAt = UtcDateTimeField(source="created_at")


class WebhookWithSecretSerializer(WebhookSerializer):
    """A webhook endpoint and its signing secret."""

    # The plain secret is not stored: the view passes it as context["secret"].
    secret = serializers.SerializerMethodField(help_text="whsec_…: shown in this response only; store it now.")

    def get_secret(self, endpoint: WebhookEndpoint) -> str:
        return self.context["secret"]


class DeliverySerializer(serializers.Serializer):
    """One delivery of an event to an endpoint, as its latest attempt left it."""

    id = serializers.CharField(source="public_id", help_text="Also the webhook-id header of every attempt.")
    event = serializers.CharField()
    status = serializers.ChoiceField(choices=DeliveryStatus.values)
    attempts = serializers.IntegerField()
    responseCode = serializers.IntegerField(source="last_response_code", allow_null=True)
    durationMs = serializers.IntegerField(source="last_duration_ms", allow_null=True)
    error = BlankAsNullCharField(source="last_error")
    createdAt = UtcDateTimeField(source="created_at")
    nextAttemptAt = UtcDateTimeField(source="next_attempt_at", allow_null=True)


class TestQueuedSerializer(serializers.Serializer):
    """The queued `test` event."""

    deliveryId = serializers.CharField(source="public_id")
    status = serializers.CharField()
