from django.conf import settings
from django.db import models


class Scope(models.TextChoices):
    TOKEN = "token", "Tokens"
    ROOMS = "rooms", "Rooms and participants"
    RECORDINGS = "recordings", "Recordings"
    TRANSCRIPTION = "transcription", "Transcription"
    WEBHOOKS = "webhooks", "Webhooks"
    ALL = "all", "All endpoints"


def default_scopes() -> list[str]:
    return [Scope.ALL.value]


def default_rate_limit() -> int:
    return settings.API_KEY_DEFAULT_RATE_LIMIT


class ApiKey(models.Model):
    """A credential an app backend signs /v1 requests with. The secret is stored encrypted only."""

    key_id = models.CharField("key ID", max_length=64, unique=True, help_text="Public; sent as X-Api-Key.")
    name = models.CharField(max_length=200, help_text="Who or what uses this key.")
    secret_encrypted = models.TextField(editable=False)
    scopes = models.JSONField(default=default_scopes)
    active = models.BooleanField(default=True, help_text="Unticked: every request with this key is refused.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    rate_limit_per_minute = models.PositiveIntegerField(
        default=default_rate_limit, help_text="Requests per minute for this key; 0 means no limit."
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"
