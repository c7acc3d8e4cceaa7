"""The periodic sweep (celery beat) finds jobs whose broker message is gone and queues them again, while the
workers keep running: real worker and beat processes, Redis cut off and emptied, a worker killed.

(A worker that loses its Redis connection while it holds a countdown message can crash inside kombu 5.7's
channel close, so the held retry is lost with a killed worker here rather than with a cut connection.)"""

import signal
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.utils import timezone

from apps.core.redis import get_redis
from apps.recordings.models import Recording
from apps.transcription import services as transcription
from apps.transcription.models import Transcription
from apps.webhooks import services as webhooks
from apps.webhooks.models import WebhookDelivery
from tests.support.audio import SENTENCES
from tests.support.transcription import speech_bytes, stored_recording, wait_for_status
from tests.support.waiting import wait_until
from tests.support.workers import TcpProxy, celery_beat, celery_worker

pytestmark = pytest.mark.slow  # real Celery worker and beat processes

SWEEP = {"JOB_SWEEP_INTERVAL_SECONDS": "1", "JOB_SWEEP_GRACE_SECONDS": "2"}


def delivery_status(delivery: WebhookDelivery) -> str:
    return WebhookDelivery.objects.get(pk=delivery.pk).status


@pytest.mark.django_db(transaction=True)
def test_jobs_lost_with_the_brokers_data_run_while_the_workers_keep_running(
    s3: dict[str, str], tmp_path: Any, settings: Any, receiver_factory: Any
) -> None:
    """Redis goes away and comes back empty: the queued transcription and the pending delivery it held are
    gone from the broker, and the worker and beat only reconnect; the sweep finds both in the database."""
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    receiver = receiver_factory([200])
    webhooks.create_endpoint(receiver.url, ["room_finished"])
    recording = stored_recording(s3, "standup/lost.wav", speech_bytes(tmp_path, SENTENCES[0]))
    redis_url = urlsplit(settings.REDIS_URL)
    with TcpProxy(redis_url.port) as redis_link:
        proxied = urlunsplit(redis_url._replace(netloc=f"127.0.0.1:{redis_link.port}"))
        env = {**s3, **SWEEP, "REDIS_URL": proxied, "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "1"}
        with celery_worker(env), celery_beat(env):
            redis_link.cut()  # Redis is gone for the worker and beat...
            job = transcription.queue_post_call(recording)  # ...these reach it just before it loses everything
            (pending,) = webhooks.emit("room_finished", {"roomId": "standup"})
            get_redis().flushdb()
            redis_link.restore()  # ...and it is back, empty
            done = wait_for_status(job.id, {"completed", "failed"}, timeout=120)
            wait_until(lambda: delivery_status(pending) == "succeeded", "the lost delivery", 60)
    assert done.status == "completed", done.error
    assert done.attempts == 1
    assert len(receiver.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_a_killed_workers_jobs_run_again_when_their_messages_are_gone_too(
    api: Any, s3: dict[str, str], tmp_path: Any, settings: Any, receiver_factory: Any
) -> None:
    """The worker dies mid-job holding a webhook retry, and Redis loses the unacknowledged messages: the job's
    lease runs out and the retry falls due, and the sweep queues both again."""
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_RETRY_DELAYS = [3]
    flaky = receiver_factory([500, 200])
    webhooks.create_endpoint(flaky.url, ["room_started"])
    recording = stored_recording(s3, "standup/long.wav", speech_bytes(tmp_path, *SENTENCES, pause=0.5))
    env = {
        **s3, **SWEEP, "TRANSCRIPTION_LEASE_SECONDS": "3", "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "1",
        "WEBHOOK_RETRY_DELAYS": "3",
    }  # fmt: skip
    with celery_worker(env) as first:
        (retrying,) = webhooks.emit("room_started", {"roomId": "standup"})
        wait_until(lambda: delivery_status(retrying) == "retrying", "the first attempt to fail", 60)
        job_id = api.post_json(f"/v1/recordings/{recording.id}/transcribe", {}).json()["transcriptionId"]
        wait_for_status(job_id, {"processing", "completed"})
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    get_redis().flushdb()
    assert Transcription.objects.get(pk=job_id).status == "processing"
    with celery_worker(env), celery_beat(env):
        done = wait_for_status(job_id, {"completed", "failed"}, timeout=120)
        wait_until(lambda: delivery_status(retrying) == "succeeded", "the lost retry", 60)
    assert done.status == "completed", done.error
    assert done.attempts == 2
    assert len(flaky.requests) == 2


def post_call(recording: Any, status: str, **fields: Any) -> Transcription:
    fields = {"next_attempt_at": timezone.now(), **fields}
    return Transcription.objects.create(kind="post_call", status=status, room_name="r", recording=recording, **fields)


def test_the_sweep_queues_each_lost_job_once_per_grace_period(
    db: None, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.JOB_SWEEP_GRACE_SECONDS = 60
    recording = Recording.objects.create(room_name="r", source="upload", status="completed", storage_key="k.wav")
    now, long_ago = timezone.now(), timezone.now() - timedelta(minutes=5)
    lost = post_call(recording, "queued", next_attempt_at=long_ago)
    post_call(recording, "queued")  # just queued: its message is surely still on its way
    post_call(recording, "queued", next_attempt_at=now + timedelta(minutes=5))  # a retry waiting for its time
    orphaned = post_call(recording, "processing", attempts=1, lease_expires_at=now - timedelta(seconds=1))
    post_call(recording, "processing", attempts=1, lease_expires_at=now + timedelta(seconds=30))  # still held
    post_call(recording, "completed", next_attempt_at=long_ago)
    Transcription.objects.create(kind="live", status="active", room_name="r")
    endpoint, _ = webhooks.create_endpoint("https://hooks.example.com/x", ["*"])
    overdue = WebhookDelivery.objects.create(
        public_id="msg_overdue", endpoint=endpoint, event="room_started", body="{}", next_attempt_at=long_ago
    )
    with django_capture_on_commit_callbacks() as callbacks:
        assert transcription.requeue_lost() == 2
        assert webhooks.requeue_overdue() == 1
    assert len(callbacks) == 3
    for job in (lost, orphaned):
        job.refresh_from_db()
        assert (job.status, job.lease_expires_at) == ("queued", None)
        assert job.next_attempt_at >= now
    overdue.refresh_from_db()
    assert overdue.next_attempt_at >= now
    # Marked due now: the next sweeps leave them alone until another grace period has passed.
    assert (transcription.requeue_lost(), webhooks.requeue_overdue()) == (0, 0)


def test_a_job_whose_runs_never_finish_fails_once_its_attempts_are_spent(
    db: None, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Workers killed by the same recording again and again: the attempts count, and the job ends failed."""
    webhooks.create_endpoint("https://hooks.example.com/x", ["transcription_failed"])
    recording = Recording.objects.create(room_name="r", source="upload", status="completed", storage_key="k.wav")
    spent = post_call(recording, "queued", attempts=settings.TRANSCRIPTION_MAX_RETRIES + 1)
    with django_capture_on_commit_callbacks():
        claimed = transcription.claim(spent.pk)
    assert claimed == transcription.Claim()
    spent.refresh_from_db()
    assert spent.status == "failed"
    assert spent.error == "Gave up after 6 attempts; the last one never finished (its worker stopped)."
    assert WebhookDelivery.objects.filter(event="transcription_failed").count() == 1
