"""The Redis contract between the platform and the live agent: key names, the session record, segment entries.

The platform writes the session record when a live transcription starts (and rewrites it on speaker changes
and stop); the agent reads it. The agent appends every final segment to the room's stream and publishes its
other messages (speaking, speaking_stopped, transcript_partial) on the room's event channel; the platform
persists the stream to PostgreSQL through a consumer group, so an entry stays pending until it is stored.
Both sides import this module (it has no Django and no LiveKit imports).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import redis
import redis.asyncio as aioredis

PREFIX = "rtcstack:live"
ACTIVE_ROOMS = f"{PREFIX}:rooms"  # set of room names whose streams the persister reads
PERSIST_GROUP = "persister"  # the platform's consumer group on every segment stream
# What PostgreSQL stores (the Segment columns): longer names are clipped, other entries are refused.
NAME_MAX_CHARS = 256
SEGMENT_ID_MAX_CHARS = 128
MAX_MS = 2**31 - 1


def session_key(room: str) -> str:
    return f"{PREFIX}:session:{room}"


def segments_key(room: str) -> str:
    return f"{PREFIX}:segments:{room}"


def events_channel(room: str, db: int) -> str:
    """Pub/sub ignores Redis database numbers, so the channel names the database the platform uses."""
    return f"{PREFIX}:db{db}:events:{room}"


def client_db(client: redis.Redis | aioredis.Redis) -> int:
    """The database number a client (sync or asyncio) was configured with."""
    return int(client.connection_pool.connection_kwargs.get("db") or 0)


@dataclass
class SessionRecord:
    """What the agent needs to know about a room's live transcription (a Redis hash)."""

    transcription_id: str
    status: str  # "active" or "stopped"
    language: str = ""  # "" = the agent's default (STT_LANGUAGE)
    partial_results: bool = False
    started_at_ms: int = 0  # epoch ms: segment times are ms since this moment
    speakers: dict[str, str] = field(default_factory=dict)  # participant identity → display name

    @property
    def active(self) -> bool:
        return self.status == "active"

    def to_hash(self) -> dict[str, str]:
        return {
            "transcriptionId": self.transcription_id,
            "status": self.status,
            "language": self.language,
            "partialResults": "1" if self.partial_results else "0",
            "startedAtMs": str(self.started_at_ms),
            "speakers": json.dumps(self.speakers, ensure_ascii=False),
        }

    @classmethod
    def from_hash(cls, data: dict[bytes | str, bytes | str]) -> SessionRecord | None:
        if not data:
            return None
        values = {_text(key): _text(value) for key, value in data.items()}
        return cls(
            transcription_id=values.get("transcriptionId", ""),
            status=values.get("status", "stopped"),
            language=values.get("language", ""),
            partial_results=values.get("partialResults") == "1",
            started_at_ms=int(values.get("startedAtMs") or 0),
            speakers=json.loads(values.get("speakers") or "{}"),
        )


@dataclass(frozen=True)
class SegmentEntry:
    """One final segment as it travels through the room's stream (field names match the wire payload)."""

    transcription_id: str
    segment_id: str  # unique within the transcription: the platform's idempotency key
    speaker_id: str
    speaker: str
    start_ms: int
    end_ms: int
    text: str
    language: str = ""

    def to_payload(self) -> dict[str, str | int]:
        """The fields under their wire names, in the order of the agent's ``transcript`` message (SPEC §7)."""
        return {
            "text": self.text,
            "speakerId": self.speaker_id,
            "speaker": self.speaker,
            "startMs": self.start_ms,
            "endMs": self.end_ms,
            "segmentId": self.segment_id,
            "language": self.language,
            "transcriptionId": self.transcription_id,
        }

    def to_fields(self) -> dict[str, str]:
        """The stream entry: the wire payload with every value a string (what XADD stores)."""
        return {name: str(value) for name, value in self.to_payload().items()}

    @classmethod
    def from_payload(cls, values: Mapping[str, Any]) -> SegmentEntry:
        """The entry a wire payload (or a stream entry's decoded fields) describes, not cleaned; KeyError if one is
        missing."""
        return cls(
            transcription_id=values["transcriptionId"],
            segment_id=values["segmentId"],
            speaker_id=values.get("speakerId", ""),
            speaker=values.get("speaker", ""),
            start_ms=int(values["startMs"]),
            end_ms=int(values["endMs"]),
            text=values["text"],
            language=values.get("language", ""),
        )

    @classmethod
    def from_fields(cls, data: dict[bytes | str, bytes | str]) -> SegmentEntry:
        """The entry as PostgreSQL can store it; ValueError (KeyError for a missing field) if it cannot be."""
        entry = cls.from_payload({_text(key): _text(value) for key, value in data.items()}).cleaned()
        if not entry.transcription_id:
            raise ValueError("the transcription id is empty")
        if not 0 < len(entry.segment_id) <= SEGMENT_ID_MAX_CHARS:
            raise ValueError(f"the segment id must have 1 to {SEGMENT_ID_MAX_CHARS} characters")
        if not (0 <= entry.start_ms <= MAX_MS and 0 <= entry.end_ms <= MAX_MS):
            raise ValueError(f"segment times must be 0 to {MAX_MS} ms")
        return entry

    def cleaned(self) -> SegmentEntry:
        """Without NUL characters (PostgreSQL text refuses them) and with names clipped to the columns' size."""
        return replace(
            self,
            transcription_id=_no_nul(self.transcription_id),
            segment_id=_no_nul(self.segment_id),
            speaker_id=_no_nul(self.speaker_id)[:NAME_MAX_CHARS],
            speaker=_no_nul(self.speaker)[:NAME_MAX_CHARS],
            text=_no_nul(self.text),
            language=_no_nul(self.language),
        )


class AgentStore:
    """The agent's side: read the session record, append final segments, publish transient events."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    @classmethod
    def from_url(cls, url: str) -> AgentStore:
        return cls(aioredis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=5.0))

    async def session(self, room: str) -> SessionRecord | None:
        return SessionRecord.from_hash(await self.client.hgetall(session_key(room)))

    async def append_segment(self, room: str, entry: SegmentEntry) -> str:
        """XADD the segment (never trimmed here: the persister deletes entries once they are in PostgreSQL)."""
        entry_id = await self.client.xadd(segments_key(room), entry.to_fields())
        return _text(entry_id)

    async def publish_event(self, room: str, message: dict[str, Any]) -> None:
        channel = events_channel(room, client_db(self.client))
        await self.client.publish(channel, json.dumps(message, ensure_ascii=False))

    async def close(self) -> None:
        await self.client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _no_nul(value: str) -> str:
    return value.replace("\x00", "")
