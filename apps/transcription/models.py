import secrets

from django.db import models


def new_transcription_id() -> str:
    return "tr_" + secrets.token_hex(12)


class Transcription(models.Model):
    """A transcript of a recording (post-call) or of a call as it happens (live)."""

    class Kind(models.TextChoices):
        POST_CALL = "post_call", "Post-call"
        LIVE = "live", "Live"

    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        COMPLETED = "completed"
        FAILED = "failed"
        ACTIVE = "active"
        STOPPED = "stopped"

    id = models.CharField(primary_key=True, max_length=32, default=new_transcription_id, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    room_name = models.CharField("room ID", max_length=256, blank=True, db_index=True)
    recording = models.ForeignKey(
        "recordings.Recording", null=True, blank=True, on_delete=models.SET_NULL, related_name="transcriptions"
    )
    language = models.CharField(max_length=16, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Post-call jobs: when a queued job is due (its first run, or a retry after a transient failure), and how
    # long the worker running it holds it (renewed by a heartbeat). The sweep re-queues jobs past either.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField("completed or stopped at", null=True, blank=True)
    # Live sessions only: identity → display name, whether the agent sends partial results, its dispatch.
    speakers = models.JSONField(default=dict, blank=True)
    partial_results = models.BooleanField(default=False)
    dispatch_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-queued_at"]
        permissions = [("view_live_transcript", "Can follow live calls and search transcripts on the dashboard")]
        constraints = [
            # One live transcription at a time per room: start is idempotent.
            models.UniqueConstraint(
                fields=["room_name"],
                condition=models.Q(kind="live", status="active"),
                name="one_active_live_transcription_per_room",
            )
        ]

    def __str__(self) -> str:
        return self.id


class Segment(models.Model):
    """One timed piece of a transcript; times are milliseconds from the start of the audio."""

    transcription = models.ForeignKey(Transcription, on_delete=models.CASCADE, related_name="segments")
    start_ms = models.PositiveIntegerField()
    end_ms = models.PositiveIntegerField()
    text = models.TextField()
    speaker_id = models.CharField(max_length=256, blank=True)
    speaker = models.CharField(max_length=256, blank=True)
    # The agent's id for a live segment: redelivered stream entries must not be stored twice.
    segment_key = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["start_ms", "id"]
        indexes = [models.Index(fields=["transcription", "start_ms"])]
        constraints = [
            models.UniqueConstraint(
                fields=["transcription", "segment_key"],
                condition=~models.Q(segment_key=""),
                name="unique_live_segment",
            )
        ]

    def __str__(self) -> str:
        return self.text[:60]


class LiveDeadLetter(models.Model):
    """A live segment entry PostgreSQL could not store, moved aside so its room's other lines go on being stored.

    Kept for an operator to read (and fix by hand, or delete) in the admin; nothing retries it.
    """

    room_name = models.CharField("room ID", max_length=256, db_index=True)
    transcription_id = models.CharField(max_length=64, blank=True)
    entry_id = models.CharField("stream entry ID", max_length=64)
    fields = models.TextField(help_text="The stream entry as JSON.")
    error = models.TextField()
    created_at = models.DateTimeField("moved aside at", auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "live dead letter"

    def __str__(self) -> str:
        return f"{self.room_name} {self.entry_id}"
