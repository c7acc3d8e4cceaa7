"""Recording lifecycle: egress start/stop, files in storage, and LiveKit's egress events."""

from datetime import UTC, datetime

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from livekit import api
from rest_framework.exceptions import ValidationError

from apps.core import livekit
from apps.core.problems import Conflict, NotFound, get_or_404

from .models import Recording
from .storage import check_key, egress_upload, guarded, is_file, recording_storage


def active_recording(room_id: str) -> Recording | None:
    return Recording.objects.filter(
        room_name=room_id, source=Recording.Source.EGRESS, status__in=Recording.ACTIVE_STATUSES
    ).first()


def get_recording(recording_id: str) -> Recording:
    return get_or_404(Recording.objects, f"No recording {recording_id!r}.", pk=recording_id)


def file_path(room_id: str, audio_only: bool) -> str:
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    return check_key(f"{room_id}/{stamp}.{'ogg' if audio_only else 'mp4'}", "roomId")


def start(room_id: str, *, audio_only: bool = False, auto_transcribe: bool = False) -> tuple[Recording, bool]:
    """Start a room-composite egress to storage; returns (recording, started). Idempotent per room."""
    existing = active_recording(room_id)
    if existing is not None:
        return existing, False
    path = file_path(room_id, audio_only)
    output = api.EncodedFileOutput(
        file_type=api.EncodedFileType.OGG if audio_only else api.EncodedFileType.MP4,
        filepath=path,
        s3=egress_upload(),
    )
    request = api.RoomCompositeEgressRequest(room_name=room_id, audio_only=audio_only, file_outputs=[output])
    info = livekit.call(
        lambda lk: lk.egress.start_room_composite_egress(request), not_found=f"No active room {room_id!r} in LiveKit."
    )
    try:
        with transaction.atomic():
            recording = Recording.objects.create(
                room_name=room_id,
                egress_id=info.egress_id,
                source=Recording.Source.EGRESS,
                status=Recording.Status.RECORDING
                if info.status == api.EgressStatus.EGRESS_ACTIVE
                else Recording.Status.STARTING,
                audio_only=audio_only,
                auto_transcribe=auto_transcribe,
                storage_key=path,
                started_at=timezone.now(),
            )
    except IntegrityError:
        # Another request started one at the same moment: keep theirs, stop ours.
        livekit.call(lambda lk: lk.egress.stop_egress(api.StopEgressRequest(egress_id=info.egress_id)))
        return active_recording(room_id), False
    return recording, True


def stop(room_id: str) -> Recording:
    recording = active_recording(room_id)
    if recording is None:
        raise NotFound(f"Room {room_id!r} has no active recording.")
    livekit.call(
        lambda lk: lk.egress.stop_egress(api.StopEgressRequest(egress_id=recording.egress_id)),
        not_found=f"LiveKit has no egress {recording.egress_id!r}.",
    )
    recording.status = Recording.Status.ENDING
    recording.save(update_fields=["status"])
    return recording


def store_upload(upload: UploadedFile, room_id: str) -> Recording:
    name = check_key(f"{room_id or 'uploads'}/{timezone.now():%Y%m%dT%H%M%SZ}-{upload.name}", "roomId")
    key = guarded(lambda: recording_storage().save(name, upload))
    now = timezone.now()
    return Recording.objects.create(
        room_name=room_id,
        source=Recording.Source.UPLOAD,
        status=Recording.Status.COMPLETED,
        storage_key=key,
        size_bytes=upload.size,
        started_at=now,
        ended_at=now,
    )


def register(storage_key: str, room_id: str, duration: float | None) -> Recording:
    """Record a file already in storage: only a regular file (a directory would register, then fail to serve)."""
    if not is_file(check_key(storage_key, "storageKey")):
        raise ValidationError({"storageKey": [f"No file {storage_key!r} in recording storage."]})
    storage = recording_storage()
    return Recording.objects.create(
        room_name=room_id,
        source=Recording.Source.REGISTERED,
        status=Recording.Status.COMPLETED,
        storage_key=storage_key,
        size_bytes=guarded(lambda: storage.size(storage_key)),
        duration_seconds=duration,
    )


def delete(recording: Recording) -> None:
    """Remove the file, then the record; an active egress must be stopped first."""
    if recording.is_active:
        raise Conflict("This recording is still in progress; stop it first.")
    if recording.storage_key:
        guarded(lambda: recording_storage().delete(recording.storage_key))
    recording.delete()


def _from_ns(nanoseconds: int) -> datetime | None:
    return datetime.fromtimestamp(nanoseconds / 1e9, tz=UTC) if nanoseconds else None


EGRESS_STATUS = {
    api.EgressStatus.EGRESS_STARTING: Recording.Status.STARTING,
    api.EgressStatus.EGRESS_ACTIVE: Recording.Status.RECORDING,
    api.EgressStatus.EGRESS_ENDING: Recording.Status.ENDING,
    api.EgressStatus.EGRESS_COMPLETE: Recording.Status.COMPLETED,
    api.EgressStatus.EGRESS_FAILED: Recording.Status.FAILED,
    api.EgressStatus.EGRESS_ABORTED: Recording.Status.FAILED,
    api.EgressStatus.EGRESS_LIMIT_REACHED: Recording.Status.COMPLETED,
}


def apply_egress(info: api.EgressInfo) -> Recording | None:
    """Update the recording an egress event is about; None when RTCstack did not start that egress."""
    recording = Recording.objects.select_for_update().filter(egress_id=info.egress_id).first()
    if recording is None:
        return None
    recording.status = EGRESS_STATUS.get(info.status, recording.status)
    recording.started_at = _from_ns(info.started_at) or recording.started_at
    if info.status in (api.EgressStatus.EGRESS_FAILED, api.EgressStatus.EGRESS_ABORTED):
        recording.error = info.error or "Egress aborted."
        recording.ended_at = _from_ns(info.ended_at) or timezone.now()
    if recording.status == Recording.Status.COMPLETED:
        recording.ended_at = _from_ns(info.ended_at) or timezone.now()
        files = list(info.file_results)
        if files:
            result = files[0]
            recording.storage_key = result.filename or recording.storage_key
            recording.size_bytes = result.size or None
            recording.duration_seconds = result.duration / 1e9 if result.duration else None
    recording.save()
    return recording
