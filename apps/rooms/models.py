from datetime import timedelta

from django.db import models


class Room(models.Model):
    """A LiveKit room RTCstack knows of: created through the API or learned from LiveKit's webhooks."""

    class Origin(models.TextChoices):
        API = "api", "Created through the API"
        WEBHOOK = "webhook", "Learned from a LiveKit webhook"

    name = models.CharField("room ID", max_length=256, unique=True, help_text="LiveKit's room name.")
    sid = models.CharField("LiveKit SID", max_length=64, blank=True, help_text="Of the latest session.")
    origin = models.CharField(max_length=16, choices=Origin.choices)
    max_participants = models.PositiveIntegerField(null=True, blank=True)
    empty_timeout = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds.")
    metadata = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class RoomSession(models.Model):
    """One run of a room in LiveKit, from room_started to room_finished."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="sessions")
    sid = models.CharField("LiveKit SID", max_length=64, unique=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    peak_participants = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["room", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.room.name} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def duration(self) -> timedelta | None:
        return self.ended_at - self.started_at if self.ended_at else None


class ParticipantSession(models.Model):
    """One participant's presence in one room session, from participant_joined to participant_left."""

    session = models.ForeignKey(RoomSession, on_delete=models.CASCADE, related_name="participants")
    identity = models.CharField(max_length=256)
    name = models.CharField(max_length=256, blank=True)
    sid = models.CharField("LiveKit SID", max_length=64)
    joined_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["joined_at"]
        constraints = [models.UniqueConstraint(fields=["session", "sid"], name="unique_participant_sid_per_session")]

    def __str__(self) -> str:
        return self.identity


class LiveKitEvent(models.Model):
    """Ids of LiveKit webhook events already handled: LiveKit retries, so each is applied once."""

    event_id = models.CharField(max_length=128, unique=True)
    event = models.CharField(max_length=64)
    room_name = models.CharField(max_length=256, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = "LiveKit event"

    def __str__(self) -> str:
        return f"{self.event} {self.event_id}"
