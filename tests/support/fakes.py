"""Test doubles shared by several test files: a webhook receiver (a real HTTP server on loopback) and the
LiveKit-shaped objects the live agent's LiveSession runs on (``rtc.Room``, participants, publications, tracks,
audio streams, the job context), with a recording stand-in for the transcription core and for Whisper.

Only LiveKit and Whisper are stood in for; Redis is the machine's real one (the test settings' REDIS_URL).
"""

import asyncio
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import numpy as np
from django.conf import settings
from livekit import rtc
from livekit.agents import AutoSubscribe
from livekit.rtc.participant import PublishDataError

from agent import messages, worker
from speech.livestore import AgentStore, SessionRecord
from speech.transcript import Segment, Transcript

ROOM = "room-1"
TRANSCRIPTION = "tr-1"
STARTED_AT_MS = 1_700_000_000_000
AUDIO = rtc.TrackKind.KIND_AUDIO
STANDARD = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD


class Receiver:
    """A real HTTP receiver on 127.0.0.1 that answers with a script of status codes (the last one repeats)."""

    def __init__(self, statuses: list[int], *, delay: float = 0, headers: dict[str, str] | None = None) -> None:
        self.statuses = list(statuses)
        self.delay = delay
        self.extra_headers = headers or {}
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append(
                        {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                    )
                    index = len(receiver.requests) - 1
                    status = receiver.statuses[min(index, len(receiver.statuses) - 1)]
                time.sleep(receiver.delay)
                reply = json.dumps({"received": index + 1}).encode()
                self.send_response(status)
                for name, value in receiver.extra_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/rtc?tenant=7"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------- the live agent's LiveKit side


def store() -> AgentStore:
    """The agent's store on the test Redis, as the worker opens it."""
    return AgentStore.from_url(settings.REDIS_URL)


def final(index: int = 0, **overrides) -> messages.Message:
    """Final transcript `index` of Bob's track, one second apart; `overrides` replace any field."""
    fields = dict(
        text=f"Segment number {index}.",
        speaker_id="bob",
        speaker="Bob",
        start_ms=1000 * index,
        end_ms=1000 * index + 800,
        segment_id=f"TR_B-{1000 * index}",
        language="en",
        transcription_id=TRANSCRIPTION,
    )
    fields.update(overrides)
    return messages.transcript(**fields)


@dataclass
class RecordedStream:
    """A text stream the fake participant sent: its header (topic, attributes, sender) and what was written."""

    topic: str
    attributes: dict[str, str]
    sender_identity: str
    text: str = ""
    closed: bool = False


class RecordingTextWriter:
    """``rtc.TextStreamWriter``: what is written is kept; the stream is recorded as delivered when it is closed."""

    def __init__(self, owner: "RecordingParticipant", stream: RecordedStream) -> None:
        self.owner, self.stream = owner, stream

    async def write(self, text: str) -> None:
        if self.owner.stream_failure == "write":
            raise rtc.StreamError("engine is closed")
        self.stream.text += text

    async def aclose(self, *, reason: str = "", attributes: dict[str, str] | None = None) -> None:
        if self.stream.closed:
            raise RuntimeError("Stream already closed")
        self.stream.closed = True
        self.owner.streams.append(self.stream)
        self.owner.stream_closed.set()


class RecordingParticipant:
    """``rtc.LocalParticipant``'s ``publish_data``, ``stream_text`` and ``send_text`` as the sink calls them.

    ``fail`` makes all of them raise as LiveKit's do when the engine is closed; ``stream_failure`` only the text
    streams: ``"open"`` (the header), ``"write"`` or ``"hang"`` (the header never acknowledged). ``streams`` lists
    the text streams in the order they were closed, i.e. delivered whole.
    """

    def __init__(self, fail: bool = False, *, identity: str = "agent-stt", stream_failure: str = "") -> None:
        self.fail = fail
        self.identity = identity
        self.stream_failure = "open" if fail else stream_failure
        self.sent: list[tuple[bytes, bool, str]] = []
        self.streams: list[RecordedStream] = []
        self.stream_closed = asyncio.Event()

    async def publish_data(self, payload, *, reliable=True, destination_identities=(), topic=""):
        if self.fail:
            raise PublishDataError("engine is closed")
        self.sent.append((payload, reliable, topic))

    async def stream_text(
        self,
        *,
        destination_identities=None,
        topic="",
        attributes=None,
        stream_id=None,
        reply_to_id=None,
        total_size=None,
        sender_identity=None,
    ) -> RecordingTextWriter:
        if self.stream_failure == "open":
            raise rtc.StreamError("engine is closed")
        if self.stream_failure == "hang":
            await asyncio.Event().wait()
        stream = RecordedStream(topic, dict(attributes or {}), sender_identity or self.identity)
        return RecordingTextWriter(self, stream)

    async def send_text(
        self, text, *, destination_identities=None, topic="", attributes=None, reply_to_id=None, compress=True
    ) -> None:
        writer = await self.stream_text(topic=topic, attributes=attributes)
        await writer.write(text)
        await writer.aclose()

    def payloads(self) -> list[dict]:
        return [json.loads(payload) for payload, _, _ in self.sent]

    async def next_stream(self, after: int = 0, timeout: float = 5.0) -> RecordedStream:
        """The text stream delivered after the first ``after`` ones, waiting for it."""
        while len(self.streams) <= after:
            self.stream_closed.clear()
            await asyncio.wait_for(self.stream_closed.wait(), timeout)
        return self.streams[after]


class FakeTrack:
    def __init__(self, sid: str, kind: int) -> None:
        self.sid, self.kind = sid, kind


class FakePublication:
    def __init__(self, track: FakeTrack) -> None:
        self.sid, self.kind, self.track = track.sid, track.kind, track


class FakeParticipant:
    def __init__(self, identity: str, name: str = "", kind: int = STANDARD) -> None:
        self.identity, self.name, self.kind = identity, name, kind
        self.sid = f"PA_{identity}"
        self.track_publications: dict[str, FakePublication] = {}


class FakeRoom(rtc.EventEmitter):
    """The ``rtc.Room`` surface LiveSession uses, with livekit's own EventEmitter (on / off / emit)."""

    def __init__(self) -> None:
        super().__init__()
        self.remote_participants: dict[str, FakeParticipant] = {}
        self.local_participant = RecordingParticipant()

    def join(self, identity: str, name: str = "", kind: int = STANDARD) -> FakeParticipant:
        participant = FakeParticipant(identity, name, kind)
        self.remote_participants[identity] = participant
        self.emit("participant_connected", participant)
        return participant

    def publish(self, participant: FakeParticipant, sid: str, kind: int = AUDIO, *, announce: bool = True):
        """Published and subscribed (``announce=False``: already so when the session starts, no event)."""
        publication = FakePublication(FakeTrack(sid, kind))
        participant.track_publications[sid] = publication
        if announce:
            self.emit("track_subscribed", publication.track, publication, participant)
        return publication

    def leave(self, participant: FakeParticipant) -> None:
        del self.remote_participants[participant.identity]
        self.emit("participant_disconnected", participant)


class FakeAudioStream:
    """``rtc.AudioStream`` as its reader sees it: AudioFrameEvents; ``aclose`` ends it after the queued frames."""

    def __init__(self, track: FakeTrack) -> None:
        self.track = track
        self.queue: asyncio.Queue = asyncio.Queue()
        self.closed = False

    def send(self, samples: np.ndarray) -> None:
        frame = rtc.AudioFrame(samples.astype(np.int16).tobytes(), 16_000, 1, len(samples))
        self.queue.put_nowait(rtc.AudioFrameEvent(frame))

    def __aiter__(self):
        return self

    async def __anext__(self):
        event = await self.queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


class FakeCore:
    """Records what LiveSession asks of the core; ``on_close`` messages are emitted by ``aclose`` (last finals)."""

    def __init__(self, emit) -> None:
        self.emit = emit
        self.calls: list[tuple] = []
        self.pushed: dict[str, list[np.ndarray]] = defaultdict(list)
        self.on_close: list[messages.Message] = []

    def add_track(self, track_id, speaker_id, speaker, start_offset_ms=0):
        self.calls.append(("add_track", track_id, speaker_id, speaker, start_offset_ms))

    async def push(self, track_id, samples):
        self.pushed[track_id].append(samples)

    async def end_track(self, track_id):
        self.calls.append(("end_track", track_id))

    def rename_speaker(self, speaker_id, speaker):
        self.calls.append(("rename_speaker", speaker_id, speaker))

    async def aclose(self):
        self.calls.append(("aclose",))
        for message in self.on_close:
            await self.emit(message)

    def named(self, kind: str) -> list[tuple]:
        return [call for call in self.calls if call[0] == kind]


class Harness:
    """A LiveSession on a FakeRoom with a FakeCore, a recording ``leave`` and fake streams by track sid."""

    def __init__(self, record: SessionRecord, *, empty_timeout: float = 30.0, core_factory=None) -> None:
        self.room = FakeRoom()
        self.streams: dict[str, FakeAudioStream] = {}
        self.left: list[str] = []
        self.store = store()
        self.session = worker.LiveSession(
            self.room,
            self.store,
            ROOM,
            record,
            core_factory or FakeCore,
            leave=self.left.append,
            empty_timeout=empty_timeout,
            poll_seconds=0.05,
            open_stream=self.open_stream,
            clock_ms=lambda: STARTED_AT_MS + 1234,
        )
        self.core = self.session.core
        self.task: asyncio.Task | None = None

    def open_stream(self, track: FakeTrack) -> FakeAudioStream:
        self.streams[track.sid] = FakeAudioStream(track)
        return self.streams[track.sid]

    def launch(self) -> None:
        self.task = self.session.launch()

    async def finished(self, timeout: float = 5.0) -> str:
        assert self.task is not None
        return await asyncio.wait_for(self.task, timeout)


class FakeWhisper:
    """The WhisperClient surface the core calls (from a worker thread)."""

    remote = True

    def __init__(self) -> None:
        self.calls = 0

    def transcribe(self, audio, **options) -> Transcript:
        self.calls += 1
        return Transcript(language="en", duration=len(audio) / 16_000, segments=[Segment(0.0, 1.0, " hello there")])


class FakeJobContext:
    """The ``JobContext`` surface ``run_job`` uses."""

    def __init__(self, metadata: str, room_name: str = ROOM) -> None:
        self.job = SimpleNamespace(metadata=metadata, room=SimpleNamespace(name=room_name))
        self.room = FakeRoom()
        self.connected: list[AutoSubscribe] = []
        self.shutdowns: list[str] = []
        self.shutdown_callbacks: list = []

    async def connect(self, *, auto_subscribe=AutoSubscribe.SUBSCRIBE_ALL):
        self.connected.append(auto_subscribe)

    def shutdown(self, reason: str = "") -> None:
        self.shutdowns.append(reason)

    def add_shutdown_callback(self, callback) -> None:
        self.shutdown_callbacks.append(callback)
