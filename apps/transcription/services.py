"""Post-call transcription: queue a recording, transcribe it on a worker, label speakers, render formats.

A job runs once however often its message is delivered: a run first claims the job (`claim`), which bumps
`attempts`, the fencing token, and takes a lease that a heartbeat renews while Whisper works. A second
delivery of a held job waits for the lease to end; a finished job is left alone; and only the run holding
the latest claim may record the result (`complete`, `fail`, `retry_later`). The database, not the broker,
says what is owed: `requeue_lost` (celery beat's sweep) queues again the jobs whose message was lost.

Speaker labels: a post-call segment gets a participant's name only when the same room's live
transcript has a segment from that participant overlapping it in time (wall clock: the recording's
start plus the segment's offset, against the live session's start plus its offset); the participant
with the most overlap wins. With no overlap the segment stays unlabelled rather than guessed.
"""

import logging
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.core.problems import Conflict
from apps.recordings.models import Recording
from apps.recordings.storage import recording_storage
from apps.webhooks.services import emit
from speech import formats
from speech.client import WhisperClient
from speech.transcript import Segment as TranscriptSegment
from speech.transcript import Transcript

from .models import Segment, Transcription
from .serializers import TranscriptionSummarySerializer

logger = logging.getLogger(__name__)

# A job in one of these states is still owed a run.
OPEN = (Transcription.Status.QUEUED, Transcription.Status.PROCESSING)
MAX_RETRY_DELAY_SECONDS = 600


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
        next_attempt_at=timezone.now(),
    )
    enqueue(transcription.id)
    return transcription


def enqueue(transcription_id: str) -> None:
    """Send the job to a worker once the surrounding transaction commits.

    If the broker is down the job stays queued (logged) and the sweep sends it again.
    """

    def send_task() -> None:
        from .tasks import transcribe_recording

        transcribe_recording.delay(transcription_id)

    transaction.on_commit(send_task, robust=True)


def transcribe_file(transcription: Transcription) -> Transcript:
    """Fetch the recording from storage into a temporary file and transcribe it with the one client."""
    storage = recording_storage()
    suffix = "." + transcription.recording.storage_key.rsplit(".", 1)[-1]
    with tempfile.NamedTemporaryFile(suffix=suffix) as local, storage.open(transcription.recording.storage_key) as src:
        shutil.copyfileobj(src, local)
        local.flush()
        return WhisperClient.from_env().transcribe(local.name, language=transcription.language or None)


@dataclass(frozen=True, slots=True)
class Claim:
    """What one delivery of the job does: run it (`transcription` set), look again in `wait` seconds, or nothing."""

    transcription: Transcription | None = None
    wait: float | None = None


def claim(transcription_id: str) -> Claim:
    """Take the job for this run unless it is finished, or held by a run whose lease is still live.

    A job whose attempts are spent (runs that never finished: workers killed or crashing on it) fails here.
    """
    now = timezone.now()
    with transaction.atomic():
        transcription = (
            Transcription.objects.select_for_update()
            .filter(pk=transcription_id, kind=Transcription.Kind.POST_CALL, status__in=OPEN)
            .first()
        )
        if transcription is None:
            return Claim()  # finished (a duplicate or late delivery) or deleted
        lease = transcription.lease_expires_at
        if transcription.status == Transcription.Status.PROCESSING and lease and lease > now:
            return Claim(wait=(lease - now).total_seconds() + 1)
        if transcription.attempts > settings.TRANSCRIPTION_MAX_RETRIES:
            _mark_failed(
                transcription,
                f"Gave up after {transcription.attempts} attempts; the last one never finished (its worker stopped).",
            )
            return Claim()
        transcription.status = Transcription.Status.PROCESSING
        transcription.attempts += 1
        transcription.started_at = transcription.started_at or now
        transcription.next_attempt_at = None
        transcription.lease_expires_at = now + timedelta(seconds=settings.TRANSCRIPTION_LEASE_SECONDS)
        transcription.save(update_fields=["status", "attempts", "started_at", "next_attempt_at", "lease_expires_at"])
    return Claim(transcription)


def _held(transcription: Transcription) -> bool:
    """Lock the job's row if this run still holds it: open, and not claimed again since (attempts unchanged)."""
    return (
        Transcription.objects.select_for_update()
        .filter(pk=transcription.pk, attempts=transcription.attempts, status__in=OPEN)
        .values_list("pk", flat=True)
        .first()
        is not None
    )


def _lost_claim(transcription: Transcription, outcome: str) -> None:
    logger.warning(
        "Transcription %s: attempt %d %s after another run took the job over; discarded",
        transcription.pk,
        transcription.attempts,
        outcome,
    )


@contextmanager
def heartbeat(transcription: Transcription) -> Iterator[None]:
    """Renew the job's lease every third of TRANSCRIPTION_LEASE_SECONDS while the body runs.

    Whisper may take far longer than the lease; the lease only has to outlive a dead worker's last beat.
    """
    stop = threading.Event()
    beat = threading.Thread(
        target=_renew_lease, args=(transcription, stop), name=f"lease-{transcription.pk}", daemon=True
    )
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()


def _renew_lease(transcription: Transcription, stop: threading.Event) -> None:
    seconds = settings.TRANSCRIPTION_LEASE_SECONDS
    held = Transcription.objects.filter(
        pk=transcription.pk, attempts=transcription.attempts, status=Transcription.Status.PROCESSING
    )
    try:
        while not stop.wait(seconds / 3):
            try:
                renewed = held.update(lease_expires_at=timezone.now() + timedelta(seconds=seconds))
            except DatabaseError as error:  # the next beat may get through before the lease ends
                logger.warning("Transcription %s: could not renew the lease: %s", transcription.pk, error)
                continue
            if not renewed:
                logger.warning(
                    "Transcription %s: attempt %d no longer holds the job", transcription.pk, transcription.attempts
                )
                return
    finally:
        connection.close()  # this thread's own connection


def complete(transcription: Transcription, transcript: Transcript) -> bool:
    """Store the segments and emit `transcription_completed`, if this run still holds the job."""
    with transaction.atomic():
        if not _held(transcription):
            _lost_claim(transcription, "completed")
            return False
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
        transcription.lease_expires_at = None
        transcription.save()
        emit("transcription_completed", TranscriptionSummarySerializer(transcription).data)
    return True


def fail(transcription: Transcription, reason: str) -> bool:
    """Mark the job failed with `reason` and emit `transcription_failed`, if this run still holds the job."""
    with transaction.atomic():
        if not _held(transcription):
            _lost_claim(transcription, "failed")
            return False
        _mark_failed(transcription, reason)
    return True


def _mark_failed(transcription: Transcription, reason: str) -> None:
    logger.warning("Transcription %s failed: %s", transcription.pk, reason)
    transcription.status = Transcription.Status.FAILED
    transcription.error = reason
    transcription.completed_at = timezone.now()
    transcription.next_attempt_at = transcription.lease_expires_at = None
    transcription.save(update_fields=["status", "error", "completed_at", "next_attempt_at", "lease_expires_at"])
    emit("transcription_failed", TranscriptionSummarySerializer(transcription).data)


def retry_later(transcription: Transcription, error: Exception) -> float | None:
    """After a transient failure: queue the job again and return the backoff in seconds, or fail it (None)
    once the TRANSCRIPTION_MAX_RETRIES retries are spent.

    Attempts are counted in the database, not in the Celery message: a job the sweep re-queued arrives in a
    new message, and a killed worker's attempt counts too (a recording that kills workers ends failed, see
    `claim`).
    """
    if transcription.attempts > settings.TRANSCRIPTION_MAX_RETRIES:
        fail(transcription, f"Gave up after {transcription.attempts} attempts: {error}")
        return None
    delay = min(settings.TRANSCRIPTION_RETRY_DELAY_SECONDS * 2 ** (transcription.attempts - 1), MAX_RETRY_DELAY_SECONDS)
    with transaction.atomic():
        if not _held(transcription):
            _lost_claim(transcription, "failed transiently")
            return None
        Transcription.objects.filter(pk=transcription.pk).update(
            status=Transcription.Status.QUEUED,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            lease_expires_at=None,
        )
    logger.warning(
        "Transcription %s: attempt %d failed (%s); retrying in %d s",
        transcription.pk,
        transcription.attempts,
        error,
        delay,
    )
    return delay


def requeue_lost() -> int:
    """Queue again every post-call job whose broker message is gone; returns how many.

    Lost means queued and JOB_SWEEP_GRACE_SECONDS past due (the message vanished with the broker's data, or
    was never sent while it was down), or processing with its lease run out (its worker died, and Redis may
    have lost the unacknowledged message too). Each is marked due now, so the next sweep leaves it alone
    for another grace period; a duplicate of a message that still exists is harmless (see `claim`).
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_SWEEP_GRACE_SECONDS)
    lost = (
        Transcription.objects.filter(kind=Transcription.Kind.POST_CALL)
        .alias(due=Coalesce("next_attempt_at", "queued_at"))
        .filter(
            Q(status=Transcription.Status.QUEUED, due__lt=cutoff)
            | Q(status=Transcription.Status.PROCESSING)
            & (Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        )
    )
    with transaction.atomic():
        ids = list(lost.select_for_update(skip_locked=True).values_list("pk", flat=True))
        Transcription.objects.filter(pk__in=ids).update(
            status=Transcription.Status.QUEUED, next_attempt_at=now, lease_expires_at=None
        )
        for transcription_id in ids:
            enqueue(transcription_id)
    if ids:
        logger.warning("Re-queued %d post-call transcription(s) whose job was lost: %s", len(ids), ", ".join(ids[:20]))
    return len(ids)


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


def render(transcription: Transcription, output: str, segments: Iterable[Segment] | None = None) -> str:
    return formats.render(as_transcript(transcription, segments), output)


def should_auto_transcribe(recording: Recording) -> bool:
    return settings.AUTO_TRANSCRIBE_RECORDINGS or recording.auto_transcribe
