"""Where recording files live: django-storages' S3 backend, or local files as the embedded default."""

import logging
import os
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core import signing
from django.core.files.storage import Storage, storages
from django.urls import reverse
from livekit import api
from rest_framework.exceptions import ValidationError

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


def _is_key(key: str) -> bool:
    """Relative and normalised: no leading or trailing '/', no empty, '.' or '..' parts, no NUL."""
    return "\x00" not in key and not any(part in ("", ".", "..") for part in key.split("/"))


def check_key(key: str, field: str) -> str:
    """Every key RTCstack writes or accepts stays inside recording storage; else a 400 naming the input `field`."""
    if not _is_key(key):
        raise ValidationError(
            {
                field: [
                    f"The storage key {key!r} must be a relative path inside recording storage: no leading or "
                    "trailing '/', no empty, '.' or '..' parts, no NUL."
                ]
            }
        )
    return key


def is_file(key: str) -> bool:
    """True when `key` names a regular file: an object in S3; on local disk a file, not a directory."""
    if not _is_key(key):
        return False
    storage = recording_storage()
    try:
        local = storage.path(key)
    except NotImplementedError:  # an object store: keys name objects only
        return guarded(lambda: storage.exists(key))
    return os.path.isfile(local)


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
