"""Dependency checks for GET /v1/health. Each check reports; none raises."""

import logging
import os
from collections.abc import Callable
from pathlib import Path

import requests
from django.conf import settings
from django.db import connection

from .redis import get_redis

logger = logging.getLogger(__name__)

OK = "ok"
NOT_CONFIGURED = "not_configured"
UNREACHABLE = "unreachable"
HTTP_TIMEOUT_SECONDS = 1.5


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return OK
    except Exception as exc:  # noqa: BLE001 - health reports any failure
        logger.warning("Health: database check failed: %s", exc.__class__.__name__)
        return UNREACHABLE


def check_redis() -> str:
    client = get_redis()
    if client is None:
        return NOT_CONFIGURED
    try:
        client.ping()
        return OK
    except Exception as exc:  # noqa: BLE001
        logger.warning("Health: Redis check failed: %s", exc.__class__.__name__)
        return UNREACHABLE


def _check_http(base_url: str, path: str) -> str:
    if not base_url:
        return NOT_CONFIGURED
    try:
        response = requests.get(base_url.rstrip("/") + path, timeout=HTTP_TIMEOUT_SECONDS)
    except requests.RequestException:
        return UNREACHABLE
    return OK if response.status_code < 500 else UNREACHABLE


def check_livekit() -> str:
    return _check_http(settings.LIVEKIT_URL, "/")


def check_whisper() -> str:
    """The Whisper service when WHISPER_URL is set; else whether the in-process engine's model is on disk."""
    if settings.WHISPER_URL:
        return _check_http(settings.WHISPER_URL, "/health")
    from apps.transcription.engine import WhisperConfig

    model = WhisperConfig.from_env().model
    return OK if Path(model).is_dir() else UNREACHABLE


def check_storage() -> str:
    """Recording storage answers (S3: a HEAD on a probe key; local: the folder is writable)."""
    from apps.recordings.storage import recording_storage, uses_s3

    storage = recording_storage()
    try:
        if uses_s3():
            storage.exists("rtcstack-health-probe")
        else:
            location = Path(storage.location)
            location.mkdir(parents=True, exist_ok=True)
            if not os.access(location, os.W_OK):
                return UNREACHABLE
        return OK
    except Exception as exc:  # noqa: BLE001
        logger.warning("Health: storage check failed: %s", exc.__class__.__name__)
        return UNREACHABLE


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "redis": check_redis,
    "livekit": check_livekit,
    "storage": check_storage,
    "whisper": check_whisper,
}
# A deployment cannot serve /v1 without these; the others only limit features.
ESSENTIAL = ("database", "redis")


def report() -> tuple[dict, bool]:
    checks = {name: check() for name, check in CHECKS.items()}
    healthy = all(checks[name] in (OK, NOT_CONFIGURED) for name in ESSENTIAL)
    degraded = any(state == UNREACHABLE for state in checks.values())
    capabilities = {
        # The agent itself registers with LiveKit, not with us: live needs LiveKit and the Redis hand-over.
        "transcriptionLive": checks["livekit"] == OK and checks["redis"] == OK,
        "transcriptionPost": checks["whisper"] == OK,
        "recording": checks["livekit"] == OK and checks["storage"] == OK,
    }
    status = "error" if not healthy else ("degraded" if degraded else "ok")
    return {"status": status, "checks": checks, "capabilities": capabilities}, healthy
