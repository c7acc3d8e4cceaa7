"""Post-call transcription jobs under faults, with real Celery workers: a Whisper outage longer than the retry
budget fails the job with its reason; a job longer than the broker's visibility timeout runs once."""

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.utils import timezone

from apps.transcription.models import Transcription
from apps.webhooks import services as webhooks
from apps.webhooks.models import WebhookDelivery
from tests.conftest import SignedClient
from tests.support.audio import SENTENCES
from tests.support.servers import free_port, whisper_service
from tests.support.transcription import speech_bytes, stored_recording, wait_for_status
from tests.support.waiting import wait_until
from tests.support.workers import TcpProxy, celery_worker

pytestmark = pytest.mark.slow  # real Celery workers and the Whisper service process


@pytest.fixture(scope="module")
def whisper_port() -> Iterator[int]:
    """The real Whisper REST service (one loaded model), for the workers to reach through a proxy."""
    with whisper_service() as url:
        yield urlsplit(url).port


@pytest.mark.django_db(transaction=True)
def test_whisper_outage_longer_than_the_retries_fails_the_job_with_its_reason(
    api: SignedClient, s3: dict[str, str], tmp_path: Any
) -> None:
    """Every attempt the budget allows is made (not Celery's default 3), then the job fails and says why."""
    webhooks.create_endpoint(url="https://hooks.example.com/x", events=["transcription_failed"])
    recording = stored_recording(s3, "standup/outage.wav", speech_bytes(tmp_path, SENTENCES[0]))
    whisper_down = f"http://127.0.0.1:{free_port()}"  # nothing listens there: the Whisper service is down
    with celery_worker({**s3, "WHISPER_URL": whisper_down, "TRANSCRIPTION_RETRY_DELAY_SECONDS": "0"}):
        queued = api.post_json(f"/v1/recordings/{recording.id}/transcribe", {}).json()
        failed = wait_for_status(queued["transcriptionId"], {"completed", "failed"}, timeout=60)
    assert settings.TRANSCRIPTION_MAX_RETRIES == 5
    assert failed.status == "failed"
    assert failed.attempts == 6
    assert failed.error.startswith(f"Gave up after 6 attempts: The Whisper service at {whisper_down} is unreachable")
    (delivery,) = WebhookDelivery.objects.filter(event="transcription_failed")
    assert json.loads(delivery.body)["data"]["error"] == failed.error
    assert api.send("GET", f"/v1/transcriptions/{failed.id}").json()["status"] == "failed"


@pytest.mark.django_db(transaction=True)
def test_a_job_longer_than_the_visibility_timeout_runs_once(
    api: SignedClient, s3: dict[str, str], tmp_path: Any, whisper_port: int
) -> None:
    """Redis hands an unacknowledged job to another worker after the visibility timeout; while the first
    worker still transcribes (its heartbeat renewing the lease), that second delivery must not run it."""
    webhooks.create_endpoint(url="https://hooks.example.com/x", events=["transcription_completed"])
    recording = stored_recording(s3, "standup/long.wav", speech_bytes(tmp_path, *SENTENCES[:2]))
    with TcpProxy(whisper_port) as whisper:
        env = {
            **s3,
            "WHISPER_URL": f"http://127.0.0.1:{whisper.port}",
            "CELERY_VISIBILITY_TIMEOUT_SECONDS": "2",
            "TRANSCRIPTION_LEASE_SECONDS": "3",
            "LOG_LEVEL": "INFO",
        }
        with celery_worker(env, name="first"):
            whisper.freeze()  # Whisper answers only when the test lets it: a job as long as we like
            job_id = api.post_json(f"/v1/recordings/{recording.id}/transcribe", {}).json()["transcriptionId"]
            started = wait_for_status(job_id, {"processing"})
            visible_again = started.started_at + timedelta(seconds=2.5)
            wait_until(lambda: timezone.now() > visible_again, "the visibility timeout to pass", 60)
            # A worker starting now finds the unacknowledged message past its visibility timeout and takes it.
            with celery_worker(env, name="second") as second:
                wait_until(
                    lambda: (
                        Transcription.objects.get(pk=job_id).attempts > 1 or "held by another worker" in second.output()
                    ),
                    "the broker to hand the job to the second worker",
                    60,
                )
                running = Transcription.objects.get(pk=job_id)
                assert (running.status, running.attempts) == ("processing", 1)
                # Past the lease it started with, the heartbeat has renewed it: the job is still held.
                wait_until(lambda: timezone.now() > started.lease_expires_at, "the first lease to run out", 60)
                assert Transcription.objects.get(pk=job_id).lease_expires_at > timezone.now()
                whisper.thaw()
                done = wait_for_status(job_id, {"completed", "failed"})
    assert done.status == "completed", done.error
    assert done.attempts == 1
    assert done.lease_expires_at is None
    assert WebhookDelivery.objects.filter(event="transcription_completed").count() == 1
