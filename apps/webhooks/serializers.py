from typing import Any

from rest_framework import serializers

from apps.core.codecs import iso_utc
from apps.core.serializers import InputSerializer

from . import services, targets
from .models import DeliveryStatus, Event, WebhookDelivery, WebhookEndpoint

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


def render_endpoint(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.public_id,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "active": endpoint.active,
        "createdAt": iso_utc(endpoint.created_at),
    }


def render_delivery(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": delivery.public_id,
        "event": delivery.event,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "responseCode": delivery.last_response_code,
        "durationMs": delivery.last_duration_ms,
        "error": delivery.last_error or None,
        "createdAt": iso_utc(delivery.created_at),
        "nextAttemptAt": iso_utc(delivery.next_attempt_at),
    }


# Response documentation only (the views render with the functions above).


class WebhookSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Public ID, e.g. wh_3f0c…")
    url = serializers.CharField()
    description = serializers.CharField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=Event.values))
    active = serializers.BooleanField()
    createdAt = serializers.DateTimeField()


class WebhookWithSecretSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="whsec_…: shown in this response only; store it now.")


class DeliverySerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Also the webhook-id header of every attempt.")
    event = serializers.CharField()
    status = serializers.ChoiceField(choices=DeliveryStatus.values)
    attempts = serializers.IntegerField()
    responseCode = serializers.IntegerField(allow_null=True)
    durationMs = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    createdAt = serializers.DateTimeField()
    nextAttemptAt = serializers.DateTimeField(allow_null=True)


class TestQueuedSerializer(serializers.Serializer):
    deliveryId = serializers.CharField()
    status = serializers.CharField()
