"""Transcription's reactions to other apps' signals, connected in TranscriptionConfig.ready()."""

from typing import Any

from apps.recordings.models import Recording

from . import services


def recording_finished(recording: Recording, **kwargs: Any) -> None:
    """Queue the post-call transcription of a completed recording that asked for one (or when all do)."""
    if recording.status == Recording.Status.COMPLETED and services.should_auto_transcribe(recording):
        services.queue_post_call(recording)
