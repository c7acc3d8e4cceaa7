"""The LiveKit side of the live agent: the ``stt-live`` worker, its job entrypoint, and one room's session.

``main`` runs LiveKit's own worker (livekit-agents): it registers with the LiveKit server under the agent name
``stt-live`` with explicit dispatch, so it only joins rooms the platform dispatches it to (CreateDispatch with
``{"transcriptionId", "roomId"}`` as job metadata). ``entrypoint`` is a thin wrapper; the behaviour is in
``load_session`` (should this job run at all?) and ``LiveSession`` (tracks in, messages out, when to leave),
which only need room-shaped objects, so they are tested without a LiveKit server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from livekit import rtc
from livekit.agents import AgentServer, AutoSubscribe, JobContext, JobProcess, cli
from redis.exceptions import RedisError

from envvars import ConfigError, env_port
from speech.client import WhisperClient
from speech.livestore import AgentStore, SessionRecord

from .config import AgentConfig
from .core import Emit, SessionCore, warm_up
from .sink import TranscriptionSink

logger = logging.getLogger(__name__)

AGENT_NAME = "stt-live"
SAMPLE_RATE = 16_000
POLL_SECONDS = 0.5
# Once the streams are closed, readers hand over what they already received; a stream that never ends is cut.
READER_DRAIN_SECONDS = 10.0
# How long a job process may take to finish after LiveKit asks it to stop (in-flight Whisper, Redis flush).
SHUTDOWN_GRACE_SECONDS = 90.0
# An idle job process loads and runs the in-process Whisper model once before it takes a job.
PREWARM_TIMEOUT_SECONDS = 120.0
# livekit-agents' health server port in production; 0 picks a free one (tests, several agents on one host).
HEALTH_PORT_ENV = "AGENT_HEALTH_PORT"
DEFAULT_HEALTH_PORT = 8081
WORKER_COMMANDS = {"start", "dev", "connect", "console"}
# A recorder or another agent alone in the room is not someone to transcribe.
NOT_SPEAKERS = {rtc.ParticipantKind.PARTICIPANT_KIND_AGENT, rtc.ParticipantKind.PARTICIPANT_KIND_EGRESS}

CoreFactory = Callable[[Emit], SessionCore]


class FrameStream(Protocol):
    """What ``rtc.AudioStream`` is to a reader: frame events until closed (``aclose`` ends the iteration)."""

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrameEvent]: ...

    async def aclose(self) -> None: ...


StreamOpener = Callable[[rtc.Track], FrameStream]


class LeaveRoomError(Exception):
    """This job should not run (bad metadata, no active session...): the message says why."""


@dataclass(frozen=True)
class JobMetadata:
    transcription_id: str
    room_id: str


def parse_metadata(raw: str) -> JobMetadata:
    try:
        data = json.loads(raw or "")
    except ValueError:
        raise LeaveRoomError("job metadata is not JSON") from None
    if not isinstance(data, dict):
        raise LeaveRoomError("job metadata is not a JSON object")
    transcription_id, room_id = data.get("transcriptionId"), data.get("roomId", "")
    if not isinstance(transcription_id, str) or not transcription_id:
        raise LeaveRoomError("job metadata has no transcriptionId")
    if not isinstance(room_id, str):
        raise LeaveRoomError("job metadata roomId is not a string")
    return JobMetadata(transcription_id, room_id)


async def load_session(store: AgentStore, raw_metadata: str, job_room: str) -> tuple[str, SessionRecord]:
    """The room's name and its session record, if this dispatch is for the room's active transcription."""
    metadata = parse_metadata(raw_metadata)
    if metadata.room_id and job_room and metadata.room_id != job_room:
        raise LeaveRoomError(f"dispatched to room {job_room!r} but the metadata names {metadata.room_id!r}")
    room = metadata.room_id or job_room
    try:
        record = await store.session(room)
    except (RedisError, OSError) as exc:
        raise LeaveRoomError(f"cannot read the session record: {exc}") from None
    if record is None:
        raise LeaveRoomError("no live transcription session for this room")
    if not record.active:
        raise LeaveRoomError(f"the transcription is {record.status}")
    if record.transcription_id != metadata.transcription_id:
        raise LeaveRoomError(
            f"dispatched for transcription {metadata.transcription_id}, the room's is {record.transcription_id}"
        )
    return room, record


def open_audio_stream(track: rtc.Track) -> rtc.AudioStream:
    """What the core expects: 16 kHz mono (LiveKit resamples)."""
    return rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)


def epoch_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class _Feed:
    """One subscribed audio track being read into the core."""

    track_id: str  # the track's sid: the core's id for it, which lk.transcription captions name
    participant: rtc.RemoteParticipant
    stream: FrameStream
    after: asyncio.Task[None] | None = None  # the same track's previous feed, still handing over its frames
    task: asyncio.Task[None] | None = None
    added: bool = False
    closing: bool = False
    helpers: set[asyncio.Task[None]] = field(default_factory=set)


class LiveSession:
    """One room's live transcription inside a job: audio tracks in, messages out, and when to leave.

    Every remote audio track (not other agents') is read at 16 kHz mono into the core under its participant's
    identity. The session record is polled: a speaker map change renames, a stop (or a newer transcription) ends
    the session, as do an empty room and a lost connection. A record that vanished (Redis lost its data) says
    nothing: the session goes on until the platform, which has it in PostgreSQL, writes it again. Ending means:
    stop reading, let the core finish every segment (so all finals reach Redis), flush the sink, then ``leave``.
    """

    def __init__(
        self,
        room: rtc.Room,
        store: AgentStore,
        room_name: str,
        record: SessionRecord,
        core_factory: CoreFactory,
        *,
        leave: Callable[[str], Any],
        empty_timeout: float,
        poll_seconds: float = POLL_SECONDS,
        open_stream: StreamOpener = open_audio_stream,
        clock_ms: Callable[[], int] = epoch_ms,
    ) -> None:
        self.room = room
        self.store = store
        self.room_name = room_name
        self.record = record
        self.transcription_id = record.transcription_id
        self.sink = TranscriptionSink(room.local_participant, store, room_name, record.transcription_id)
        self.core = core_factory(self.sink)
        self.leave = leave
        self.empty_timeout = empty_timeout
        self.poll_seconds = poll_seconds
        self.open_stream = open_stream
        self.clock_ms = clock_ms
        self.started_at_ms = record.started_at_ms or clock_ms()
        self.reason: str | None = None
        self._feeds: dict[str, _Feed] = {}
        self._names: dict[str, str] = {}  # speaker id → the name the core has
        self._known: dict[str, str] = {}  # speaker id → LiveKit participant name (also after they leave)
        self._ended = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._runner: asyncio.Task[str] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._handlers: dict[str, Callable[..., None]] = {
            "track_subscribed": self._on_track_subscribed,
            "track_unsubscribed": self._on_track_unsubscribed,
            "track_unpublished": self._on_track_unpublished,
            "participant_disconnected": self._on_participant_disconnected,
            "participant_name_changed": self._on_participant_name_changed,
            "disconnected": self._on_disconnected,
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Listen to the room, pick up tracks already subscribed, watch the session record."""
        for event, handler in self._handlers.items():
            self.room.on(event, handler)
        for participant in list(self.room.remote_participants.values()):
            for publication in list(participant.track_publications.values()):
                if publication.track is not None:
                    self._on_track_subscribed(publication.track, publication, participant)
        self._watcher = asyncio.create_task(self._watch(), name=f"watch:{self.room_name}")
        logger.info("transcribing room %s (transcription %s)", self.room_name, self.transcription_id)

    def launch(self) -> asyncio.Task[str]:
        """``run`` in the background (the job entrypoint returns; LiveKit keeps the job until ``leave``)."""
        self._runner = asyncio.create_task(self.run(), name=f"live:{self.room_name}")
        return self._runner

    async def run(self) -> str:
        """Until the session ends; then close and leave. Returns why it ended."""
        self.start()
        try:
            await self._ended.wait()
        finally:
            await self.close()
        reason = self.reason or "closed"
        logger.info("leaving room %s: %s", self.room_name, reason)
        self.leave(reason)
        return reason

    def end(self, reason: str) -> None:
        """Make ``run`` close and leave; the first reason given is the one reported."""
        if not self._ended.is_set():
            self.reason = reason
            self._ended.set()

    async def close(self) -> None:
        """Idempotent and safe to call concurrently (the run's end and the job's shutdown callback)."""
        if self._closer is None:
            self._closer = asyncio.create_task(self._close(), name=f"close:{self.room_name}")
        await asyncio.shield(self._closer)

    async def _close(self) -> None:
        for event, handler in self._handlers.items():
            self.room.off(event, handler)
        if self._watcher is not None:
            self._watcher.cancel()
        for feed in list(self._feeds.values()):
            self._stop_feed(feed)
        readers = {feed.task for feed in self._feeds.values() if feed.task is not None}
        if readers:
            _, stuck = await asyncio.wait(readers, timeout=READER_DRAIN_SECONDS)
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.wait(stuck)
        try:
            await self.core.aclose()
        except Exception:
            logger.exception("finishing the transcription of room %s failed", self.room_name)
        await self.sink.aclose()
        await self.store.close()
        logger.info("room %s: %d final segment(s) written to Redis", self.room_name, self.sink.writer.written)

    # ------------------------------------------------------------------ tracks

    def _on_track_subscribed(
        self, track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if self._closer is not None or track.kind != rtc.TrackKind.KIND_AUDIO:
            return
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            return
        previous = self._feeds.get(publication.sid)
        if previous is not None and not previous.closing:
            return
        feed = _Feed(publication.sid, participant, self.open_stream(track), previous.task if previous else None)
        self._feeds[feed.track_id] = feed
        self._known[participant.identity] = participant.name
        feed.task = asyncio.create_task(self._read(feed), name=f"track:{feed.track_id}")

    def _on_track_unsubscribed(
        self, track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        self._end_track(publication.sid)

    def _on_track_unpublished(
        self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        self._end_track(publication.sid)

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        for feed in list(self._feeds.values()):
            if feed.participant.identity == participant.identity:
                self._stop_feed(feed)

    def _on_participant_name_changed(self, participant: rtc.RemoteParticipant, old: str, new: str) -> None:
        self._known[participant.identity] = new
        self._refresh_names()

    def _on_disconnected(self, *_: Any) -> None:
        self.end("disconnected from the room")

    def _end_track(self, track_id: str) -> None:
        feed = self._feeds.get(track_id)
        if feed is not None:
            self._stop_feed(feed)

    def _stop_feed(self, feed: _Feed) -> None:
        """Close the stream: the reader drains what it already received, then ends the core's track."""
        if feed.closing:
            return
        feed.closing = True
        task = asyncio.create_task(feed.stream.aclose())
        feed.helpers.add(task)
        task.add_done_callback(feed.helpers.discard)

    async def _read(self, feed: _Feed) -> None:
        track_id, identity = feed.track_id, feed.participant.identity
        try:
            if feed.after is not None:  # re-subscribed before the last feed ended: one core track at a time
                await asyncio.wait({feed.after})
            async for event in feed.stream:
                frame = event.frame
                if not feed.added:
                    name = self._speaker_name(identity)
                    offset = max(0, self.clock_ms() - self.started_at_ms)
                    self.core.add_track(track_id, identity, name, start_offset_ms=offset)
                    self._names[identity] = name
                    feed.added = True
                    logger.info("room %s: reading track %s of %s at +%d ms", self.room_name, track_id, identity, offset)
                await self.core.push(track_id, np.frombuffer(frame.data, dtype=np.int16))
        except Exception:
            logger.exception("room %s: reading track %s of %s failed", self.room_name, track_id, identity)
        finally:
            self._stop_feed(feed)  # after a failure, stop LiveKit queueing frames nobody reads
            if self._feeds.get(track_id) is feed:
                del self._feeds[track_id]
            if feed.added:
                try:
                    await self.core.end_track(track_id)
                except Exception:
                    logger.exception("room %s: ending track %s failed", self.room_name, track_id)

    # ------------------------------------------------------------------ speakers and the session record

    def _speaker_name(self, identity: str) -> str:
        return self.record.speakers.get(identity) or self._known.get(identity) or identity

    def _refresh_names(self) -> None:
        for identity, current in list(self._names.items()):
            name = self._speaker_name(identity)
            if name != current:
                self.core.rename_speaker(identity, name)
                self._names[identity] = name

    def _speakers_present(self) -> bool:
        return any(p.kind not in NOT_SPEAKERS for p in self.room.remote_participants.values())

    def _verdict(self, record: SessionRecord) -> str | None:
        """Why the session is over according to its record, or None while it runs."""
        if record.transcription_id != self.transcription_id:
            return f"superseded by transcription {record.transcription_id}"
        if not record.active:
            return f"the transcription is {record.status}"
        return None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        empty_since: float | None = None
        known = True  # whether the last poll read a record (a change is logged)
        while True:
            try:
                record = await self.store.session(self.room_name)
                why = "the session record is missing (Redis lost its data?)"
            except (RedisError, OSError, ValueError) as exc:
                record, why = None, f"cannot read the session record ({exc})"
            if record is None:
                if known:
                    logger.warning("room %s: %s, carrying on", self.room_name, why)
                known = False
            else:
                known = True
                verdict = self._verdict(record)
                if verdict is not None:
                    self.end(verdict)
                    return
                if record.speakers != self.record.speakers:
                    self.record = record
                    self._refresh_names()
            if self._speakers_present():
                empty_since = None
            elif empty_since is None:
                empty_since = loop.time()
            elif loop.time() - empty_since >= self.empty_timeout:
                self.end(f"nobody in the room for {self.empty_timeout:g} s")
                return
            await asyncio.sleep(self.poll_seconds)


# ---------------------------------------------------------------------- the livekit-agents job and worker


async def run_job(
    ctx: JobContext, store: AgentStore, config: AgentConfig, core_factory: Callable[[SessionRecord], CoreFactory]
) -> LiveSession | None:
    """Join if the dispatch is for the room's active transcription, else leave at once (the store is closed)."""
    job_room = ctx.job.room.name
    try:
        room_name, record = await load_session(store, ctx.job.metadata, job_room)
    except LeaveRoomError as exc:
        logger.warning("not transcribing room %s: %s", job_room, exc)
        await store.close()
        ctx.shutdown(reason=str(exc))
        return None
    try:
        await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
    except BaseException:
        await store.close()
        raise
    live = LiveSession(
        ctx.room,
        store,
        room_name,
        record,
        core_factory(record),
        leave=lambda reason: ctx.shutdown(reason=reason),
        empty_timeout=config.room_empty_timeout_seconds,
    )
    ctx.add_shutdown_callback(live.close)
    live.launch()
    return live


def prewarm(proc: JobProcess) -> None:
    """Runs in each job process before it is given a job: the first Whisper call (model load) is not mid-call."""
    whisper = WhisperClient.from_env()
    warm_up(whisper)
    proc.userdata["whisper"] = whisper


async def entrypoint(ctx: JobContext) -> None:
    """One dispatch of ``stt-live`` to a room (runs in a job process)."""
    config = AgentConfig.from_env()
    if not config.redis_url:
        logger.error("REDIS_URL is not set: not transcribing room %s", ctx.job.room.name)
        ctx.shutdown(reason="REDIS_URL is not set")
        return
    whisper = ctx.proc.userdata.get("whisper") or WhisperClient.from_env()

    def for_record(record: SessionRecord) -> CoreFactory:
        def make(emit: Emit) -> SessionCore:
            return SessionCore(
                config,
                whisper,
                emit,
                language=record.language or None,
                partial_results=record.partial_results,
                transcription_id=record.transcription_id,
            )

        return make

    await run_job(ctx, AgentStore.from_url(config.redis_url), config, for_record)


def room_load(max_rooms: int) -> Callable[[AgentServer], float]:
    """The worker's load as LiveKit sees it: its running rooms out of AGENT_MAX_ROOMS (full at 1.0).

    Whisper's concurrency is bounded by WHISPER_MAX_CONCURRENT; what a worker takes on is a number of rooms, not
    a share of a host it may share with Whisper or the platform.
    """

    def load(server: AgentServer) -> float:
        return len(server.active_jobs) / max_rooms

    return load


def build_server() -> AgentServer:
    """LiveKit's worker, registered as ``stt-live``: explicit dispatch only (the platform's CreateDispatch)."""
    server = AgentServer(
        load_fnc=room_load(AgentConfig.from_env().max_rooms),
        load_threshold=1.0,
        port=env_port(HEALTH_PORT_ENV, DEFAULT_HEALTH_PORT),
        setup_fnc=prewarm,
        initialize_process_timeout=PREWARM_TIMEOUT_SECONDS,
        shutdown_process_timeout=SHUTDOWN_GRACE_SECONDS,
    )
    server.rtc_session(entrypoint, agent_name=AGENT_NAME)
    return server


def cli_arguments(argv: list[str]) -> list[str]:
    """No subcommand means production ``start`` (options alone, e.g. ``--log-level debug``, go to ``start``)."""
    if not argv or (argv[0].startswith("-") and argv[0] not in ("--help", "-h")):
        return ["start", *argv]
    return list(argv)


def main(argv: list[str]) -> None:
    """``python -m agent [start|dev|...]``: livekit-agents' CLI, reading LIVEKIT_URL / _API_KEY / _API_SECRET."""
    args = cli_arguments(argv)
    try:
        if args[0] in WORKER_COMMANDS:
            config = AgentConfig.from_env()
            WhisperClient.from_env()
            if not config.redis_url:
                sys.exit("python -m agent: REDIS_URL is not set; the live agent needs Redis to store final segments.")
        server = build_server()
    except ConfigError as exc:  # a bad setting, named in the message
        sys.exit(f"python -m agent: {exc}")
    sys.argv = [*sys.argv[:1], *args]
    cli.run_app(server)
