"""What the dashboard's WebSockets receive: Channels groups and the messages pushed into them.

Every push goes through `push()`: one long-lived event loop per process (a daemon thread) owns the
channel layer's connections, so sync callers (the persister, views) neither block on nor reconnect
for each message. A group message carries a list of `payloads` (a stored batch of lines is one message,
however long the backlog), which consumers forward to the browser one by one, as is. Pushes leave a
process one at a time, in order (`send`): a burst waits its turn instead of exhausting the channel
layer's connection pool.
"""

import asyncio
import hashlib
import logging
import threading
import weakref
from collections.abc import Coroutine, Iterable
from concurrent.futures import Future
from functools import cache
from typing import Any

from channels.layers import get_channel_layer
from rest_framework import serializers

from apps.core.redis import get_redis
from apps.transcription.models import Segment, Transcription
from apps.transcription.serializers import LiveSegmentSerializer, LiveSessionSerializer
from speech.livestore import PREFIX

logger = logging.getLogger(__name__)

ROOMS_GROUP = "dashboard.rooms"
PUSH = "dashboard.push"  # the consumers' handler type


def room_group(room: str) -> str:
    """Group names allow only a few ASCII characters and 100 of them; room names allow anything."""
    return "dashboard.room." + hashlib.sha256(room.encode()).hexdigest()[:40]


@cache
def _loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="dashboard-push", daemon=True).start()
    return loop


def submit(coroutine: Coroutine[Any, Any, Any]) -> Future:
    """Run a coroutine on the process's dashboard loop (also used by the relay)."""
    return asyncio.run_coroutine_threadsafe(coroutine, _loop())


_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def send(group: str, payloads: list[dict[str, Any]]) -> None:
    """Send `payloads` to every WebSocket in `group`, after the pushes before it (a FIFO lock per event loop)."""
    turn = _turns.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with turn:
        await get_channel_layer().group_send(group, {"type": PUSH, "payloads": payloads})


def _report(future: Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.warning("Dashboard push failed: %s", future.exception().__class__.__name__)


def push(group: str, *payloads: dict[str, Any]) -> None:
    """Send `payloads` to every WebSocket in `group` without waiting (failures are logged: the backlog heals)."""
    submit(send(group, list(payloads))).add_done_callback(_report)


class DashboardSegmentSerializer(LiveSegmentSerializer):
    """The live API's segment plus the agent's segmentId, which its partial results carry too: the room page
    replaces a partial line with the final one of the same id."""

    segmentId = serializers.SerializerMethodField(method_name="get_segment_id")

    def get_segment_id(self, segment: Segment) -> str:
        return segment.segment_key or str(segment.pk)


def session_json(transcription: Transcription) -> dict[str, Any]:
    """The live API's session, with when it stopped."""
    return LiveSessionSerializer(transcription).data


def segments_json(segments: Iterable[Segment]) -> list[dict[str, Any]]:
    return DashboardSegmentSerializer(segments, many=True).data


def room_summary(transcription: Transcription, speaking: dict[str, str]) -> dict[str, Any]:
    return {
        **session_json(transcription),
        "segmentCount": transcription.segments.count(),
        "speaking": [{"speakerId": key, "speaker": name} for key, name in speaking.items()],
    }


def speaking_key(room: str) -> str:
    """Who is talking now in a room (speakerId → name), kept by the relay from the agent's events."""
    return f"{PREFIX}:speaking:{room}"


def speaking_now(room: str) -> dict[str, str]:
    client = get_redis()
    if client is None:
        return {}
    return {key.decode(): name.decode() for key, name in client.hgetall(speaking_key(room)).items()}


def session_changed(sender: Any, transcription: Transcription, **kwargs: Any) -> None:
    """Started, stopped or renamed speakers: the room page and the room list both update."""
    room = transcription.room_name
    if transcription.status != Transcription.Status.ACTIVE and (client := get_redis()) is not None:
        client.delete(speaking_key(room))
    push(room_group(room), {"type": "session", "session": session_json(transcription)})
    push(ROOMS_GROUP, {"type": "room", "room": room_summary(transcription, speaking_now(room))})


def segments_stored(sender: Any, transcription: Transcription, segments: list[Segment], **kwargs: Any) -> None:
    """One push per stored batch, however many lines (a persister catching up stores hundreds at once)."""
    room = transcription.room_name
    if segments:
        rendered = segments_json(segments)
        push(room_group(room), *({"type": "segment", "roomId": room, "segment": segment} for segment in rendered))
    push(ROOMS_GROUP, {"type": "room", "room": room_summary(transcription, speaking_now(room))})
