"""A real call for end-to-end tests: LiveKit SDK participants that speak in real time, a dashboard viewer on the
Channels WebSocket, and the live agent started as production starts it (``python -m agent``).

The SDK and the WebSocket client need an event loop; the tests are synchronous (Django's ORM, requests, the
stand-in's waits). ``CallLoop`` runs one loop on a thread for every participant and viewer of a test, so a
microphone goes on producing audio while the test waits, and the test waits on what they received through a
condition variable that every arrival notifies (``Inbox``), never by sleeping.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import psutil
import websockets
from livekit import rtc
from livekit.agents.types import TOPIC_TRANSCRIPTION

from agent.sink import DATA_TOPIC
from tests.support.audio import SAMPLE_RATE
from tests.support.workers import ChildProcess, child_process

T = TypeVar("T")
FRAME = SAMPLE_RATE // 100  # 10 ms, what a microphone hands the SDK at a time
AGENT = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT


class CallLoop:
    """An asyncio loop on its own thread for the SDK and WebSocket clients of a test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="call-loop", daemon=True)
        self._thread.start()

    def submit(self, work: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(work, self.loop)

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return self.submit(work).result(timeout)

    def close(self) -> None:
        """Cancel what still runs (a microphone, a socket reader), then stop the loop."""
        self.run(self._cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    @staticmethod
    async def _cancel_all() -> None:
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


class Inbox:
    """What a client received, in order; ``wait_for`` blocks (on a condition, not a timer) until a probe holds."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = threading.Condition()

    def add(self, item: Any) -> None:
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def snapshot(self) -> list[Any]:
        with self._changed:
            return list(self.items)

    def wait_for(self, probe: Callable[[list[Any]], T], what: str, timeout: float = 30) -> T:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (found := probe(list(self.items))):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    last = self.items[-20:]
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last received: {last}")
                self._changed.wait(remaining)
            return found


@dataclass(frozen=True)
class Received:
    """A data message on the agent's topic, decoded, with the identity of the participant that sent it."""

    sender: str
    payload: dict[str, Any]

    @property
    def type(self) -> str:
        return self.payload.get("type", "")


@dataclass(frozen=True)
class Caption:
    """One ``lk.transcription`` text stream as LiveKit's components read it: its attributes and its text."""

    attributes: dict[str, str]
    text: str


@dataclass
class Speech:
    """Samples waiting to be spoken; futures resolved once half of them, then the last of them, went to the SDK
    (which holds up to a second of audio before it goes out)."""

    samples: np.ndarray
    position: int = 0
    halfway: Future[None] = field(default_factory=Future)
    spoken: Future[None] = field(default_factory=Future)


class Participant:
    """An SDK participant (``rtc.Room``) with an open microphone: it sends silence until told to ``say`` something,
    as a real microphone does, so the agent's voice activity detector hears the pauses on the audio clock.

    ``messages`` holds the agent's data messages, ``captions`` its ``lk.transcription`` text streams (read through
    the SDK's text-stream handler, as LiveKit's components do), ``room_events`` the (event, identity, kind) of
    participants joining and leaving.
    """

    def __init__(self, call: CallLoop, identity: str) -> None:
        self.call = call
        self.identity = identity
        self.messages = Inbox()
        self.captions = Inbox()
        self.room_events = Inbox()
        self.track_sid = ""
        self._room: rtc.Room | None = None
        self._speech: list[Speech] = []
        self._microphone: asyncio.Task[None] | None = None
        self._readers: set[asyncio.Future[None]] = set()

    def join(self, url: str, token: str) -> None:
        """Connect, publish the microphone track and start the microphone."""
        self.call.run(self._join(url, token))

    def say(self, samples: np.ndarray) -> Speech:
        """Queue float samples (16 kHz mono) after what is already queued; returns at once."""
        speech = Speech(samples)
        self.call.loop.call_soon_threadsafe(self._speech.append, speech)
        return speech

    def leave(self) -> None:
        self.call.run(self._leave())

    def finals(self) -> list[dict[str, Any]]:
        return [m.payload for m in self.messages.snapshot() if m.type == "transcript"]

    def wait_for_agent(self, event: str, *, not_: str = "", timeout: float = 60) -> str:
        """The identity of the first agent (other than ``not_``) the SDK reported as ``participant_connected`` or
        ``participant_disconnected``."""
        return self.room_events.wait_for(
            lambda seen: next((w for name, w, kind in seen if name == event and kind == AGENT and w != not_), None),
            f"an agent {event} event at {self.identity}",
            timeout,
        )

    async def _join(self, url: str, token: str) -> None:
        room = self._room = rtc.Room()
        room.on("data_received", self._on_data)
        room.register_text_stream_handler(TOPIC_TRANSCRIPTION, self._on_caption)
        for event in ("participant_connected", "participant_disconnected"):
            room.on(event, lambda p, event=event: self.room_events.add((event, p.identity, p.kind)))
        await room.connect(url, token)
        source = rtc.AudioSource(SAMPLE_RATE, 1)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        publication = await room.local_participant.publish_track(track, options)
        self.track_sid = publication.sid
        self._microphone = asyncio.ensure_future(self._capture(source))

    async def _capture(self, source: rtc.AudioSource) -> None:
        """10 ms frames for ever: queued speech, else silence. ``capture_frame`` paces it to real time."""
        silence = np.zeros(FRAME, dtype=np.int16)
        while True:
            frame = silence
            if self._speech:
                speech = self._speech[0]
                chunk = speech.samples[speech.position : speech.position + FRAME]
                speech.position += len(chunk)
                frame = np.pad((np.clip(chunk, -1, 1) * 32767).astype(np.int16), (0, FRAME - len(chunk)))
                if speech.position * 2 >= len(speech.samples) and not speech.halfway.done():
                    speech.halfway.set_result(None)
                if speech.position >= len(speech.samples):
                    self._speech.pop(0)
                    speech.spoken.set_result(None)
            await source.capture_frame(rtc.AudioFrame(frame.tobytes(), SAMPLE_RATE, 1, FRAME))

    def _on_data(self, packet: rtc.DataPacket) -> None:
        if packet.topic == DATA_TOPIC and packet.participant is not None:
            self.messages.add(Received(packet.participant.identity, json.loads(packet.data)))

    def _on_caption(self, reader: rtc.TextStreamReader, _sender: str) -> None:
        async def read() -> None:
            self.captions.add(Caption(dict(reader.info.attributes), await reader.read_all()))

        self._readers.add(task := asyncio.ensure_future(read()))
        task.add_done_callback(self._readers.discard)

    async def _leave(self) -> None:
        if self._microphone is not None:
            self._microphone.cancel()
        if self._room is not None:
            await self._room.disconnect()
        for speech in self._speech:  # cut short: whoever waits for it learns it was not all said
            speech.spoken.cancel()


class DashboardViewer:
    """A signed-in browser's WebSocket on the platform's ASGI server; every JSON frame lands in ``frames``."""

    def __init__(self, call: CallLoop, url: str, cookie: bytes) -> None:
        self.frames = Inbox()
        self.call = call
        self._socket = call.run(self._open(url, cookie))
        self._reader = call.submit(self._read())

    def segments(self) -> list[dict[str, Any]]:
        return [frame["segment"] for frame in self.frames.snapshot() if frame.get("type") == "segment"]

    def close(self) -> None:
        self.call.run(self._socket.close())
        self._reader.result(10)

    @staticmethod
    async def _open(url: str, cookie: bytes) -> websockets.ClientConnection:
        origin = websockets.Origin(url.split("/ws/")[0].replace("ws://", "http://"))
        return await websockets.connect(url, additional_headers={"Cookie": cookie.decode()}, origin=origin)

    async def _read(self) -> None:
        async for frame in self._socket:
            self.frames.add(json.loads(frame))


def agent_environment(livekit_url: str, api_key: str, api_secret: str, redis_url: str) -> dict[str, str]:
    """Production's environment for the agent but for where LiveKit and Redis are: no WHISPER_* nor STT_* (the
    bundled model in-process), a free health port (``AGENT_HEALTH_PORT=0``: several agents on one host)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHISPER_", "STT_", "DJANGO_"))}
    env.update(
        LIVEKIT_URL=livekit_url,
        LIVEKIT_API_KEY=api_key,
        LIVEKIT_API_SECRET=api_secret,
        REDIS_URL=redis_url,
        AGENT_HEALTH_PORT="0",
    )
    return env


@contextmanager
def live_agent(env: dict[str, str]) -> Iterator[ChildProcess]:
    """``python -m agent`` (production start), once it registered with LiveKit; its job processes load Whisper
    before it registers."""
    command = [sys.executable, "-m", "agent"]
    with child_process(command, env, ready="registered worker", what="live agent", timeout=120) as process:
        yield process


def kill_tree(process: ChildProcess) -> None:
    """SIGKILL the agent and its job processes at once, as a crashed container loses them: nothing flushes."""
    tree = psutil.Process(process.pid)
    for member in [tree, *tree.children(recursive=True)]:
        member.kill()
    process.wait(10)
