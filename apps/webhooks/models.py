"""Outgoing webhooks: where events go (endpoints), what was sent (deliveries) and each try (attempts)."""

from django.db import models


class Event(models.TextChoices):
    """Events an endpoint can subscribe to; `*` means every event."""

    ROOM_STARTED = "room_started", "Room started"
    ROOM_FINISHED = "room_finished", "Room finished"
    PARTICIPANT_JOINED = "participant_joined", "Participant joined"
    PARTICIPANT_LEFT = "participant_left", "Participant left"
    RECORDING_STARTED = "recording_started", "Recording started"
    RECORDING_FINISHED = "recording_finished", "Recording finished"
    TRANSCRIPTION_COMPLETED = "transcription_completed", "Transcription completed"
    TRANSCRIPTION_FAILED = "transcription_failed", "Transcription failed"
    ALL = "*", "Every event"


# Sent only by the test endpoint (POST /v1/webhooks/{id}/test); nobody subscribes to it.
TEST_EVENT = "test"


class WebhookEndpoint(models.Model):
    """A receiver URL and the events it wants. The signing secret is stored encrypted only."""

    public_id = models.CharField("ID", max_length=64, unique=True, editable=False)
    url = models.CharField("URL", max_length=2000, help_text="http(s) URL that receives a POST per event.")
    description = models.CharField(max_length=500, blank=True)
    events = models.JSONField(default=list, help_text="Event types to send; '*' sends every event.")
    active = models.BooleanField(default=True, help_text="Unticked: no new deliveries, pending ones fail.")
    secret_encrypted = models.TextField(editable=False)
    secret_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "webhook endpoint"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.url} ({self.public_id})"

    def wants(self, event: str) -> bool:
        return Event.ALL in self.events or event in self.events


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)


class WebhookDelivery(models.Model):
    """One event for one endpoint. `body` holds the exact bytes sent, so every retry is byte-identical."""

    public_id = models.CharField("ID", max_length=64, unique=True, editable=False, help_text="The webhook-id header.")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    body = models.TextField(help_text="The JSON body, exactly as sent on every attempt.")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts made so far, redeliveries included.")
    # Attempts made before the last redelivery: the retry schedule restarts from here.
    round_start = models.PositiveIntegerField(default=0, editable=False)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set while a worker is sending; lets a re-run of a crashed attempt tell "in progress" from "died".
    sending_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["endpoint", "-created_at"]), models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint.url} ({self.public_id})"


class WebhookAttempt(models.Model):
    """One HTTP POST of a delivery (or the reason it was not sent)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)

    class Meta:
        ordering = ["number", "id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery.public_id}"
