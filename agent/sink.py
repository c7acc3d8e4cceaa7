"""Where the live agent's messages go: the room's LiveKit data channel, and Redis for the platform.

Every message is published on the data channel (topic ``transcription``) for the call's clients. Captions (final
and partial transcripts) also go out as LiveKit's own transcription text stream (``lk.transcription``), as
livekit-agents publishes a user's speech: one stream per caption, attributed to the speaker, naming the
transcribed track and the segment (shared by an utterance's partials and its final) and whether it is final, so
apps built on LiveKit's components show them. Final ``transcript`` messages are also appended to the room's Redis
stream, which is what ends up in PostgreSQL, so they must never be lost: they wait in an in-memory queue that a
background task drains in order, retrying with backoff while Redis is unreachable. Other kinds go to the room's
event channel for the dashboard, best-effort. The destinations fail independently: a LiveKit failure never holds
up a Redis write, nor the reverse, and the text stream never holds up the data message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable
from typing import Any, Protocol

from livekit.agents.types import (
    ATTRIBUTE_TRANSCRIPTION_FINAL,
    ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID,
    ATTRIBUTE_TRANSCRIPTION_TRACK_ID,
    TOPIC_TRANSCRIPTION,
)
from redis.exceptions import RedisError

from speech.livestore import AgentStore, SegmentEntry

from .messages import TRANSCRIPT, TRANSCRIPT_PARTIAL, Message, to_segment_entry

logger = logging.getLogger(__name__)

DATA_TOPIC = "transcription"
# The messages that are captions, with the value of their final flag on lk.transcription.
CAPTION_FINAL = {TRANSCRIPT: "true", TRANSCRIPT_PARTIAL: "false"}


class TextWriter(Protocol):
    """The part of ``rtc.TextStreamWriter`` the sink uses."""

    async def write(self, text: str) -> None: ...

    async def aclose(self) -> None: ...


class DataPublisher(Protocol):
    """The part of ``rtc.LocalParticipant`` the sink uses."""

    async def publish_data(self, payload: bytes, *, reliable: bool, topic: str) -> None: ...

    async def stream_text(
        self, *, topic: str, attributes: dict[str, str] | None, sender_identity: str | None
    ) -> TextWriter: ...


def caption_attributes(message: Message) -> dict[str, str] | None:
    """The attributes of the message's lk.transcription stream (None if it is no caption), as LiveKit's own."""
    final = CAPTION_FINAL.get(message.type)
    if final is None:
        return None
    attributes = {
        ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID: message.payload["segmentId"],
        ATTRIBUTE_TRANSCRIPTION_FINAL: final,
    }
    if message.track_id:  # livekit-agents leaves it out too when it knows no track
        attributes[ATTRIBUTE_TRANSCRIPTION_TRACK_ID] = message.track_id
    return attributes


class SegmentWriter:
    """Appends final segments to the room's stream in order; while Redis is down they queue and are retried."""

    def __init__(
        self, store: AgentStore, room: str, *, first_retry_seconds: float = 0.2, max_retry_seconds: float = 5.0
    ) -> None:
        self.store = store
        self.room = room
        self.first_retry_seconds = first_retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self._pending: deque[SegmentEntry] = deque()
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def put(self, entry: SegmentEntry) -> None:
        """Queue the entry and make sure the drain task runs; never blocks the caller on Redis."""
        self._pending.append(entry)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=f"segments:{self.room}")

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued entry is in Redis; False if some are still queued after ``timeout``."""
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=timeout)
        return not self._pending

    async def aclose(self, timeout: float = 30.0) -> None:
        """Flush, then stop. What Redis never took is logged in full (an operator can replay it), not dropped."""
        if not await self.flush(timeout) and self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            for entry in self._pending:
                logger.error(
                    "final segment NOT written to Redis (room %s): %s",
                    self.room,
                    json.dumps(entry.to_fields(), ensure_ascii=False),
                )
            self._pending.clear()

    async def _drain(self) -> None:
        delay = self.first_retry_seconds
        failures = 0
        while self._pending:
            entry = self._pending[0]
            try:
                await self.store.append_segment(self.room, entry)
            except (RedisError, OSError) as exc:
                failures += 1
                if failures == 1 or failures % 20 == 0:
                    logger.warning(
                        "Redis unavailable (%s): %d final segment(s) of room %s queued, retrying (attempt %d)",
                        exc,
                        len(self._pending),
                        self.room,
                        failures,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_seconds)
                continue
            self._pending.popleft()
            self.written += 1
            if failures:
                logger.info("Redis reachable again: room %s segments written after %d retries", self.room, failures)
                failures = 0
                delay = self.first_retry_seconds


class TranscriptionSink:
    """The core's ``emit``: data channel for every message, lk.transcription for captions, the durable stream for
    finals, events for the rest."""

    def __init__(
        self,
        publisher: DataPublisher,
        store: AgentStore,
        room: str,
        transcription_id: str,
        *,
        writer: SegmentWriter | None = None,
        publish_timeout_seconds: float = 5.0,
        event_queue_size: int = 256,
    ) -> None:
        self.publisher = publisher
        self.store = store
        self.room = room
        self.transcription_id = transcription_id
        self.writer = writer or SegmentWriter(store, room)
        self.publish_timeout_seconds = publish_timeout_seconds
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(event_queue_size)
        self._event_task: asyncio.Task[None] | None = None

    async def __call__(self, message: Message) -> None:
        if message.type == TRANSCRIPT:
            self._queue_segment(message)
        else:
            self._queue_event(message.payload)
        data = json.dumps(message.payload, ensure_ascii=False, separators=(",", ":")).encode()
        sends = [
            self._publish(
                f"a {message.type} message",
                self.publisher.publish_data(data, reliable=message.reliable, topic=DATA_TOPIC),
            )
        ]
        attributes = caption_attributes(message)
        if attributes is not None:
            sends.append(
                self._publish(f"a {message.type} on {TOPIC_TRANSCRIPTION}", self._stream_caption(message, attributes))
            )
        await asyncio.gather(*sends)

    async def aclose(self, timeout: float = 30.0) -> None:
        """Write every queued final (bounded by ``timeout``), give pending events a moment, stop."""
        await self.writer.aclose(timeout)
        if self._event_task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._events.join(), 1.0)
            self._event_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._event_task

    def _queue_segment(self, message: Message) -> None:
        try:
            entry = to_segment_entry(message, self.transcription_id)
        except (KeyError, TypeError, ValueError):
            logger.exception("final transcript cannot become a segment entry: %s", message.payload)
            return
        self.writer.put(entry)

    def _queue_event(self, payload: dict[str, Any]) -> None:
        """Events are for live indicators: when Redis lags they are stale anyway, so a full queue drops them."""
        try:
            self._events.put_nowait(payload)
        except asyncio.QueueFull:
            logger.debug("event queue full, dropped a %s event for room %s", payload.get("type"), self.room)
            return
        if self._event_task is None or self._event_task.done():
            self._event_task = asyncio.create_task(self._pump_events(), name=f"events:{self.room}")

    async def _pump_events(self) -> None:
        while True:
            payload = await self._events.get()
            try:
                await self.store.publish_event(self.room, payload)
            except (RedisError, OSError) as exc:
                logger.debug("event for room %s not published to Redis: %s", self.room, exc)
            finally:
                self._events.task_done()

    async def _stream_caption(self, message: Message, attributes: dict[str, str]) -> None:
        """One text stream per caption, sent on behalf of the speaker (LiveKit lets an agent do that)."""
        writer = await self.publisher.stream_text(
            topic=TOPIC_TRANSCRIPTION, attributes=attributes, sender_identity=message.payload["speakerId"]
        )
        await writer.write(message.payload["text"])
        await writer.aclose()

    async def _publish(self, what: str, sending: Awaitable[None]) -> None:
        try:
            await asyncio.wait_for(sending, self.publish_timeout_seconds)
        except Exception as exc:  # noqa: BLE001 - any LiveKit failure: the Redis side must carry on
            logger.warning("could not publish %s to room %s: %s", what, self.room, exc)
