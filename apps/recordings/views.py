from typing import Any

from django.conf import settings
from django.core import signing
from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.apikeys.models import Scope
from apps.core.codecs import ORJSONParser
from apps.core.pagination import PageQuerySerializer, page_schema, paginate
from apps.core.problems import NotFound, PayloadTooLarge
from apps.core.schema import problems

from . import services
from .models import Recording
from .serializers import (
    DeletedRecordingSerializer,
    RecordingFilterSerializer,
    RecordingSerializer,
    RegisterRecordingSerializer,
    RoomRecordingStatusSerializer,
    StartRecordingSerializer,
)
from .storage import guarded, is_file, key_from_download_token, recording_storage


def _host(request: Request) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _render(request: Request, recording: Recording) -> dict[str, Any]:
    return RecordingSerializer(recording, context={"host": _host(request)}).data


class RoomRecordingView(APIView):
    required_scope = Scope.RECORDINGS

    @extend_schema(tags=["recordings"], summary="Is the room being recorded?", responses=RoomRecordingStatusSerializer)
    def get(self, request: Request, room_id: str) -> Response:
        return Response(RoomRecordingStatusSerializer({"recording": services.active_recording(room_id)}).data)


class StartRecordingView(APIView):
    required_scope = Scope.RECORDINGS
    calls_livekit = True

    @extend_schema(
        request=StartRecordingSerializer,
        responses={201: RecordingSerializer, 200: RecordingSerializer},
        tags=["recordings"],
        summary="Start recording a room (idempotent)",
    )
    def post(self, request: Request, room_id: str) -> Response:
        serializer = StartRecordingSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        recording, started = services.start(
            room_id, audio_only=data["audioOnly"], auto_transcribe=data["autoTranscribe"]
        )
        body = _render(request, recording)
        if not started:
            body["status"] = "already_recording"
        return Response(body, status=201 if started else 200)


class StopRecordingView(APIView):
    required_scope = Scope.RECORDINGS
    calls_livekit = True

    @extend_schema(
        request=None, responses=RecordingSerializer, tags=["recordings"], summary="Stop the room's recording"
    )
    def post(self, request: Request, room_id: str) -> Response:
        return Response(_render(request, services.stop(room_id)))


class RecordingsView(APIView):
    required_scope = Scope.RECORDINGS
    parser_classes = [ORJSONParser, MultiPartParser]

    @classmethod
    def max_body_bytes(cls) -> int:
        """An upload and its multipart envelope (the file itself is held to the exact limit in `post`)."""
        return settings.RECORDING_UPLOAD_MAX_BYTES + settings.API_MAX_BODY_BYTES

    @extend_schema(
        parameters=[RecordingFilterSerializer, PageQuerySerializer],
        responses=page_schema("recordings", RecordingSerializer),
        tags=["recordings"],
        summary="List recordings",
        operation_id="recordings_list",
    )
    def get(self, request: Request) -> Response:
        filters = RecordingFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        recordings = Recording.objects.all()
        if room_id := filters.validated_data.get("roomId"):
            recordings = recordings.filter(room_name=room_id)
        if status := filters.validated_data.get("status"):
            recordings = recordings.filter(status=status)
        return Response(paginate(request, recordings, "recordings", RecordingSerializer, {"host": _host(request)}))

    @extend_schema(
        request={"multipart/form-data": RegisterRecordingSerializer, "application/json": RegisterRecordingSerializer},
        responses={201: RecordingSerializer},
        tags=["recordings"],
        summary="Upload or register a file",
    )
    def post(self, request: Request) -> Response:
        serializer = RegisterRecordingSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data.get("file"):
            if data["file"].size > settings.RECORDING_UPLOAD_MAX_BYTES:
                raise PayloadTooLarge(f"Uploads are limited to {settings.RECORDING_UPLOAD_MAX_BYTES} bytes.")
            recording = services.store_upload(data["file"], data["roomId"])
        else:
            recording = services.register(data["storageKey"], data["roomId"], data.get("duration"))
        return Response(_render(request, recording), status=201)


class RecordingView(APIView):
    required_scope = Scope.RECORDINGS

    @extend_schema(
        tags=["recordings"], summary="A recording, with a short-lived download URL", responses=RecordingSerializer
    )
    def get(self, request: Request, recording_id: str) -> Response:
        return Response(_render(request, services.get_recording(recording_id)))

    @extend_schema(
        tags=["recordings"],
        summary="Delete a recording and its file",
        responses={200: DeletedRecordingSerializer, **problems(409)},
    )
    def delete(self, request: Request, recording_id: str) -> Response:
        services.delete(services.get_recording(recording_id))
        return Response(DeletedRecordingSerializer({"recordingId": recording_id, "deleted": True}).data)


class DownloadView(APIView):
    """Serves a locally stored recording to whoever holds a fresh signed link (the embedded default).

    The link is the credential, so no API key; an API view for the problem responses (storage down: 503).
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request: Request, token: str) -> FileResponse:
        try:
            key = key_from_download_token(token)
        except signing.BadSignature as error:
            raise NotFound("This download link is invalid or has expired.") from error
        if not is_file(key):
            raise NotFound("The file is gone.")
        file = guarded(lambda: recording_storage().open(key, "rb"))
        return FileResponse(file, as_attachment=True, filename=key.rsplit("/", 1)[-1])


download = DownloadView.as_view()
