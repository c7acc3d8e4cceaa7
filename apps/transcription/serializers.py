from typing import Any

from rest_framework import serializers

from apps.core.serializers import InputSerializer
from speech.engine import normalise_language

from .models import Transcription

OUTPUT_FORMATS = ["json", "text", "srt", "vtt"]


class TranscribeSerializer(InputSerializer):
    language = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=16,
        help_text="ISO code (en-US is read as en) or auto; default STT_LANGUAGE.",
    )


class TranscriptionFilterSerializer(InputSerializer):
    roomId = serializers.CharField(required=False, max_length=256)
    recordingId = serializers.CharField(required=False, max_length=32)
    type = serializers.ChoiceField(required=False, choices=Transcription.Kind.choices)
    status = serializers.ChoiceField(required=False, choices=Transcription.Status.choices)


class FormatSerializer(InputSerializer):
    format = serializers.ChoiceField(choices=OUTPUT_FORMATS, default="json")


# Response shapes, for the OpenAPI schema (services.transcription_json builds the JSON).
class SegmentSerializer(serializers.Serializer):
    startMs = serializers.IntegerField()
    endMs = serializers.IntegerField()
    text = serializers.CharField()
    speakerId = serializers.CharField(required=False)
    speaker = serializers.CharField(required=False)


class TranscriptionSummarySerializer(serializers.Serializer):
    transcriptionId = serializers.CharField()
    type = serializers.ChoiceField(choices=Transcription.Kind.choices)
    status = serializers.ChoiceField(choices=Transcription.Status.choices)
    roomId = serializers.CharField()
    recordingId = serializers.CharField(allow_null=True)
    language = serializers.CharField(allow_null=True)
    duration = serializers.FloatField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    queuedAt = serializers.DateTimeField()
    startedAt = serializers.DateTimeField(allow_null=True)
    completedAt = serializers.DateTimeField(allow_null=True)


class TranscriptionSerializer(TranscriptionSummarySerializer):
    segments = SegmentSerializer(many=True)
    text = serializers.CharField()


class QueuedSerializer(serializers.Serializer):
    transcriptionId = serializers.CharField()
    recordingId = serializers.CharField()
    status = serializers.CharField()
    queuedAt = serializers.DateTimeField()


def _valid_language(value: str) -> str:
    """A known code, "auto" (detect), or "" (the agent's default)."""
    try:
        return normalise_language(value) or ("auto" if value.strip() else "")
    except ValueError as error:
        raise serializers.ValidationError(str(error)) from error


class LiveOptionsSerializer(serializers.Serializer):
    partialResults = serializers.BooleanField(
        default=False, help_text="Also publish transcript_partial messages while someone speaks."
    )


class SpeakerNamesField(serializers.DictField):
    """Identity → display name. Keys are checked like the names: jsonb and LiveKit refuse a NUL, and both are stored."""

    child = serializers.CharField(max_length=256)

    def to_internal_value(self, data: Any) -> dict[str, str]:
        names = super().to_internal_value(data)
        for identity in names:
            if not identity or len(identity) > 256 or "\x00" in identity:
                raise serializers.ValidationError("Identities must be 1 to 256 characters with no NUL.")
        return names


class StartLiveSerializer(serializers.Serializer):
    language = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=16,
        help_text="ISO code (en-US is read as en) or auto; default: the agent's STT_LANGUAGE.",
    )
    participants = SpeakerNamesField(
        required=False, help_text="Participant identity → display name shown in transcripts."
    )
    options = LiveOptionsSerializer(required=False)

    def validate_language(self, value: str) -> str:
        return _valid_language(value)


class SpeakersSerializer(serializers.Serializer):
    participants = SpeakerNamesField(
        allow_empty=False, help_text="Participant identity → display name; merged into the current names."
    )


class LiveQuerySerializer(FormatSerializer):
    since = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=2**63 - 1,
        help_text="A `cursor` from an earlier response: only segments stored after it.",
    )


# Response shapes of the live endpoints, for the OpenAPI schema (live views build the JSON).
class LiveSegmentSerializer(SegmentSerializer):
    seq = serializers.IntegerField(help_text="Storage order; the highest one seen is the next `since`.")


class LiveStartedSerializer(serializers.Serializer):
    transcriptionId = serializers.CharField()
    roomId = serializers.CharField()
    status = serializers.CharField()
    language = serializers.CharField(allow_null=True)
    startedAt = serializers.DateTimeField()
    partialResults = serializers.BooleanField()
    speakers = serializers.DictField(child=serializers.CharField())


class LiveStoppedSerializer(serializers.Serializer):
    transcriptionId = serializers.CharField()
    status = serializers.CharField()
    stoppedAt = serializers.DateTimeField()
    segmentCount = serializers.IntegerField()


class LiveTranscriptSerializer(LiveStartedSerializer):
    stoppedAt = serializers.DateTimeField(allow_null=True)
    segments = LiveSegmentSerializer(many=True)
    text = serializers.CharField()
    cursor = serializers.IntegerField(allow_null=True, help_text="Pass as `since` to get only newer segments.")
