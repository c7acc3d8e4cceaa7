from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.apikeys.models import Scope
from apps.core.pagination import PageQuerySerializer, page_schema, paginate
from apps.core.problems import get_or_404
from apps.core.schema import problems
from apps.recordings.services import get_recording

from . import live, services
from .models import Transcription
from .serializers import (
    FormatSerializer,
    LiveQuerySerializer,
    LiveStartedSerializer,
    LiveStoppedSerializer,
    LiveTranscriptSerializer,
    QueuedSerializer,
    SpeakersSerializer,
    StartLiveSerializer,
    TranscribeSerializer,
    TranscriptionFilterSerializer,
    TranscriptionSerializer,
    TranscriptionSummarySerializer,
)

CONTENT_TYPES = {"text": "text/plain", "srt": "application/x-subrip", "vtt": "text/vtt"}


def transcript_responses(json_body: type) -> dict:
    """The JSON body, or (?format=text|srt|vtt) the transcript rendered as a document of that type."""
    rendered = {(200, media): OpenApiTypes.STR for media in CONTENT_TYPES.values()}
    return {(200, "application/json"): json_body, **rendered}


class TranscribeRecordingView(APIView):
    required_scope = Scope.TRANSCRIPTION

    @extend_schema(
        request=TranscribeSerializer,
        responses={202: QueuedSerializer, **problems(409)},
        tags=["transcription"],
        summary="Transcribe a recording after the call",
    )
    def post(self, request: Request, recording_id: str) -> Response:
        options = TranscribeSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        transcription = services.queue_post_call(
            get_recording(recording_id), options.validated_data.get("language", "")
        )
        return Response(QueuedSerializer(transcription).data, status=202)


class TranscriptionsView(APIView):
    required_scope = Scope.TRANSCRIPTION

    @extend_schema(
        parameters=[TranscriptionFilterSerializer, PageQuerySerializer],
        responses=page_schema("transcriptions", TranscriptionSummarySerializer),
        tags=["transcription"],
        summary="List transcriptions",
        operation_id="transcriptions_list",
    )
    def get(self, request: Request) -> Response:
        filters = TranscriptionFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        found = Transcription.objects.all()
        for param, field in (
            ("roomId", "room_name"),
            ("recordingId", "recording_id"),
            ("type", "kind"),
            ("status", "status"),
        ):
            if data.get(param):
                found = found.filter(**{field: data[param]})
        return Response(paginate(request, found, "transcriptions", TranscriptionSummarySerializer))


def _rendered(body: str, name: str) -> HttpResponse:
    return HttpResponse(body, content_type=f"{CONTENT_TYPES[name]}; charset=utf-8")


def _get(transcription_id: str, queryset: QuerySet[Transcription] = Transcription.objects) -> Transcription:
    return get_or_404(queryset, f"No transcription {transcription_id!r}.", pk=transcription_id)


class TranscriptionView(APIView):
    required_scope = Scope.TRANSCRIPTION

    @extend_schema(
        parameters=[FormatSerializer],
        responses=transcript_responses(TranscriptionSerializer),
        tags=["transcription"],
        summary="A transcription: JSON, or ?format=text|srt|vtt",
    )
    def get(self, request: Request, transcription_id: str) -> Response | HttpResponse:
        output = FormatSerializer(data=request.query_params)
        output.is_valid(raise_exception=True)
        transcription = _get(transcription_id, Transcription.objects.prefetch_related("segments"))
        name = output.validated_data["format"]
        if name == "json":
            return Response(TranscriptionSerializer(transcription).data)
        return _rendered(services.render(transcription, name), name)

    @extend_schema(responses={204: None}, tags=["transcription"], summary="Delete a transcription")
    def delete(self, request: Request, transcription_id: str) -> Response:
        _get(transcription_id).delete()
        return Response(status=204)


class StartLiveView(APIView):
    required_scope = Scope.TRANSCRIPTION
    calls_livekit = True

    @extend_schema(
        request=StartLiveSerializer,
        responses={201: LiveStartedSerializer, 200: LiveStartedSerializer},
        tags=["transcription"],
        summary="Start transcribing a room live (dispatches the stt-live agent; idempotent)",
    )
    def post(self, request: Request, room_id: str) -> Response:
        options = StartLiveSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        data = options.validated_data
        transcription, started = live.start(
            room_id,
            language=data.get("language", ""),
            speakers=data.get("participants"),
            partial_results=data.get("options", {}).get("partialResults", False),
        )
        return Response(LiveStartedSerializer(transcription).data, status=201 if started else 200)


class StopLiveView(APIView):
    required_scope = Scope.TRANSCRIPTION

    @extend_schema(
        request=None, responses=LiveStoppedSerializer, tags=["transcription"], summary="Stop the live transcription"
    )
    def post(self, request: Request, room_id: str) -> Response:
        return Response(LiveStoppedSerializer(live.stop(room_id)).data)


class LiveTranscriptView(APIView):
    required_scope = Scope.TRANSCRIPTION

    @extend_schema(
        parameters=[LiveQuerySerializer],
        responses=transcript_responses(LiveTranscriptSerializer),
        tags=["transcription"],
        summary="The room's live transcript so far (the active session, else the latest)",
    )
    def get(self, request: Request, room_id: str) -> Response | HttpResponse:
        query = LiveQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        transcription = live.latest_live(room_id)
        since = query.validated_data.get("since")
        segments = list(live.live_segments(transcription, since))
        name = query.validated_data["format"]
        if name == "json":
            transcript = LiveTranscriptSerializer(transcription, context={"segments": segments, "since": since})
            return Response(transcript.data)
        return _rendered(services.render(transcription, name, segments), name)


class SpeakersView(APIView):
    required_scope = Scope.TRANSCRIPTION

    @extend_schema(
        request=SpeakersSerializer,
        responses=LiveStartedSerializer,
        tags=["transcription"],
        summary="Set participants' display names in the live transcript",
    )
    def patch(self, request: Request, room_id: str) -> Response:
        names = SpeakersSerializer(data=request.data)
        names.is_valid(raise_exception=True)
        transcription = live.update_speakers(live.latest_live(room_id), names.validated_data["participants"])
        return Response(LiveStartedSerializer(transcription).data)
