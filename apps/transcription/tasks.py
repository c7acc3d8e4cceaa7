"""The post-call transcription job. acks_late + reject-on-worker-lost: a killed worker's job runs again."""

import logging

from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task
from celery.app.task import Task
from django.conf import settings

from . import services
from .client import WhisperUnavailable
from .transcript import TranscriptionError

logger = logging.getLogger(__name__)
TRANSIENT = (WhisperUnavailable, BotoCoreError, ConnectionError, TimeoutError)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def transcribe_recording(self: Task, transcription_id: str) -> None:
    transcription = services.mark_processing(transcription_id)
    if transcription is None:
        return
    try:
        transcript = services.transcribe_file(transcription)
    except TRANSIENT as error:
        if self.request.retries >= settings.TRANSCRIPTION_MAX_RETRIES:
            services.fail(transcription, f"Gave up after {self.request.retries + 1} attempts: {error}")
            return
        logger.warning("Transcription %s: transient failure (%s); retrying", transcription_id, error)
        raise self.retry(countdown=min(2**self.request.retries * 5, 600)) from error
    except (TranscriptionError, ClientError, FileNotFoundError, OSError) as error:
        logger.warning("Transcription %s failed: %s", transcription_id, error)
        services.fail(transcription, f"The recording could not be transcribed: {error}")
        return
    services.complete(transcription, transcript)
