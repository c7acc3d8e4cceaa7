"""Post-call transcription: queue a recording, transcribe it on a worker, label speakers, render formats.

Speaker labels: a post-call segment gets a participant's name only when the same room's live
transcript has a segment from that participant overlapping it in time (wall clock: the recording's
start plus the segment's offset, against the live session's start plus its offset); the participant
with the most overlap wins. With no overlap the segment stays unlabelled rather than guessed.
"""

import logging
import shutil
import tempfile
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.codecs import iso_utc
from apps.core.problems import Conflict
from apps.recordings.models import Recording
from apps.recordings.storage import recording_storage
from apps.webhooks.services import emit

from . import formats
from .client import WhisperClient
from .models import Segment, Transcription
from .transcript import Segment as TranscriptSegment
from .transcript import Transcript

logger = logging.getLogger(__name__)


def queue_post_call(recording: Recording, language: str = "") -> Transcription:
    """A queued transcription of a completed recording; the worker picks it up after commit."""
    if recording.status != Recording.Status.COMPLETED or not recording.storage_key:
        raise Conflict(f"Recording {recording.id} has no finished file to transcribe yet (status {recording.status}).")
    transcription = Transcription.objects.create(
        kind=Transcription.Kind.POST_CALL,
        status=Transcription.Status.QUEUED,
        room_name=recording.room_name,
        recording=recording,
        language=language,
    )

    def enqueue() -> None:
        from .tasks import transcribe_recording

        transcribe_recording.delay(transcription.id)

    transaction.on_commit(enqueue, robust=True)
    return transcription


def transcribe_file(transcription: Transcription) -> Transcript:
    """Fetch the recording from storage into a temporary file and transcribe it with the one client."""
    storage = recording_storage()
    suffix = "." + transcription.recording.storage_key.rsplit(".", 1)[-1]
    with tempfile.NamedTemporaryFile(suffix=suffix) as local, storage.open(transcription.recording.storage_key) as src:
        shutil.copyfileobj(src, local)
        local.flush()
        return WhisperClient.from_env().transcribe(local.name, language=transcription.language or None)


def mark_processing(transcription_id: str) -> Transcription | None:
    """Claim the job; None when it is already finished (a duplicate or late delivery of the task)."""
    with transaction.atomic():
        transcription = Transcription.objects.select_for_update().filter(pk=transcription_id).first()
        if transcription is None or transcription.status in (
            Transcription.Status.COMPLETED,
            Transcription.Status.FAILED,
        ):
            return None
        transcription.status = Transcription.Status.PROCESSING
        transcription.attempts += 1
        transcription.started_at = transcription.started_at or timezone.now()
        transcription.save(update_fields=["status", "attempts", "started_at"])
    return transcription


@transaction.atomic
def complete(transcription: Transcription, transcript: Transcript) -> None:
    transcription.segments.all().delete()
    Segment.objects.bulk_create(
        Segment(
            transcription=transcription,
            start_ms=round(piece.start * 1000),
            end_ms=round(piece.end * 1000),
            text=piece.text.strip(),
        )
        for piece in transcript.segments
        if piece.text.strip()
    )
    label_speakers(transcription)
    transcription.status = Transcription.Status.COMPLETED
    transcription.language = transcript.language
    transcription.duration_seconds = transcript.duration
    transcription.completed_at = timezone.now()
    transcription.error = ""
    transcription.save()
    emit("transcription_completed", transcription_json(transcription, with_segments=False))


@transaction.atomic
def fail(transcription: Transcription, reason: str) -> None:
    transcription.status = Transcription.Status.FAILED
    transcription.error = reason
    transcription.completed_at = timezone.now()
    transcription.save(update_fields=["status", "error", "completed_at"])
    emit("transcription_failed", transcription_json(transcription, with_segments=False))


def label_speakers(transcription: Transcription) -> None:
    """Label post-call segments from overlapping live segments of the same room (see the module docstring)."""
    recording = transcription.recording
    if recording is None or recording.started_at is None:
        return
    live = [
        (
            session.started_at + timedelta(milliseconds=s.start_ms),
            session.started_at + timedelta(milliseconds=s.end_ms),
            s,
        )
        for session in Transcription.objects.filter(
            kind=Transcription.Kind.LIVE, room_name=transcription.room_name, started_at__isnull=False
        )
        for s in session.segments.exclude(speaker_id="")
    ]
    if not live:
        return
    for segment in transcription.segments.all():
        start = recording.started_at + timedelta(milliseconds=segment.start_ms)
        end = recording.started_at + timedelta(milliseconds=segment.end_ms)
        overlap: dict[tuple[str, str], float] = {}
        for live_start, live_end, live_segment in live:
            seconds = (min(end, live_end) - max(start, live_start)).total_seconds()
            if seconds > 0:
                key = (live_segment.speaker_id, live_segment.speaker)
                overlap[key] = overlap.get(key, 0.0) + seconds
        if overlap:
            segment.speaker_id, segment.speaker = max(overlap, key=overlap.get)
            segment.save(update_fields=["speaker_id", "speaker"])


def as_transcript(transcription: Transcription, segments: Iterable[Segment] | None = None) -> Transcript:
    """The stored segments (or the given ones) as a Transcript, speaker names prefixed, for the renderers."""
    return Transcript(
        language=transcription.language,
        duration=transcription.duration_seconds or 0.0,
        segments=[
            TranscriptSegment(
                start=s.start_ms / 1000,
                end=s.end_ms / 1000,
                text=f"{s.speaker}: {s.text}" if s.speaker else s.text,
            )
            for s in (transcription.segments.all() if segments is None else segments)
        ],
    )


def segment_json(segment: Segment) -> dict[str, Any]:
    body: dict[str, Any] = {"startMs": segment.start_ms, "endMs": segment.end_ms, "text": segment.text}
    if segment.speaker_id:
        body["speakerId"] = segment.speaker_id
        body["speaker"] = segment.speaker
    return body


def transcription_json(transcription: Transcription, *, with_segments: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "transcriptionId": transcription.id,
        "type": transcription.kind,
        "status": transcription.status,
        "roomId": transcription.room_name,
        "recordingId": transcription.recording_id,
        "language": transcription.language or None,
        "duration": transcription.duration_seconds,
        "error": transcription.error or None,
        "queuedAt": iso_utc(transcription.queued_at),
        "startedAt": iso_utc(transcription.started_at),
        "completedAt": iso_utc(transcription.completed_at),
    }
    if with_segments:
        segments = list(transcription.segments.all())
        body["segments"] = [segment_json(s) for s in segments]
        body["text"] = " ".join(s.text for s in segments)
    return body


def render(transcription: Transcription, output: str, segments: Iterable[Segment] | None = None) -> str:
    return formats.render(as_transcript(transcription, segments), output)


def should_auto_transcribe(recording: Recording) -> bool:
    return settings.AUTO_TRANSCRIBE_RECORDINGS or recording.auto_transcribe
