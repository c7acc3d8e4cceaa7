from rest_framework import serializers

from apps.core.serializers import InputSerializer

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
