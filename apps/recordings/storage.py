"""Where recording files live: django-storages' S3 backend, or local files as the embedded default."""

import logging
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core import signing
from django.core.files.storage import Storage, storages
from django.urls import reverse
from livekit import api

from apps.core.problems import Problem, ServiceUnavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")
DOWNLOAD_SALT = "rtcstack.recordings.download"


def recording_storage() -> Storage:
    return storages["recordings"]


def uses_s3() -> bool:
    return bool(settings.S3_BUCKET)


def guarded(operation: Callable[[], T]) -> T:
    """Run a storage operation; an unreachable or failing bucket becomes a 503/502 problem."""
    try:
        return operation()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "unknown")
        logger.warning("Recording storage refused an operation: %s", code)
        raise Problem(
            f"Recording storage refused the operation ({code}); check S3_BUCKET and its credentials.",
            kind="storage-error",
            title="Storage error",
            status=502,
        ) from error
    except (BotoCoreError, OSError) as error:
        logger.warning("Recording storage unreachable: %s", error.__class__.__name__)
        raise ServiceUnavailable(
            "Recording storage is unreachable; check S3_ENDPOINT_URL.", kind="storage-unavailable"
        ) from error


def download_url(key: str, request_host_url: str = "") -> str:
    """A short-lived URL for the file: a presigned S3 URL, or a signed link to RTCstack itself."""
    if uses_s3():
        return guarded(lambda: recording_storage().url(key))
    token = signing.dumps(key, salt=DOWNLOAD_SALT)
    return request_host_url + reverse("recording-download", args=[token])


def key_from_download_token(token: str) -> str:
    return signing.loads(token, salt=DOWNLOAD_SALT, max_age=settings.RECORDING_URL_TTL_SECONDS)


def egress_upload() -> api.S3Upload | None:
    """The S3 destination handed to LiveKit egress; None lets egress use its own configured storage."""
    if not uses_s3():
        return None
    return api.S3Upload(
        access_key=settings.S3_ACCESS_KEY_ID,
        secret=settings.S3_SECRET_ACCESS_KEY,
        region=settings.S3_REGION,
        endpoint=settings.S3_ENDPOINT_URL,
        bucket=settings.S3_BUCKET,
        force_path_style=True,
    )
