"""The storage check and the recording capability of GET /v1/health, registered in RecordingsConfig.ready()."""

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from apps.core.health import OK, UNREACHABLE

from .storage import recording_storage, uses_s3

logger = logging.getLogger(__name__)


def check_storage() -> str:
    """Recording storage answers (S3: a HEAD on a probe key; local: the folder is writable)."""
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
    except Exception as exc:  # noqa: BLE001 - health reports any failure
        logger.warning("Health: storage check failed: %s", exc.__class__.__name__)
        return UNREACHABLE


def recording_available(checks: Mapping[str, str]) -> bool:
    """LiveKit's egress records, and the file lands in storage."""
    return checks["livekit"] == OK and checks["storage"] == OK
