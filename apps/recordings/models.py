import secrets

from django.db import models


def new_recording_id() -> str:
    return "rec_" + secrets.token_hex(12)


class Recording(models.Model):
    """A recording file: made by LiveKit egress, uploaded, or registered from existing storage."""

    class Status(models.TextChoices):
        STARTING = "starting"
        RECORDING = "recording"
        ENDING = "ending"
        COMPLETED = "completed"
        FAILED = "failed"

    class Source(models.TextChoices):
        EGRESS = "egress", "LiveKit egress"
        UPLOAD = "upload", "Uploaded"
        REGISTERED = "registered", "Registered from storage"

    ACTIVE_STATUSES = (Status.STARTING, Status.RECORDING, Status.ENDING)

    id = models.CharField(primary_key=True, max_length=32, default=new_recording_id, editable=False)
    room_name = models.CharField("room ID", max_length=256, blank=True, db_index=True)
    egress_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    audio_only = models.BooleanField(default=False)
    auto_transcribe = models.BooleanField(
        default=False, help_text="Queue a post-call transcription when the file is complete."
    )
    storage_key = models.CharField(max_length=1024, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one egress recording in flight per room: start is idempotent.
            models.UniqueConstraint(
                fields=["room_name"],
                condition=models.Q(status__in=["starting", "recording", "ending"], source="egress"),
                name="one_active_recording_per_room",
            )
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES
