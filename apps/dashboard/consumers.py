"""The dashboard's WebSockets: one per room page (backlog, then every live event), one for the room list.

Both join their group before reading the snapshot, so nothing published in between is missed; a line
can then arrive twice (in the snapshot and as an event), which the page drops by its `segmentId`.
"""

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.transcription.models import Transcription

from . import events

PERMISSION = "transcription.view_live_transcript"
POLICY_VIOLATION = 1008  # RFC 6455: the close code for "not allowed"


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    """Login and the permission first; then the group, the snapshot, and events as they come."""

    group: str

    async def connect(self) -> None:
        user = self.scope.get("user")
        allowed = user is not None and user.is_authenticated and await database_sync_to_async(user.has_perm)(PERMISSION)
        await self.accept()
        if not allowed:
            await self.close(code=POLICY_VIOLATION)
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_json(await database_sync_to_async(self.snapshot)())

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The dashboard only listens; a client message is ignored."""

    async def dashboard_push(self, message: dict[str, Any]) -> None:
        for payload in message["payloads"]:
            await self.send_json(payload)

    def snapshot(self) -> dict[str, Any]:
        raise NotImplementedError


class RoomTranscriptConsumer(DashboardConsumer):
    """`/ws/dashboard/rooms/<room>/`: the room's latest live session and its transcript so far."""

    async def connect(self) -> None:
        self.room = self.scope["url_route"]["kwargs"]["room"]
        if "\x00" in self.room:  # no room name holds a NUL, and PostgreSQL refuses to look one up: refuse the socket
            await self.close()
            return
        self.group = events.room_group(self.room)
        await super().connect()

    def snapshot(self) -> dict[str, Any]:
        session = (
            Transcription.objects.filter(kind=Transcription.Kind.LIVE, room_name=self.room)
            .order_by("-started_at")
            .first()
        )
        speaking = events.speaking_now(self.room) if session and session.status == Transcription.Status.ACTIVE else {}
        return {
            "type": "backlog",
            "roomId": self.room,
            "session": events.session_json(session) if session else None,
            "segments": events.segments_json(session.segments.all()) if session else [],
            "speaking": [{"speakerId": key, "speaker": name} for key, name in speaking.items()],
        }


class RoomListConsumer(DashboardConsumer):
    """`/ws/dashboard/rooms/`: rooms with an active live transcription, kept up to date."""

    group = events.ROOMS_GROUP

    def snapshot(self) -> dict[str, Any]:
        active = Transcription.objects.filter(kind=Transcription.Kind.LIVE, status=Transcription.Status.ACTIVE)
        return {
            "type": "rooms",
            "rooms": [events.room_summary(t, events.speaking_now(t.room_name)) for t in active.order_by("started_at")],
        }
