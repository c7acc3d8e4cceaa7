"""Forwards the agent's transient events (speaking, speaking_stopped, transcript_partial) to the dashboard.

The agent publishes them on a Redis channel per room (`speech.livestore.events_channel`); they are not
stored, so a relay that is down only loses indicators, never transcript lines (those come from the
persister, after they are in PostgreSQL). Runs on the process's dashboard loop (`events.submit`).
"""

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

from speech.livestore import client_db, events_channel

from .events import ROOMS_GROUP, room_group, send, speaking_key, submit

logger = logging.getLogger(__name__)

SPEAKING_TTL_SECONDS = 6 * 3600  # a crashed agent's "speaking" must not glow for ever
FORWARDED = {"speaking", "speaking_stopped", "transcript_partial"}


def start(should_stop: Callable[[], bool], **kwargs: Any) -> Future:
    """Receiver of transcription's `persister_started`: relay on the dashboard loop while the persister runs."""
    return submit(relay(settings.REDIS_URL, should_stop))


async def relay(url: str, should_stop: Callable[[], bool]) -> None:
    """Until `should_stop()`: subscribe to every room's events and push them to the room's group."""
    client = aioredis.Redis.from_url(url, socket_connect_timeout=2.0)
    pattern = events_channel("*", client_db(client))
    delay = 0.5
    try:
        while not should_stop():
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.psubscribe(pattern)
                    delay = 0.5
                    while not should_stop():
                        message = await pubsub.get_message(timeout=0.5)
                        if message is not None:
                            room = message["channel"].decode().removeprefix(pattern[:-1])
                            await forward(client, room, message["data"])
            except (redis.RedisError, OSError) as error:
                logger.warning("Dashboard relay: %s; reconnecting in %.1f s", error.__class__.__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
    finally:
        await client.aclose()


async def forward(client: aioredis.Redis, room: str, data: bytes) -> None:
    try:
        event = json.loads(data)
        kind = event["type"]
    except (ValueError, KeyError, TypeError):
        logger.warning("Dashboard relay: ignored an unreadable event for room %r", room)
        return
    if kind not in FORWARDED:
        return
    await send(room_group(room), [{**event, "roomId": room}])
    if kind == "transcript_partial":
        return
    key = speaking_key(room)
    speaker_id = str(event.get("speakerId", ""))
    if kind == "speaking":
        await client.hset(key, speaker_id, str(event.get("speaker") or speaker_id))
        await client.expire(key, SPEAKING_TTL_SECONDS)
    else:
        await client.hdel(key, speaker_id)
    speaking = [{"speakerId": k.decode(), "speaker": v.decode()} for k, v in (await client.hgetall(key)).items()]
    await send(ROOMS_GROUP, [{"type": "speaking_now", "roomId": room, "speaking": speaking}])
