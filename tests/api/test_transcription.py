"""Post-call transcription through a real Celery worker: a speech recording in the S3 server becomes a transcript."""

import re
import signal
import time
from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from apps.recordings.models import Recording
from apps.transcription import services
from apps.transcription.models import Segment, Transcription
from apps.webhooks import services as webhooks
from apps.webhooks.models import WebhookDelivery
from tests.conftest import SignedClient, problem
from tests.support.audio import SENTENCES, wer
from tests.support.transcription import speech_bytes, stored_recording, wait_for_status
from tests.support.workers import celery_worker

SPOKEN = SENTENCES[:3]


@pytest.fixture
def worker_env(s3) -> dict[str, str]:
    return {**s3, "CELERY_VISIBILITY_TIMEOUT_SECONDS": "3"}


@pytest.mark.slow  # a Celery worker process, the Whisper model
@pytest.mark.django_db(transaction=True)
def test_recording_becomes_a_transcript(api: SignedClient, s3, worker_env, tmp_path) -> None:
    webhooks.create_endpoint(url="https://hooks.example.com/x", events=["transcription_completed"])
    recording = stored_recording(s3, "standup/call.wav", speech_bytes(tmp_path, *SPOKEN))
    with celery_worker(worker_env):
        queued = api.post_json(f"/v1/recordings/{recording.id}/transcribe", {"language": "en-US"})
        assert queued.status_code == 202, queued.content
        body = queued.json()
        assert body["status"] == "queued"
        assert body["transcriptionId"].startswith("tr_")
        done = wait_for_status(body["transcriptionId"], {"completed", "failed"})
    assert done.status == "completed", done.error
    result = api.send("GET", f"/v1/transcriptions/{done.id}").json()
    assert wer(" ".join(SPOKEN), result["text"]) <= 0.2
    assert result["language"] == "en"
    assert result["duration"] > 5
    starts = [s["startMs"] for s in result["segments"]]
    assert starts == sorted(starts)
    assert all(s["endMs"] > s["startMs"] for s in result["segments"])
    assert all("speaker" not in s for s in result["segments"])  # no live segments: left unlabelled

    srt = api.send("GET", f"/v1/transcriptions/{done.id}?format=srt")
    assert srt["Content-Type"].startswith("application/x-subrip")
    blocks = srt.content.decode().strip().split("\n\n")
    for index, block in enumerate(blocks, 1):
        lines = block.splitlines()
        assert lines[0] == str(index)
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", lines[1])
    vtt = api.send("GET", f"/v1/transcriptions/{done.id}?format=vtt").content.decode()
    assert vtt.startswith("WEBVTT\n\n")
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}", vtt)
    assert api.send("GET", f"/v1/transcriptions/{done.id}?format=text").content.decode().strip()
    assert WebhookDelivery.objects.filter(event="transcription_completed").count() == 1


@pytest.mark.slow  # a Celery worker process
@pytest.mark.django_db(transaction=True)
def test_corrupt_recording_fails_with_a_reason(api: SignedClient, s3, worker_env) -> None:
    webhooks.create_endpoint(url="https://hooks.example.com/x", events=["transcription_failed"])
    recording = stored_recording(s3, "standup/broken.mp4", b"this is not audio at all" * 100)
    with celery_worker(worker_env):
        queued = api.post_json(f"/v1/recordings/{recording.id}/transcribe", {}).json()
        failed = wait_for_status(queued["transcriptionId"], {"completed", "failed"})
    assert failed.status == "failed"
    assert "could not be transcribed" in failed.error
    assert WebhookDelivery.objects.filter(event="transcription_failed").count() == 1
    assert api.send("GET", f"/v1/transcriptions/{failed.id}").json()["error"] == failed.error


@pytest.mark.slow  # Celery worker processes, one killed
@pytest.mark.django_db(transaction=True)
def test_job_of_a_killed_worker_completes_when_a_worker_runs_again(api: SignedClient, s3, worker_env, tmp_path):
    recording = stored_recording(s3, "standup/long.wav", speech_bytes(tmp_path, *SENTENCES, *SENTENCES, pause=0.5))
    with celery_worker(worker_env) as first:
        queued = api.post_json(f"/v1/recordings/{recording.id}/transcribe", {}).json()
        wait_for_status(queued["transcriptionId"], {"processing", "completed"})
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert Transcription.objects.get(pk=queued["transcriptionId"]).status == "processing"
    time.sleep(3.5)  # the broker's visibility timeout for the unacknowledged job
    with celery_worker(worker_env):
        done = wait_for_status(queued["transcriptionId"], {"completed", "failed"}, timeout=120)
    assert done.status == "completed", done.error
    assert done.attempts == 2
    assert Segment.objects.filter(transcription=done).exists()


def test_transcribe_needs_a_finished_recording(api: SignedClient, db) -> None:
    active = Recording.objects.create(room_name="r", source=Recording.Source.EGRESS, status="recording", egress_id="E")
    response = api.post_json(f"/v1/recordings/{active.id}/transcribe", {})
    assert response.status_code == 409
    assert api.post_json("/v1/recordings/rec_missing/transcribe", {}).status_code == 404


def test_list_filters_and_formats_validation(api: SignedClient, db) -> None:
    recording = Recording.objects.create(room_name="r", source="upload", status="completed", storage_key="k")
    Transcription.objects.create(kind="post_call", status="completed", room_name="r", recording=recording)
    Transcription.objects.create(kind="live", status="active", room_name="other")
    assert api.send("GET", "/v1/transcriptions").json()["total"] == 2
    assert api.send("GET", "/v1/transcriptions?type=live").json()["total"] == 1
    assert api.send("GET", f"/v1/transcriptions?recordingId={recording.id}").json()["total"] == 1
    assert api.send("GET", "/v1/transcriptions?status=nope").status_code == 400
    one = Transcription.objects.filter(kind="live").get()
    bad = api.send("GET", f"/v1/transcriptions/{one.id}?format=docx")
    assert bad.status_code == 400
    assert "format" in problem(bad)["errors"]
    assert api.send("DELETE", f"/v1/transcriptions/{one.id}").status_code == 204
    assert api.send("GET", f"/v1/transcriptions/{one.id}").status_code == 404


def test_speaker_labels_come_from_overlapping_live_segments(db) -> None:
    from django.utils import timezone

    start = timezone.now()
    recording = Recording.objects.create(
        room_name="r", source="egress", status="completed", storage_key="k", egress_id="E1", started_at=start
    )
    live = Transcription.objects.create(
        kind="live", status="stopped", room_name="r", started_at=start - timedelta(seconds=10)
    )
    Segment.objects.create(
        transcription=live, start_ms=10_000, end_ms=14_000, text="hi", speaker_id="alice", speaker="Alice"
    )
    Segment.objects.create(
        transcription=live, start_ms=15_000, end_ms=19_000, text="yo", speaker_id="bob", speaker="Bob"
    )
    post = Transcription.objects.create(kind="post_call", status="processing", room_name="r", recording=recording)
    first = Segment.objects.create(transcription=post, start_ms=500, end_ms=3_500, text="hi")
    second = Segment.objects.create(transcription=post, start_ms=4_800, end_ms=9_000, text="yo")
    alone = Segment.objects.create(transcription=post, start_ms=30_000, end_ms=32_000, text="later")
    services.label_speakers(post)
    for segment in (first, second, alone):
        segment.refresh_from_db()
    assert (first.speaker_id, first.speaker) == ("alice", "Alice")
    assert second.speaker_id == "bob"
    assert alone.speaker_id == ""


def test_transcription_needs_its_scope(make_key) -> None:
    assert SignedClient(make_key(scopes=("recordings",))).send("GET", "/v1/transcriptions").status_code == 403


def test_finished_recording_is_auto_transcribed_when_asked(api: SignedClient, live_server, livekit, s3) -> None:
    livekit.webhook_url = live_server.url + "/v1/livekit/webhook"
    livekit.add_participant("standup", "alice")
    recording = api.post_json("/v1/rooms/standup/recording/start", {"autoTranscribe": True}).json()
    assert recording["autoTranscribe"] is True
    livekit.finish_egress(recording["egressId"])
    livekit.egress_ended(recording["egressId"])
    queued = Transcription.objects.get(recording_id=recording["recordingId"])
    assert queued.status == "queued"
    assert queued.kind == "post_call"


def test_admin_rerun_and_export(admin_client, db) -> None:
    recording = Recording.objects.create(room_name="r", source="upload", status="completed", storage_key="k.wav")
    done = Transcription.objects.create(kind="post_call", status="completed", room_name="r", recording=recording)
    Segment.objects.create(transcription=done, start_ms=0, end_ms=1500, text="Hello there.", speaker="Alice")
    page = admin_client.get(reverse("admin:transcription_transcription_change", args=[quote(done.id)])).content.decode()
    assert "Hello there." in page
    exported = admin_client.post(
        "/admin/transcription/transcription/", {"action": "export_srt", "_selected_action": [done.id]}
    )
    assert exported.content.decode().startswith("1\n00:00:00,000 --> 00:00:01,500\nAlice: Hello there.")
    admin_client.post("/admin/transcription/transcription/", {"action": "rerun", "_selected_action": [done.id]})
    assert Transcription.objects.filter(recording=recording, status="queued").count() == 1
    listing = admin_client.get("/admin/transcription/transcription/", {"status__exact": "queued"}).content.decode()
    assert "queued" in listing.lower()
