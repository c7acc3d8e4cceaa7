"""The Whisper check and the transcription capabilities of GET /v1/health, registered in
TranscriptionConfig.ready()."""

import logging
from collections.abc import Mapping
from pathlib import Path

from django.conf import settings

from apps.core.health import OK, UNREACHABLE, check_http

logger = logging.getLogger(__name__)


def check_whisper() -> str:
    """The Whisper service when WHISPER_URL is set; else whether the in-process engine's model is on disk."""
    if settings.WHISPER_URL:
        return check_http(settings.WHISPER_URL, "/health")
    from speech.engine import WhisperConfig

    try:
        model = WhisperConfig.from_env().model
    except ValueError:  # a bad WHISPER_* setting: the health answer reports it down rather than failing
        logger.exception("the Whisper settings are invalid")
        return UNREACHABLE
    return OK if Path(model).is_dir() else UNREACHABLE


def live_available(checks: Mapping[str, str]) -> bool:
    """The agent itself registers with LiveKit, not with us: live needs LiveKit and the Redis hand-over."""
    return checks["livekit"] == OK and checks["redis"] == OK


def post_call_available(checks: Mapping[str, str]) -> bool:
    return checks["whisper"] == OK
