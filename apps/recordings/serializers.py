from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.serializers import BlankAsNullCharField, InputSerializer, UtcDateTimeField

from .models import Recording
from .storage import download_url


class StartRecordingSerializer(InputSerializer):
    audioOnly = serializers.BooleanField(default=False, help_text="Record the room's audio only (OGG).")
    autoTranscribe = serializers.BooleanField(
        default=False,
        help_text="Transcribe the recording when it is complete (AUTO_TRANSCRIBE_RECORDINGS does it for all).",
    )


class RecordingFilterSerializer(InputSerializer):
    roomId = serializers.CharField(required=False, max_length=256)
    status = serializers.ChoiceField(required=False, choices=Recording.Status.choices)


class RegisterRecordingSerializer(InputSerializer):
    """Either `file` (multipart upload) or `storageKey` (an object already in the bucket)."""

    roomId = serializers.CharField(required=False, allow_blank=True, max_length=256, default="")
    storageKey = serializers.CharField(required=False, max_length=1024)
    duration = serializers.FloatField(required=False, min_value=0, help_text="Seconds, if known.")
    file = serializers.FileField(required=False)

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("file")) == bool(attrs.get("storageKey")):
            raise serializers.ValidationError("Send either a file (multipart) or a storageKey, not both.")
        return attrs


# Response shapes: each serializer renders its model and is the schema of that shape (docstrings are published).
class RecordingSerializer(serializers.Serializer):
    """A recording."""

    # The download link is made for context["host"], the request's origin ("" outside a request).
    recordingId = serializers.CharField(source="id")
    roomId = serializers.CharField(source="room_name")
    egressId = serializers.CharField(source="egress_id", allow_null=True)
    source = serializers.ChoiceField(choices=Recording.Source.choices)
    status = serializers.CharField(
        help_text="starting, recording, ending, completed, failed (already_recording on start)"
    )
    audioOnly = serializers.BooleanField(source="audio_only")
    autoTranscribe = serializers.BooleanField(source="auto_transcribe")
    storageKey = serializers.CharField(source="storage_key")
    size = serializers.IntegerField(source="size_bytes", allow_null=True, help_text="Bytes.")
    duration = serializers.FloatField(source="duration_seconds", allow_null=True, help_text="Seconds.")
    error = BlankAsNullCharField()
    startedAt = UtcDateTimeField(source="started_at", allow_null=True)
    endedAt = UtcDateTimeField(source="ended_at", allow_null=True)
    createdAt = UtcDateTimeField(source="created_at")
    downloadUrl = serializers.SerializerMethodField(
        method_name="get_download_url", help_text="Short-lived; present once completed."
    )

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, recording: Recording) -> str | None:
        if recording.status == Recording.Status.COMPLETED and recording.storage_key:
            return download_url(recording.storage_key, self.context.get("host", ""))
        return None


class RoomRecordingStatusSerializer(serializers.Serializer):
    """Whether the room is being recorded, and by which recording."""

    # Renders {"recording": the room's active Recording or None}.
    isRecording = serializers.SerializerMethodField(method_name="get_is_recording")
    recordingId = serializers.CharField(source="recording.id", allow_null=True)
    egressId = serializers.CharField(source="recording.egress_id", allow_null=True)
    startedAt = UtcDateTimeField(source="recording.started_at", allow_null=True)

    def get_is_recording(self, status: dict[str, Recording | None]) -> bool:
        return status["recording"] is not None


class DeletedRecordingSerializer(serializers.Serializer):
    recordingId = serializers.CharField()
    deleted = serializers.BooleanField()
