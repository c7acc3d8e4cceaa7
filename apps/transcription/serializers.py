from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.serializers import BlankAsNullCharField, InputSerializer, UtcDateTimeField
from speech.engine import normalise_language

from .models import Segment, Transcription

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


# Response shapes: each serializer renders its model and is the schema of that shape (docstrings are published).
class SegmentSerializer(serializers.Serializer):
    """A transcript segment; speakerId and speaker are absent while the speaker is unknown."""

    startMs = serializers.IntegerField(source="start_ms")
    endMs = serializers.IntegerField(source="end_ms")
    text = serializers.CharField()
    speakerId = serializers.CharField(source="speaker_id", required=False)
    speaker = serializers.CharField(required=False)

    def to_representation(self, segment: Segment) -> dict[str, Any]:
        body = super().to_representation(segment)
        if not segment.speaker_id:
            del body["speakerId"], body["speaker"]
        return body


class LiveSegmentSerializer(SegmentSerializer):
    """A segment of a live transcript."""

    # The one live segment shape: the live API's, and the dashboard's (apps.dashboard.events adds segmentId).

    seq = serializers.IntegerField(source="pk", help_text="Storage order; the highest one seen is the next `since`.")


class TranscriptionSummarySerializer(serializers.Serializer):
    """A transcription without its segments."""

    transcriptionId = serializers.CharField(source="id")
    type = serializers.ChoiceField(source="kind", choices=Transcription.Kind.choices)
    status = serializers.ChoiceField(choices=Transcription.Status.choices)
    roomId = serializers.CharField(source="room_name")
    recordingId = serializers.CharField(source="recording_id", allow_null=True)
    language = BlankAsNullCharField()
    duration = serializers.FloatField(source="duration_seconds", allow_null=True)
    error = BlankAsNullCharField()
    queuedAt = UtcDateTimeField(source="queued_at")
    startedAt = UtcDateTimeField(source="started_at", allow_null=True)
    completedAt = UtcDateTimeField(source="completed_at", allow_null=True)


class TranscriptionSerializer(TranscriptionSummarySerializer):
    """A transcription and its segments."""

    # Prefetch `segments`: they are read twice.

    segments = SegmentSerializer(many=True)
    text = serializers.SerializerMethodField()

    def get_text(self, transcription: Transcription) -> str:
        return " ".join(segment.text for segment in transcription.segments.all())


class QueuedSerializer(serializers.Serializer):
    transcriptionId = serializers.CharField(source="id")
    recordingId = serializers.CharField(source="recording_id")
    status = serializers.CharField()
    queuedAt = UtcDateTimeField(source="queued_at")


class LiveStartedSerializer(serializers.Serializer):
    """A live transcription session."""

    transcriptionId = serializers.CharField(source="id")
    roomId = serializers.CharField(source="room_name")
    status = serializers.CharField()
    language = BlankAsNullCharField()
    startedAt = UtcDateTimeField(source="started_at")
    partialResults = serializers.BooleanField(source="partial_results")
    speakers = serializers.DictField(child=serializers.CharField())


class LiveSessionSerializer(LiveStartedSerializer):
    """A live transcription session and when it stopped."""

    stoppedAt = UtcDateTimeField(source="completed_at", allow_null=True)


class LiveStoppedSerializer(serializers.Serializer):
    transcriptionId = serializers.CharField(source="id")
    status = serializers.CharField()
    stoppedAt = UtcDateTimeField(source="completed_at")
    segmentCount = serializers.SerializerMethodField(method_name="get_segment_count")

    def get_segment_count(self, transcription: Transcription) -> int:
        return transcription.segments.count()


class LiveTranscriptSerializer(LiveSessionSerializer):
    """A live transcription session and its transcript so far (after `since`, if given)."""

    # Renders the session with context["segments"], those stored after the cursor context["since"] (None: all).

    segments = serializers.SerializerMethodField()
    text = serializers.SerializerMethodField()
    cursor = serializers.SerializerMethodField(help_text="Pass as `since` to get only newer segments.")

    @extend_schema_field(LiveSegmentSerializer(many=True))
    def get_segments(self, transcription: Transcription) -> list[dict[str, Any]]:
        return LiveSegmentSerializer(self.context["segments"], many=True).data

    def get_text(self, transcription: Transcription) -> str:
        return " ".join(segment.text for segment in self.context["segments"])

    def get_cursor(self, transcription: Transcription) -> int | None:
        return max((segment.pk for segment in self.context["segments"]), default=self.context["since"])
