"""The dashboard's WebSockets as a signed-in browser reaches them, and the segments the agent feeds them."""

from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from apps.transcription.models import Transcription
from rtcstack_site.asgi import application
from speech.livestore import SegmentEntry
from tests.conftest import support_staff_group


def session_cookie(*, support_staff: bool) -> bytes:
    """The session cookie of a signed-in staff user, with or without the dashboard permission."""
    user = get_user_model().objects.create_user("sam", "sam@example.com", "pw-for-tests-only", is_staff=True)
    if support_staff:
        user.groups.add(support_staff_group())
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


def connect(path: str, cookie: bytes | None, origin: bytes = b"http://127.0.0.1") -> WebsocketCommunicator:
    """A WebSocket client of the real ASGI application, as a browser on `origin` would connect."""
    headers = [(b"origin", origin), (b"host", b"127.0.0.1")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, path, headers=headers)


def segment_entry(transcription: Transcription, n: int, speaker_id: str = "alice") -> SegmentEntry:
    """Final segment `n` of `speaker_id`, as the agent writes it to the room's stream."""
    return SegmentEntry(
        transcription.id, f"{speaker_id}-{n}", speaker_id, speaker_id, n * 1000, n * 1000 + 900, f"Line {n}."
    )
