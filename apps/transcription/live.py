"""Live transcription sessions: start (state + agent dispatch), speakers, stop, and storing the agent's segments.

State lives in PostgreSQL (the Transcription row) and, for the agent, in Redis (`speech.livestore`'s session
record). Segments travel agent → Redis stream → `persist` → PostgreSQL; the stream entry is only
acknowledged and deleted once its row is committed, and the unique segment key makes redelivery harmless.
PostgreSQL is the truth: `restore_sessions` rewrites what Redis lost (a restart without its data).
"""

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import orjson
import redis
from django.db import DataError, IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from livekit import api

from apps.core import livekit
from apps.core.problems import NotFound, Problem, ServiceUnavailable
from apps.core.redis import get_redis
from apps.rooms.services import active_room
from speech.livestore import ACTIVE_ROOMS, PERSIST_GROUP, SegmentEntry, SessionRecord, segments_key, session_key

from .models import LiveDeadLetter, Segment, Transcription
from .signals import live_segments_stored, live_session_changed

logger = logging.getLogger(__name__)

AGENT_NAME = "stt-live"
# After stop the agent still finishes its last utterances; the stopped record tells it to leave, then expires.
STOPPED_RECORD_TTL_SECONDS = 3600

# Entries as read from a stream: (entry id, fields); fields are empty for an entry deleted while pending.
Entries = list[tuple[bytes, dict[bytes, bytes]]]

# Rewrite a session record from PostgreSQL unless Redis knows better: only a missing record is written, or this
# transcription's record still saying active when PostgreSQL says stopped (a stop while Redis was unreachable).
# KEYS[1]: the record; ARGV: transcription id, status, TTL seconds (0: none), then the hash's fields and values.
RESTORE_SCRIPT = """
local current = redis.call('HGET', KEYS[1], 'transcriptionId')
if current and not (current == ARGV[1] and ARGV[2] ~= 'active'
                    and redis.call('HGET', KEYS[1], 'status') == 'active') then
    return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
if tonumber(ARGV[3]) > 0 then
    redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return 1
"""


def _redis() -> redis.Redis:
    client = get_redis()
    if client is None:
        raise ServiceUnavailable(
            "Live transcription needs Redis (set REDIS_URL): the agent hands its segments over through it.",
            kind="redis-not-configured",
        )
    return client


def _redis_call(operation: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"Redis is unreachable, so the live transcription could not {operation}.")


def active_live(room_id: str) -> Transcription | None:
    return Transcription.objects.filter(
        kind=Transcription.Kind.LIVE, room_name=room_id, status=Transcription.Status.ACTIVE
    ).first()


def latest_live(room_id: str) -> Transcription:
    """The room's active live transcription, else its most recent one."""
    found = active_live(room_id) or (
        Transcription.objects.filter(kind=Transcription.Kind.LIVE, room_name=room_id)
        .order_by("-started_at", "-queued_at")
        .first()
    )
    if found is None:
        raise NotFound(f"Room {room_id!r} has no live transcription.")
    return found


def session_record(transcription: Transcription) -> SessionRecord:
    return SessionRecord(
        transcription_id=transcription.id,
        status=transcription.status,
        language=transcription.language,
        partial_results=transcription.partial_results,
        started_at_ms=round(transcription.started_at.timestamp() * 1000),
        speakers=transcription.speakers,
    )


def _write_record(client: redis.Redis, transcription: Transcription) -> None:
    """An active record never expires (a record left from the room's last session must not pass on its TTL)."""
    key = session_key(transcription.room_name)
    with client.pipeline() as pipe:
        pipe.hset(key, mapping=session_record(transcription).to_hash())
        if transcription.status == Transcription.Status.ACTIVE:
            pipe.persist(key)
        else:
            pipe.expire(key, STOPPED_RECORD_TTL_SECONDS)
        pipe.execute()


def start(
    room_id: str, *, language: str = "", speakers: dict[str, str] | None = None, partial_results: bool = False
) -> tuple[Transcription, bool]:
    """Start transcribing a room live; returns (transcription, started). Idempotent per room."""
    client = _redis()
    existing = active_live(room_id)
    if existing is not None:
        return existing, False
    active_room(room_id)  # a clear 404 now, instead of a dispatch that waits for a room that is not there
    try:
        with transaction.atomic():
            transcription = Transcription.objects.create(
                kind=Transcription.Kind.LIVE,
                status=Transcription.Status.ACTIVE,
                room_name=room_id,
                language=language,
                speakers=speakers or {},
                partial_results=partial_results,
                started_at=timezone.now(),
            )
    except IntegrityError:  # another request started one at the same moment
        return active_live(room_id), False
    try:
        _write_record(client, transcription)
        open_stream(client, room_id)
    except redis.RedisError as error:
        transcription.delete()
        raise _redis_call("start") from error
    metadata = orjson.dumps({"transcriptionId": transcription.id, "roomId": room_id}).decode()
    try:
        dispatch = livekit.call(
            lambda lk: lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=AGENT_NAME, room=room_id, metadata=metadata)
            ),
            not_found=f"No active room {room_id!r} in LiveKit.",
        )
    except Problem:
        client.delete(session_key(room_id))
        transcription.delete()
        raise
    transcription.dispatch_id = dispatch.id
    transcription.save(update_fields=["dispatch_id"])
    announce(transcription)
    return transcription, True


def open_stream(client: redis.Redis, room_id: str) -> None:
    """Make sure the room's stream and the persister's group exist, and that the persister reads it."""
    try:
        client.xgroup_create(segments_key(room_id), PERSIST_GROUP, id="0", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise
    client.sadd(ACTIVE_ROOMS, room_id)


def update_speakers(transcription: Transcription, speakers: dict[str, str]) -> Transcription:
    """Rename participants: later segments (the agent rereads the record) and the ones already stored."""
    client = _redis()
    with transaction.atomic():
        transcription.speakers = {**transcription.speakers, **speakers}
        transcription.save(update_fields=["speakers"])
        for identity, name in speakers.items():
            transcription.segments.filter(speaker_id=identity).update(speaker=name)
    if transcription.status == Transcription.Status.ACTIVE:
        try:
            _write_record(client, transcription)
        except redis.RedisError as error:
            raise _redis_call("pass the new names to the agent") from error
    announce(transcription)
    return transcription


def stop(room_id: str) -> Transcription:
    """Flip the status (the agent finishes its last utterances and leaves) and store what has arrived."""
    client = _redis()
    transcription = active_live(room_id)
    if transcription is None:
        raise NotFound(f"Room {room_id!r} has no active live transcription.")
    transcription.status = Transcription.Status.STOPPED
    transcription.completed_at = timezone.now()
    transcription.save(update_fields=["status", "completed_at"])
    try:
        _write_record(client, transcription)
        drain(client, room_id)
    except redis.RedisError:
        logger.warning("Redis unreachable while stopping the live transcription of %s", room_id)
    if transcription.dispatch_id:
        _delete_dispatch(transcription)
    announce(transcription)
    return transcription


def announce(transcription: Transcription) -> None:
    """Tell whoever shows live sessions (the dashboard) once the change is committed."""
    transaction.on_commit(
        lambda: live_session_changed.send(sender=Transcription, transcription=transcription), robust=True
    )


def _delete_dispatch(transcription: Transcription) -> None:
    """Best effort: the agent leaves on its own when it sees the stopped record."""
    try:
        livekit.call(
            lambda lk: lk.agent_dispatch.delete_dispatch(transcription.dispatch_id, transcription.room_name),
            not_found="The dispatch is already gone.",
        )
    except Exception as error:  # noqa: BLE001 - the session is stopped either way
        logger.info("Could not delete agent dispatch %s: %s", transcription.dispatch_id, error)


def restore_sessions(client: redis.Redis) -> int:
    """Give Redis back what the agent and the persister need for every room PostgreSQL says is live.

    For each room's active session, or its session stopped less than `STOPPED_RECORD_TTL_SECONDS` ago (the agent
    may still be finishing): the session record if it is missing (see `RESTORE_SCRIPT`), and the stream's
    consumer group and registration. Returns how many records were rewritten.
    """
    recent = timezone.now() - timedelta(seconds=STOPPED_RECORD_TTL_SECONDS)
    sessions = Transcription.objects.filter(
        Q(status=Transcription.Status.ACTIVE) | Q(status=Transcription.Status.STOPPED, completed_at__gt=recent),
        kind=Transcription.Kind.LIVE,
    ).order_by("room_name", "-started_at")
    latest: dict[str, Transcription] = {}
    for transcription in sessions:
        latest.setdefault(transcription.room_name, transcription)  # the active one, else the last stopped
    script = client.register_script(RESTORE_SCRIPT)
    restored = 0
    for room, transcription in latest.items():
        ttl = 0
        if transcription.status != Transcription.Status.ACTIVE:
            stopped_for = timezone.now() - transcription.completed_at
            ttl = max(STOPPED_RECORD_TTL_SECONDS - int(stopped_for.total_seconds()), 1)
        fields = [item for pair in session_record(transcription).to_hash().items() for item in pair]
        restored += script(keys=[session_key(room)], args=[transcription.id, transcription.status, ttl, *fields])
        open_stream(client, room)
    if restored:
        logger.warning("Restored %d live session record(s) in Redis from PostgreSQL (Redis lost its data?)", restored)
    return restored


def store_entries(entries: Iterable[SegmentEntry]) -> int:
    """Insert the agent's segments; already stored ones (same segment id) are skipped. Returns how many were kept."""
    entries = list(entries)
    sessions = {
        t.id: t
        for t in Transcription.objects.filter(
            pk__in={e.transcription_id for e in entries}, kind=Transcription.Kind.LIVE
        )
    }
    rows = []
    for entry in entries:
        transcription = sessions.get(entry.transcription_id)
        if transcription is None:
            logger.warning("Dropped a live segment of unknown transcription %s", entry.transcription_id)
            continue
        rows.append(
            Segment(
                transcription=transcription,
                segment_key=entry.segment_id,
                start_ms=max(entry.start_ms, 0),
                end_ms=max(entry.end_ms, entry.start_ms, 0),
                text=entry.text,
                speaker_id=entry.speaker_id,
                speaker=transcription.speakers.get(entry.speaker_id, entry.speaker),
            )
        )
    with transaction.atomic():  # a savepoint when called inside a transaction: a refused batch spoils nothing
        Segment.objects.bulk_create(rows, ignore_conflicts=True)
    if live_segments_stored.has_listeners():
        for transcription in sessions.values():
            keys = [row.segment_key for row in rows if row.transcription_id == transcription.id]
            stored = list(transcription.segments.filter(segment_key__in=keys))
            live_segments_stored.send(sender=Transcription, transcription=transcription, segments=stored)
    return len(rows)


def persist(client: redis.Redis, room_id: str, entries: Entries) -> int:
    """Store entries read from the room's stream, then acknowledge and delete them. Returns how many were kept.

    An entry that cannot become a row (unreadable, or refused by PostgreSQL) goes to the dead letters, so it
    never holds up the others; a database that is down raises, and the batch is read again later.
    """
    if not entries:
        return 0
    readable: list[tuple[bytes, dict[bytes, bytes], SegmentEntry]] = []
    for entry_id, fields in entries:
        if not fields:  # deleted while pending (e.g. stored by a stop's drain): acknowledge only
            continue
        try:
            readable.append((entry_id, fields, SegmentEntry.from_fields(fields)))
        except (KeyError, ValueError) as error:
            _dead_letter(room_id, entry_id, fields, f"unreadable entry: {error!r}")
    try:
        stored = store_entries(entry for _, _, entry in readable)
    except (DataError, IntegrityError):
        stored = 0
        for entry_id, fields, entry in readable:  # one at a time, to find the entries PostgreSQL refuses
            try:
                stored += store_entries([entry])
            except (DataError, IntegrityError) as error:
                _dead_letter(room_id, entry_id, fields, str(error).strip())
    key = segments_key(room_id)
    ids = [entry_id for entry_id, _ in entries]
    client.xack(key, PERSIST_GROUP, *ids)
    client.xdel(key, *ids)
    return stored


def _dead_letter(room_id: str, entry_id: bytes, fields: dict[Any, Any], error: str) -> None:
    """Keep the entry for an operator (admin: Live dead letters); the log line names it without its text.

    The row itself must not be refused: NUL is removed from the columns and escaped in the JSON.
    """
    values = {_text(key): _text(value) for key, value in fields.items()}
    error = error.replace("\x00", "")
    LiveDeadLetter.objects.create(
        room_name=room_id,
        transcription_id=values.get("transcriptionId", "").replace("\x00", "")[:64],
        entry_id=entry_id.decode(),
        fields=orjson.dumps(values).decode(),
        error=error,
    )
    logger.error("Live segment %s of room %s moved to the dead letters: %s", entry_id.decode(), room_id, error)


def _text(value: bytes | str) -> str:
    return value.decode(errors="backslashreplace") if isinstance(value, bytes) else value


def drain(client: redis.Redis, room_id: str) -> int:
    """Store every entry currently in the room's stream (used at stop, beside the persister)."""
    stored = 0
    while entries := client.xrange(segments_key(room_id), count=500):
        stored += persist(client, room_id, entries)
    return stored


def live_segments(transcription: Transcription, since: int | None) -> QuerySet[Segment]:
    """Segments in transcript order; `since` is a cursor from an earlier response (segments stored after it)."""
    segments = transcription.segments.all()
    return segments if since is None else segments.filter(pk__gt=since)
