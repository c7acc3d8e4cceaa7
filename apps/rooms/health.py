"""The LiveKit check of GET /v1/health, registered in RoomsConfig.ready()."""

from django.conf import settings

from apps.core.health import check_http


def check_livekit() -> str:
    return check_http(settings.LIVEKIT_URL, "/")
