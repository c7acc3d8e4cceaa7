"""The post-call transcription job and the sweep that re-queues lost ones.

acks_late + reject-on-worker-lost: a killed worker's job runs again. Whether a delivery may run the job is
decided by the database (services.claim), not by Celery: see services' module docstring.
"""

import logging

from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task
from celery.app.task import Task

from speech.client import WhisperUnavailable
from speech.transcript import TranscriptionError

from . import services

logger = logging.getLogger(__name__)
TRANSIENT = (WhisperUnavailable, BotoCoreError, ConnectionError, TimeoutError)


# max_retries=None: the retry budget (TRANSCRIPTION_MAX_RETRIES) is counted in the database, and waiting for
# another worker's lease is not a failure.
@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=None)
def transcribe_recording(self: Task, transcription_id: str) -> None:
    claim = services.claim(transcription_id)
    if claim.wait is not None:
        logger.info("Transcription %s is held by another worker; looking again in %.0f s", transcription_id, claim.wait)
        raise self.retry(countdown=claim.wait)
    transcription = claim.transcription
    if transcription is None:
        return
    try:
        with services.heartbeat(transcription):
            transcript = services.transcribe_file(transcription)
    except TRANSIENT as error:
        delay = services.retry_later(transcription, error)
        if delay is not None:
            raise self.retry(countdown=delay) from error
        return
    except (TranscriptionError, ClientError, FileNotFoundError, OSError) as error:
        services.fail(transcription, f"The recording could not be transcribed: {error}")
        return
    services.complete(transcription, transcript)


@shared_task(ignore_result=True)
def requeue_lost_transcriptions() -> int:
    """The sweep, run by celery beat every JOB_SWEEP_INTERVAL_SECONDS."""
    return services.requeue_lost()
