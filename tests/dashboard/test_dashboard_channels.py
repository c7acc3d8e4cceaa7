"""The dashboard's WebSockets through the real ASGI application (session auth, routing, origin check) on the
Redis channel layer: permission refusal, backlog on connect, then live segments and agent events."""

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.utils import timezone

from apps.core.redis import get_redis
from apps.dashboard.consumers import POLICY_VIOLATION
from apps.dashboard.relay import relay
from apps.transcription import live
from apps.transcription.models import Segment, Transcription
from speech.livestore import client_db, events_channel, segments_key
from tests.support.dashboard import connect, segment_entry, session_cookie
from tests.support.workers import live_persister

pytestmark = pytest.mark.django_db(transaction=True)


def live_session(room: str = "standup", **fields: Any) -> Transcription:
    return Transcription.objects.create(
        kind="live", status="active", room_name=room, started_at=timezone.now(), language="en", **fields
    )


async def receive(communicator: WebsocketCommunicator, timeout: float = 3) -> dict[str, Any]:
    return await communicator.receive_json_from(timeout=timeout)


async def receive_until(
    communicator: WebsocketCommunicator, match: Callable[[dict], bool], timeout: float = 3
) -> dict[str, Any]:
    """Skip other messages (e.g. the room summary that follows a segment) until one matches."""
    async with asyncio.timeout(timeout):
        while True:
            message = await communicator.receive_json_from(timeout=timeout)
            if match(message):
                return message


def publish(room: str, event: dict[str, Any]) -> None:
    """What the agent does with speaking and partial events (speech.livestore.AgentStore.publish_event)."""
    client = get_redis()
    client.publish(events_channel(room, client_db(client)), json.dumps(event))


def run(scenario: Callable[[], Any]) -> None:
    async_to_sync(scenario)()


def test_channel_layer_is_redis() -> None:
    assert type(get_channel_layer()).__name__ == "RedisChannelLayer"


@pytest.mark.parametrize("path", ["/ws/dashboard/rooms/", "/ws/dashboard/rooms/standup/"])
def test_without_the_permission_the_socket_closes_with_the_policy_code(path: str) -> None:
    live_session(speakers={"alice": "Alice"})
    cookies = {"anonymous": None, "staff without the permission": session_cookie(support_staff=False)}

    async def scenario() -> None:
        for cookie in cookies.values():
            communicator = connect(path, cookie)
            connected, _ = await communicator.connect()
            assert connected
            closed = await communicator.receive_output(timeout=3)
            assert closed == {"type": "websocket.close", "code": POLICY_VIOLATION}
            await communicator.disconnect()

    run(scenario)


def test_other_sites_cannot_open_the_socket() -> None:
    cookie = session_cookie(support_staff=True)

    async def scenario() -> None:
        communicator = connect("/ws/dashboard/rooms/", cookie, origin=b"https://evil.example")
        connected, _ = await communicator.connect()
        assert not connected

    run(scenario)


def test_room_page_gets_the_backlog_then_live_segments_and_agent_events() -> None:
    transcription = live_session(speakers={"alice": "Alice"}, partial_results=True)
    live.store_entries([segment_entry(transcription, 0), segment_entry(transcription, 1, "bob")])
    cookie = session_cookie(support_staff=True)
    stop = False

    async def scenario() -> None:
        nonlocal stop
        relaying = asyncio.ensure_future(relay(settings.REDIS_URL, lambda: stop))
        communicator = connect("/ws/dashboard/rooms/standup/", cookie)
        connected, _ = await communicator.connect()
        assert connected
        backlog = await receive(communicator)
        assert backlog["type"] == "backlog"
        assert backlog["session"]["transcriptionId"] == transcription.id
        assert backlog["session"]["speakers"] == {"alice": "Alice"}
        assert [(s["speaker"], s["text"], s["segmentId"]) for s in backlog["segments"]] == [
            ("Alice", "Line 0.", "alice-0"),
            ("bob", "Line 1.", "bob-1"),
        ]

        await sync_to_async(live.store_entries)([segment_entry(transcription, 2)])
        message = await receive_until(communicator, lambda m: m["type"] == "segment")
        assert message["segment"]["text"] == "Line 2."
        assert message["segment"]["speaker"] == "Alice"
        assert message["segment"]["seq"] > max(s["seq"] for s in backlog["segments"])

        await asyncio.sleep(0.3)  # the relay's subscription is up
        for event in (
            {"type": "speaking", "speakerId": "bob", "speaker": "Bob"},
            {"type": "transcript_partial", "speakerId": "bob", "speaker": "Bob", "text": "So far", "startMs": 5},
            {"type": "speaking_stopped", "speakerId": "bob", "speaker": "Bob"},
        ):
            await sync_to_async(publish)("standup", event)
            received = await receive_until(communicator, lambda m, kind=event["type"]: m["type"] == kind)
            assert received == {**event, "roomId": "standup"}
        stop = True
        await relaying
        await communicator.disconnect()

    run(scenario)


def test_late_viewer_sees_who_is_speaking_and_other_rooms_stay_out() -> None:
    live_session()
    live_session("other-room")
    cookie = session_cookie(support_staff=True)
    stop = False

    async def scenario() -> None:
        nonlocal stop
        relaying = asyncio.ensure_future(relay(settings.REDIS_URL, lambda: stop))
        await asyncio.sleep(0.3)
        await sync_to_async(publish)("standup", {"type": "speaking", "speakerId": "alice", "speaker": "Alice"})
        await asyncio.sleep(0.3)
        communicator = connect("/ws/dashboard/rooms/standup/", cookie)
        await communicator.connect()
        backlog = await receive(communicator)
        assert backlog["speaking"] == [{"speakerId": "alice", "speaker": "Alice"}]
        await sync_to_async(publish)("other-room", {"type": "speaking", "speakerId": "zed", "speaker": "Zed"})
        assert await communicator.receive_nothing(timeout=0.5)
        stop = True
        await relaying
        await communicator.disconnect()

    run(scenario)


def test_room_list_updates_live() -> None:
    first = live_session()
    cookie = session_cookie(support_staff=True)
    stop = False

    async def scenario() -> None:
        nonlocal stop
        relaying = asyncio.ensure_future(relay(settings.REDIS_URL, lambda: stop))
        communicator = connect("/ws/dashboard/rooms/", cookie)
        connected, _ = await communicator.connect()
        assert connected
        snapshot = await receive(communicator)
        assert snapshot["type"] == "rooms"
        assert [(r["roomId"], r["segmentCount"], r["speaking"]) for r in snapshot["rooms"]] == [("standup", 0, [])]

        await sync_to_async(live.store_entries)([segment_entry(first, 0)])
        update = await receive_until(communicator, lambda m: m["type"] == "room")
        assert (update["room"]["roomId"], update["room"]["segmentCount"]) == ("standup", 1)

        await asyncio.sleep(0.3)
        await sync_to_async(publish)("standup", {"type": "speaking", "speakerId": "alice", "speaker": "Alice"})
        speaking = await receive_until(communicator, lambda m: m["type"] == "speaking_now")
        assert speaking == {
            "type": "speaking_now",
            "roomId": "standup",
            "speaking": [{"speakerId": "alice", "speaker": "Alice"}],
        }

        def stop_session() -> None:
            first.status = Transcription.Status.STOPPED
            first.save()
            live.announce(first)

        await sync_to_async(stop_session)()
        stopped = await receive_until(communicator, lambda m: m["type"] == "room")
        assert (stopped["room"]["roomId"], stopped["room"]["status"]) == ("standup", "stopped")
        assert stopped["room"]["speaking"] == []
        stop = True
        await relaying
        await communicator.disconnect()

    run(scenario)
    assert Segment.objects.count() == 1


@pytest.mark.slow  # persister processes
def test_a_backlog_flushed_after_a_persister_restart_reaches_the_viewer_whole() -> None:
    """Hundreds of lines arrive at once when the persister comes back: every one must reach the open page."""
    transcription = live_session()
    client = get_redis()
    live.open_stream(client, "standup")
    backlog = 650  # what the agent wrote while the persister was down
    for n in range(backlog):
        client.xadd(segments_key("standup"), segment_entry(transcription, n).to_fields())
    cookie = session_cookie(support_staff=True)
    received: list[dict[str, Any]] = []

    async def scenario() -> None:
        communicator = connect("/ws/dashboard/rooms/standup/", cookie)
        connected, _ = await communicator.connect()
        assert connected
        assert (await receive(communicator))["segments"] == []
        with live_persister() as persister:
            async with asyncio.timeout(60):
                while len(received) < backlog:
                    message = await communicator.receive_json_from(timeout=30)
                    if message["type"] == "segment":
                        received.append(message["segment"])
            persister.terminate()
            persister.wait(timeout=20)
        await communicator.disconnect()

    run(scenario)
    assert [s["text"] for s in received] == [f"Line {n}." for n in range(backlog)]
    assert Segment.objects.count() == backlog
