"""Post-call transcription jobs: a speech recording in the S3 server, and waiting for a job to reach a status."""

import time
from pathlib import Path
from typing import Any

import boto3

from apps.recordings.models import Recording
from apps.transcription.models import Transcription
from tests.support.audio import utterances, write_wav


def stored_recording(s3: dict[str, str], key: str, body: bytes, **fields: Any) -> Recording:
    """An uploaded recording whose file is in the S3 server (the `s3` fixture's settings)."""
    boto3.client(
        "s3", endpoint_url=s3["S3_ENDPOINT_URL"], aws_access_key_id=s3["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=s3["S3_SECRET_ACCESS_KEY"], region_name=s3["S3_REGION"],
    ).put_object(Bucket=s3["S3_BUCKET"], Key=key, Body=body)  # fmt: skip
    return Recording.objects.create(
        room_name="standup", source=Recording.Source.UPLOAD, status=Recording.Status.COMPLETED, storage_key=key,
        size_bytes=len(body), **fields,
    )  # fmt: skip


def speech_bytes(tmp_path: Path, *texts: str, pause: float = 1.0) -> bytes:
    return write_wav(tmp_path / "speech.wav", utterances(*texts, pause=pause)).read_bytes()


def wait_for_status(transcription_id: str, statuses: set[str], timeout: float = 90) -> Transcription:
    """Poll the job's row (the worker is another process) until its status is one of `statuses`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        transcription = Transcription.objects.get(pk=transcription_id)
        if transcription.status in statuses:
            return transcription
        time.sleep(0.2)
    raise AssertionError(f"{transcription_id} still {transcription.status} after {timeout} s")
