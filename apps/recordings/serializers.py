from rest_framework import serializers

from apps.core.serializers import InputSerializer

from .models import Recording


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


# Response shapes, for the OpenAPI schema (services.recording_json builds the JSON).
class RecordingSerializer(serializers.Serializer):
    recordingId = serializers.CharField()
    roomId = serializers.CharField()
    egressId = serializers.CharField(allow_null=True)
    source = serializers.ChoiceField(choices=Recording.Source.choices)
    status = serializers.CharField(
        help_text="starting, recording, ending, completed, failed (already_recording on start)"
    )
    audioOnly = serializers.BooleanField()
    autoTranscribe = serializers.BooleanField()
    storageKey = serializers.CharField()
    size = serializers.IntegerField(allow_null=True, help_text="Bytes.")
    duration = serializers.FloatField(allow_null=True, help_text="Seconds.")
    error = serializers.CharField(allow_null=True)
    startedAt = serializers.DateTimeField(allow_null=True)
    endedAt = serializers.DateTimeField(allow_null=True)
    createdAt = serializers.DateTimeField()
    downloadUrl = serializers.URLField(allow_null=True, help_text="Short-lived; present once completed.")


class RoomRecordingStatusSerializer(serializers.Serializer):
    isRecording = serializers.BooleanField()
    recordingId = serializers.CharField(allow_null=True)
    egressId = serializers.CharField(allow_null=True)
    startedAt = serializers.DateTimeField(allow_null=True)


class DeletedRecordingSerializer(serializers.Serializer):
    recordingId = serializers.CharField()
    deleted = serializers.BooleanField()
