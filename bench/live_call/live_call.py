"""Live captions on the real path: speaker → LiveKit stand-in (WebRTC) → ``python -m agent start`` → listener.

Starts the one-port LiveKit stand-in (``python -m tests.sfu``) and the agent exactly as in production
(``python -m agent start``, one worker, one job process per room), each as its own process so their CPU is
measured apart. Per room: the
session record is written to Redis as the platform's start endpoint writes it, a speaker participant publishes
espeak-ng utterances (bench/live_latency's file, true onset and end known to the sample) as a microphone track in
real time, the agent is dispatched with livekit-api's CreateDispatch, and a listener participant receives the
agent's ``speaking`` and ``transcript`` messages. Every delay is the listener's ``time.monotonic()`` at receipt
minus the publisher's audio clock (``time.monotonic()`` when the sample was captured). See README.md.

``latency``: one room at a time, then ``agent simulate --realtime`` on the same file, for comparison.
``capacity``: N rooms at once (N = 1, 2, 4, 6, 8, 10...), until caption p95 after the end of speech exceeds
2.0 s or an utterance gets no caption (``--keep-going``: all of them); agent CPU and memory per room, the stand-in's
and this driver's CPU apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import redis
from livekit import api, rtc

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.live_latency.run import AUDIBLE, Utterance, build, cpu_model, percentile, run_once  # noqa: E402
from speech.livestore import SessionRecord, segments_key, session_key  # noqa: E402
from tests.support.audio import SAMPLE_RATE, read_wav, wer  # noqa: E402

API_KEY = "APIbenchlivecall"
API_SECRET = "bench-live-call-secret-of-at-least-32-bytes"  # noqa: S105 - the loopback stand-in's
AGENT_NAME = "stt-live"
DATA_TOPIC = "transcription"
FRAME_SECONDS = 0.02  # the simulation's frame size: a frame is captured when its last sample is
FRAME_SAMPLES = round(SAMPLE_RATE * FRAME_SECONDS)
SOURCE_QUEUE_MS = 100  # bounds how far the SDK's buffer could hold audio back (it would be counted as latency)
P95_LIMIT_MS = 2000.0
READY_TIMEOUT = 180.0  # a dispatch spawns a job process that loads Whisper before it joins
PROBE_GAP_SECONDS = 0.8  # longer than any pause inside an utterance (0.39 s), shorter than between them (1 s)
WORKER_FULL = "marking as unavailable"  # livekit-agents' worker logs its status when it changes
WORKER_AVAILABLE = "marking as available"
IDLE_SECONDS = 5.0  # capacity: the registered worker alone, measured before the first step (background load)
ANSWER_SECONDS = 30.0  # a dispatch the agent has not acted on by then (it declined it) is made again
DRAIN_SECONDS = 10.0  # after a file ends, how long a missing caption is waited for before it counts as dropped


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Logged:
    """A child process whose output goes to a file that can be waited on (``wait_for`` a line)."""

    def __init__(self, name: str, command: list[str], log: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT)

        self._read = 0
        self._text = ""

    def _refresh(self) -> str:
        """The output so far (read on from where the last call stopped)."""
        with self.log.open("rb") as log:
            log.seek(self._read)
            new = log.read()
        self._read += len(new)
        self._text += new.decode(errors="replace")
        return self._text

    def count(self, needle: str) -> int:
        return self._refresh().count(needle)

    def last(self, needle: str) -> int:
        """Where ``needle`` last occurs in the output, -1 if nowhere."""
        return self._refresh().rfind(needle)

    async def wait_for(self, needle: str, times: int = 1, timeout: float = READY_TIMEOUT) -> None:
        """Until ``needle`` appears ``times`` times in the output; the process dying or the timeout is an error."""
        deadline = time.monotonic() + timeout
        while self.count(needle) < times:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); see {self.log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {needle!r} not seen {times} time(s) in {timeout:g} s; see {self.log}")
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


@contextlib.asynccontextmanager
async def livekit_and_agent(out: Path, redis_url: str) -> AsyncIterator[tuple[Logged, Logged, int]]:
    """The stand-in and the agent worker, as separate processes; stopped (agent first) on exit."""
    port = free_port()
    env = dict(os.environ)
    standin = Logged(
        "stand-in",
        [
            sys.executable,
            "-m",
            "tests.sfu",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--api-key",
            API_KEY,
            "--api-secret",
            API_SECRET,
        ],
        out / "standin.log",
        env,
    )
    agent_env = {
        **env,
        "LIVEKIT_URL": f"ws://127.0.0.1:{port}",
        "LIVEKIT_API_KEY": API_KEY,
        "LIVEKIT_API_SECRET": API_SECRET,
        "REDIS_URL": redis_url,
        "AGENT_HEALTH_PORT": "0",
    }
    agent = None
    try:
        await standin.wait_for("LiveKit stand-in:", timeout=30)
        agent = Logged("agent", [sys.executable, "-m", "agent", "start"], out / "agent.log", agent_env)
        await agent.wait_for("registered worker", timeout=120)
        yield standin, agent, port
    finally:
        if agent is not None:
            agent.stop()
        standin.stop()


def token(identity: str, room: str) -> str:
    grants = api.VideoGrants(room_join=True, room=room)
    return api.AccessToken(API_KEY, API_SECRET).with_identity(identity).with_grants(grants).to_jwt()


@dataclass
class Heard:
    at: float  # the listener's time.monotonic() when the message arrived
    payload: dict


@dataclass
class Call:
    """One room: the session record, a speaker playing a speech file in real time, a listener, the agent's job."""

    room: str
    samples: np.ndarray  # int16 at 16 kHz
    truth: list[Utterance]
    transcription_id: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:12]}")
    started_at_ms: int = 0
    t0: float = 0.0  # time.monotonic() of the file's first sample
    captured: list[float] = field(default_factory=list)  # per frame of the file: monotonic when handed to the SDK
    heard: list[Heard] = field(default_factory=list)
    late_ms: float = 0.0  # worst lateness of this driver handing a frame over (excluded: ``captured`` is actual)
    probe: bool = False  # the listener also subscribes to the speaker's audio and times its arrival
    onsets_heard: list[float] = field(default_factory=list)  # arrival of each utterance's first audible sample
    ends_heard: list[float] = field(default_factory=list)  # ... and of its last
    speaker: rtc.Room = field(default_factory=rtc.Room)  # a Room binds to the running loop: create Calls in it
    listener: rtc.Room = field(default_factory=rtc.Room)
    _feeder: asyncio.Task[None] | None = None
    _probes: set[asyncio.Task[None]] = field(default_factory=set)
    _go: asyncio.Event = field(default_factory=asyncio.Event)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    played: asyncio.Event = field(default_factory=asyncio.Event)

    async def join(self, url: str, store: redis.Redis) -> None:
        """Record written, speaker publishing silence, listener listening (it subscribes to no audio)."""
        self.started_at_ms = time.time_ns() // 1_000_000
        record = SessionRecord(self.transcription_id, "active", started_at_ms=self.started_at_ms)
        store.hset(session_key(self.room), mapping=record.to_hash())
        self.listener.on("data_received", self._heard)
        self.listener.on("track_subscribed", self._subscribed)
        await self.listener.connect(url, token("listener", self.room), rtc.RoomOptions(auto_subscribe=self.probe))
        await self.speaker.connect(url, token("speaker", self.room), rtc.RoomOptions(auto_subscribe=False))
        source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=SOURCE_QUEUE_MS)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.speaker.local_participant.publish_track(track, options)
        self._feeder = asyncio.create_task(self._feed(source), name=f"feed:{self.room}")

    async def dispatch(self, lkapi: api.LiveKitAPI) -> None:
        metadata = json.dumps({"transcriptionId": self.transcription_id, "roomId": self.room})
        request = api.CreateAgentDispatchRequest(agent_name=AGENT_NAME, room=self.room, metadata=metadata)
        await lkapi.agent_dispatch.create_dispatch(request)

    def speak(self) -> None:
        self._go.set()

    def agent_present(self) -> bool:
        kinds = [p.kind for p in self.listener.remote_participants.values()]
        return rtc.ParticipantKind.PARTICIPANT_KIND_AGENT in kinds

    async def finish(self, store: redis.Redis) -> None:
        """Stop the session as the platform does (the agent polls the record and leaves), hang up, clean Redis."""
        store.hset(session_key(self.room), "status", "stopped")
        deadline = time.monotonic() + 15
        while self.agent_present() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        self._stop.set()
        if self._feeder is not None:
            await self._feeder
        for probe in self._probes:
            probe.cancel()
        await asyncio.gather(*self._probes, return_exceptions=True)
        await self.speaker.disconnect()
        await self.listener.disconnect()
        store.delete(session_key(self.room), segments_key(self.room))

    def _heard(self, packet: rtc.DataPacket) -> None:
        if packet.topic == DATA_TOPIC:
            self.heard.append(Heard(time.monotonic(), json.loads(packet.data)))

    def _subscribed(self, track: rtc.Track, _: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO and participant.identity == "speaker":
            self._probes.add(asyncio.create_task(self._probe(rtc.AudioStream(track, sample_rate=SAMPLE_RATE))))

    async def _probe(self, stream: rtc.AudioStream) -> None:
        """When each utterance's first and last audible samples reach a subscriber, on the path the agent's audio
        takes (speaker's SDK → stand-in → subscriber's SDK, resampled to 16 kHz as the agent reads it): the
        transport's share of the delays."""
        gap, threshold = PROBE_GAP_SECONDS * SAMPLE_RATE, AUDIBLE * 32768
        quiet, last_audible_at = gap, None  # samples since the last audible one; when that one arrived
        try:
            async for event in stream:
                at, samples = time.monotonic(), np.frombuffer(event.frame.data, dtype=np.int16)
                audible = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
                if audible.size == 0:
                    quiet += len(samples)
                    if last_audible_at is not None and quiet >= gap:
                        self.ends_heard.append(last_audible_at)
                        last_audible_at = None
                    continue
                if quiet + audible[0] >= gap:
                    self.onsets_heard.append(at)
                quiet, last_audible_at = len(samples) - 1 - audible[-1], at
        finally:
            await stream.aclose()

    async def _capture(self, source: rtc.AudioSource, samples: np.ndarray, at: float) -> float:
        """Hand one frame to the SDK when its last sample has been captured (``at``, on the monotonic clock), or
        as soon as this driver gets to it when late; returns that moment, the frame's real capture time."""
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        handed = time.monotonic()
        self.late_ms = max(self.late_ms, (handed - at) * 1000)
        await source.capture_frame(rtc.AudioFrame(samples.tobytes(), SAMPLE_RATE, 1, len(samples)))
        return handed

    async def _feed(self, source: rtc.AudioSource) -> None:
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        clock = time.monotonic()
        while not self._go.is_set():
            clock += FRAME_SECONDS
            await self._capture(source, silence, clock)
        self.t0 = clock
        self.late_ms = 0.0
        for start in range(0, len(self.samples), FRAME_SAMPLES):
            frame = self.samples[start : start + FRAME_SAMPLES]
            if len(frame) < FRAME_SAMPLES:
                frame = np.pad(frame, (0, FRAME_SAMPLES - len(frame)))
            clock += FRAME_SECONDS
            self.captured.append(await self._capture(source, frame, clock))
        self.played.set()
        while not self._stop.is_set():
            clock += FRAME_SECONDS
            await self._capture(source, silence, clock)

    def complete(self) -> bool:
        """Every utterance has its final transcript."""
        return all(row["transcripts"] for row in self.rows())

    def captured_at(self, position_ms: float) -> float:
        """When the sample at ``position_ms`` in the file was captured (monotonic): its frame's hand-over time,
        less the samples after it in the frame."""
        sample = position_ms * SAMPLE_RATE / 1000
        index = min(int(sample // FRAME_SAMPLES), len(self.captured) - 1)
        return self.captured[index] - ((index + 1) * FRAME_SAMPLES - sample) / SAMPLE_RATE

    def rows(self) -> list[dict]:
        """Per utterance: delays on the listener's clock from the true onset / end, and the captions heard.

        A message belongs to the utterance its ``startMs`` falls in. The agent counts session time in samples from
        the first frame it read, so its times are the file's plus a constant: the first ``speaking`` gives it.
        """
        speaking_starts = [h.payload["startMs"] for h in self.heard if h.payload["type"] == "speaking"]
        shift = speaking_starts[0] - self.truth[0].onset_ms if speaking_starts else 0.0
        rows = []
        for index, utterance in enumerate(self.truth):
            nxt = self.truth[index + 1].onset_ms - 500 if index + 1 < len(self.truth) else float("inf")

            def mine(heard: Heard, low: float = utterance.onset_ms - 500, high: float = nxt) -> bool:
                return low <= heard.payload["startMs"] - shift < high

            speaking = [h for h in self.heard if h.payload["type"] == "speaking" and mine(h)]
            finals = [h for h in self.heard if h.payload["type"] == "transcript" and mine(h)]
            onset, end = self.captured_at(utterance.onset_ms), self.captured_at(utterance.end_ms)
            edges = len(self.onsets_heard) == len(self.ends_heard) == len(self.truth)
            rows.append(
                {
                    "room": self.room,
                    "text": utterance.text,
                    "onsetMs": round(utterance.onset_ms),
                    "endMs": round(utterance.end_ms),
                    "speakingDelayMs": (speaking[0].at - onset) * 1000 if speaking else None,
                    "transcriptDelayMs": (finals[-1].at - end) * 1000 if finals else None,
                    "transcripts": len(finals),
                    "heardOnsetMs": (self.onsets_heard[index] - onset) * 1000 if edges else None,
                    "heardEndMs": (self.ends_heard[index] - end) * 1000 if edges else None,
                    "live": " ".join(h.payload["text"] for h in finals),
                }
            )
        return rows


def summarise(rows: list[dict], truth_text: str, live_text: str) -> dict:
    speaking = [r["speakingDelayMs"] for r in rows if r["speakingDelayMs"] is not None]
    finals = [r["transcriptDelayMs"] for r in rows if r["transcriptDelayMs"] is not None]
    onsets = [r["heardOnsetMs"] for r in rows if r.get("heardOnsetMs") is not None]
    ends = [r["heardEndMs"] for r in rows if r.get("heardEndMs") is not None]
    shares = [r["transcriptDelayMs"] - r["heardEndMs"] for r in rows if r.get("heardEndMs") and r["transcriptDelayMs"]]
    return {
        "agentShareP50": percentile(shares, 50),
        "agentShareP95": percentile(shares, 95),
        "heardOnsetP50": percentile(onsets, 50),
        "heardEndP50": percentile(ends, 50),
        "utterances": len(rows),
        "speakingP50": percentile(speaking, 50),
        "speakingP95": percentile(speaking, 95),
        "transcriptP50": percentile(finals, 50),
        "transcriptP95": percentile(finals, 95),
        "transcriptMax": max(finals, default=float("nan")),
        "dropped": sum(1 for r in rows if r["transcripts"] == 0),
        "split": sum(1 for r in rows if r["transcripts"] > 1),
        "wer": wer(truth_text, live_text),
    }


class TreeMonitor:
    """CPU time and memory of process trees (the agent, the stand-in, this driver), sampled once a second.

    CPU% is of one core, over the window between ``mark`` and ``measure``; per thread name for the agent, which
    says where its CPU goes (Whisper's CTranslate2 threads, the job's Python thread, LiveKit's Rust threads).
    """

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self._cpu: dict[str, dict[int, float]] = defaultdict(dict)  # tree → pid → CPU seconds, last seen
        self._threads: dict[tuple[int, int], tuple[str, float]] = {}  # (pid, tid) → (name, CPU seconds)
        self._rss: dict[str, list[int]] = defaultdict(list)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-monitor", daemon=True)

    def __enter__(self) -> TreeMonitor:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def _tree(self, name: str) -> list[psutil.Process]:
        """The process and its descendants; the driver alone (the agent and the stand-in are its children)."""
        try:
            root = psutil.Process(self.roots[name])
            return [root] if name == "driver" else [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _sample(self) -> None:
        for name, root in self.roots.items():
            rss = 0
            for proc in self._tree(name):
                try:
                    with proc.oneshot():
                        times = proc.cpu_times()
                        rss += proc.memory_info().rss
                        threads = proc.threads() if name == "agent" else []
                except psutil.NoSuchProcess:
                    continue
                with self._lock:
                    self._cpu[name][proc.pid] = times.user + times.system
                    for thread in threads:
                        label = thread_label(proc.pid, thread.id, root)
                        self._threads[(proc.pid, thread.id)] = (label, thread.user_time + thread.system_time)
            with self._lock:
                self._rss[name].append(rss)

    def _run(self) -> None:
        while not self._done.is_set():
            self._sample()
            self._done.wait(1.0)

    def mark(self) -> tuple[float, dict, dict, dict]:
        """The start of a measurement window."""
        self._sample()
        with self._lock:
            cpu = {name: dict(pids) for name, pids in self._cpu.items()}
            self._rss.clear()
            return time.monotonic(), cpu, dict(self._threads), psutil.cpu_times()._asdict()

    def measure(self, start: tuple[float, dict, dict, dict]) -> dict:
        """CPU% (of one core) per tree and per agent thread name since ``start``; mean and peak RSS per tree."""
        began, cpu0, threads0, machine0 = start
        self._sample()
        wall = time.monotonic() - began
        with self._lock:
            result: dict = {"windowSeconds": round(wall, 1)}
            for name in self.roots:
                used = sum(now - cpu0.get(name, {}).get(pid, 0.0) for pid, now in self._cpu[name].items())
                rss = self._rss[name] or [0]
                result[name] = {
                    "cpuPercent": round(100 * used / wall, 1),
                    "rssMeanMB": round(sum(rss) / len(rss) / 2**20),
                    "rssPeakMB": round(max(rss) / 2**20),
                }
            by_name: dict[str, float] = defaultdict(float)
            for key, (label, now) in self._threads.items():
                by_name[label] += now - threads0.get(key, (label, 0.0))[1]
            result["agentThreads"] = {
                label: round(100 * seconds / wall, 1)
                for label, seconds in sorted(by_name.items(), key=lambda item: -item[1])
                if seconds / wall >= 0.005
            }
        machine1 = psutil.cpu_times()._asdict()
        busy = sum(machine1[k] - machine0[k] for k in machine1 if k not in ("idle", "iowait"))
        total = sum(machine1[k] - machine0[k] for k in machine1)
        result["machineBusyPercent"] = round(100 * busy / total, 1) if total else float("nan")
        return result

    def pss_mb(self, name: str) -> float:
        """Proportional set size of a tree (shared pages split between processes): its honest memory."""
        total = 0
        for proc in self._tree(name):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += proc.memory_full_info().pss
        return round(total / 2**20)


def thread_label(pid: int, tid: int, root: int) -> str:
    """Which process (the worker or a job) and thread: the OS thread name, or for Python's own threads (all named
    ``python``) the main thread (asyncio: VAD, the SDK's callbacks) apart from the others (the executor thread
    running Whisper and CTranslate2's compute threads)."""
    try:
        comm = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
    except OSError:
        comm = "?"
    if comm == "python":
        comm = "python main thread" if tid == pid else "python other threads (Whisper/CTranslate2)"
    return f"{'worker' if pid == root else 'job'}: {comm}"


def speech_file(out: Path, seed: int) -> tuple[np.ndarray, list[Utterance]]:
    """bench/live_latency's speech file (its utterances, pauses of 1-2 s drawn with ``seed``) as int16 samples."""
    path = out / f"speech-{seed}.wav"
    truth = build(path, seed)
    samples = np.clip(read_wav(path) * 32767, -32768, 32767).astype(np.int16)
    return samples, truth


async def dispatch_until_read(call: Call, lkapi: api.LiveKitAPI, agent: Logged) -> tuple[int, float]:
    """Dispatch the agent to the room until it reads the speaker's track: (dispatches unanswered, seconds waited
    for the worker to report itself available).

    livekit-agents' worker reports itself full while the machine's CPU (2.5 s average) is at or above its
    production ``load_threshold`` (0.7) and declines jobs then; the stand-in gives a declined job to nobody.
    So this waits for the worker's "available" before dispatching, and dispatches again after ``ANSWER_SECONDS``.
    """
    reading = f"room {call.room}: reading track"
    unanswered, gated = 0, 0.0
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        began = time.monotonic()
        while agent.last(WORKER_FULL) > agent.last(WORKER_AVAILABLE):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker stayed full for {READY_TIMEOUT:g} s; see {agent.log}")
            await asyncio.sleep(0.1)
        gated += time.monotonic() - began
        await call.dispatch(lkapi)
        answer = time.monotonic() + ANSWER_SECONDS
        while not agent.last(reading) >= 0 and time.monotonic() < min(answer, deadline):
            await asyncio.sleep(0.1)
        if agent.last(reading) >= 0:
            return unanswered, gated
        if time.monotonic() > deadline:
            raise TimeoutError(f"the agent never read the track of {call.room}; see {agent.log}")
        unanswered += 1


async def run_calls(calls: list[Call], port: int, agent: Logged, store: redis.Redis, stagger: list[float]) -> dict:
    """Join every room, dispatch the agent to each in turn, play the files, wait for the captions, hang up."""
    url = f"ws://127.0.0.1:{port}"
    timings: dict = {}
    async with api.LiveKitAPI(f"http://127.0.0.1:{port}", API_KEY, API_SECRET) as lkapi:
        began = time.monotonic()
        for call in calls:
            await call.join(url, store)
        answers = [await dispatch_until_read(call, lkapi, agent) for call in calls]
        timings["dispatchesUnanswered"] = sum(unanswered for unanswered, _ in answers)
        timings["waitedForWorkerSeconds"] = round(sum(gated for _, gated in answers), 1)
        timings["readySeconds"] = round(time.monotonic() - began, 1)
        for call, delay in zip(calls, stagger, strict=True):
            asyncio.get_running_loop().call_later(delay, call.speak)
        await asyncio.gather(*(call.played.wait() for call in calls))
        deadline = time.monotonic() + DRAIN_SECONDS
        while not all(call.complete() for call in calls) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.gather(*(call.finish(store) for call in calls))
    return timings


def environment(args: argparse.Namespace) -> list[str]:
    tunables = ("PAUSE_THRESHOLD_SECONDS", "SHORT_PAUSE_SECONDS", "WHISPER_MAX_CONCURRENT", "WHISPER_MODEL")
    settings: dict | str = {name: os.environ[name] for name in tunables if name in os.environ} or "defaults"
    return [
        f"date {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} CPU(s) {cpu_model()}, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        f"command: {' '.join([Path(sys.executable).name, *sys.argv])}",
        f"agent settings: {settings}; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]


def ms(value: float | None) -> str:
    return "—" if value is None or value != value else f"{value:.0f}"


def utterance_table(rows: list[dict]) -> list[str]:
    return [
        "| # | utterance | speaking +ms | transcript +ms | audio at a subscriber: onset / end +ms | live transcript |",
        "|---|---|---|---|---|---|",
        *(
            f"| {n} | {r['text']} | {ms(r['speakingDelayMs'])} | {ms(r['transcriptDelayMs'])} | "
            f"{ms(r['heardOnsetMs'])} / {ms(r['heardEndMs'])} | {r['live'] or '—'} |"
            for n, r in enumerate(rows, 1)
        ),
    ]


def show(lines: list[str], section: list[str]) -> None:
    lines += section
    print("\n".join(section), flush=True)


async def latency(args: argparse.Namespace) -> None:
    samples, truth = speech_file(args.out, args.seed)
    truth_text = " ".join(u.text for u in truth)
    store = redis.Redis.from_url(args.redis_url)
    lines: list[str] = []
    show(lines, ["## Live latency on the real path", "", *environment(args), ""])
    results = []
    async with livekit_and_agent(args.out, args.redis_url) as (_standin, agent, port):
        for run in range(1, args.runs + 1):
            call = Call(f"bench-latency-{run}-{uuid.uuid4().hex[:6]}", samples, truth, probe=True)
            timings = await run_calls([call], port, agent, store, [0.0])
            rows = call.rows()
            live_text = " ".join(h.payload["text"] for h in call.heard if h.payload["type"] == "transcript")
            result = {**summarise(rows, truth_text, live_text), **timings, "lateMs": call.late_ms, "rows": rows}
            results.append(result)
            show(
                lines,
                [
                    f"### Live run {run}",
                    "",
                    *utterance_table(rows),
                    "",
                    f"speaking p50 {ms(result['speakingP50'])} / p95 {ms(result['speakingP95'])} ms; final "
                    f"transcript p50 {ms(result['transcriptP50'])} / p95 {ms(result['transcriptP95'])} ms after the "
                    f"end of speech; the audio reached a subscriber p50 {ms(result['heardOnsetP50'])} ms after the "
                    f"onset and {ms(result['heardEndP50'])} ms after the end, so the agent's own share of the final "
                    f"transcript's delay is p50 {ms(result['agentShareP50'])} ms; WER {result['wer']:.3f}; "
                    f"{result['dropped']} dropped, {result['split']} split; worst frame lateness at the speaker "
                    f"{call.late_ms:.0f} ms; agent reading the track {timings['readySeconds']} s after the joins, "
                    f"{timings['dispatchesUnanswered']} dispatch(es) unanswered, "
                    f"{timings['waitedForWorkerSeconds']} s waited for the worker to report itself available",
                    "",
                ],
            )
    simulated = []
    for run in range(1, args.simulate_runs + 1):
        result = await asyncio.to_thread(run_once, args.out / f"speech-{args.seed}.wav", truth, float("nan"))
        simulated.append(result)
        show(
            lines,
            [
                f"### simulate --realtime, run {run} (same file)",
                "",
                f"speaking p50 {ms(result['speakingP50'])} / p95 {ms(result['speakingP95'])} ms; final transcript "
                f"p50 {ms(result['transcriptP50'])} / p95 {ms(result['transcriptP95'])} ms; "
                f"WER {result['liveWer']:.3f}; {result['missing']} missing, {result['split']} split",
                "",
            ],
        )
    (args.out / "results.json").write_text(json.dumps({"live": results, "simulate": simulated}, indent=2))
    (args.out / "summary.md").write_text("\n".join(lines))


async def capacity_step(
    n: int, files: list[tuple[np.ndarray, list[Utterance]]], stagger: list[float], context: tuple
) -> dict:
    """N rooms at once; the measurement window is from the moment all N speak to the moment all files ended."""
    port, agent, store, monitor = context
    step = uuid.uuid4().hex[:6]
    calls = [Call(f"bench-cap{n}-{i}-{step}", *files[i], probe=i == 0) for i in range(n)]
    load = os.getloadavg()[0]
    running = asyncio.create_task(run_calls(calls, port, agent, store, stagger))
    while not all(call.t0 for call in calls) and not running.done():
        await asyncio.sleep(0.05)
    start = monitor.mark()
    await asyncio.wait(
        [running, asyncio.gather(*(call.played.wait() for call in calls))], return_when="FIRST_COMPLETED"
    )
    window = {**monitor.measure(start), "pssMB": monitor.pss_mb("agent")}
    timings = await running
    rows = [row for call in calls for row in call.rows()]
    truth_text = " ".join(u.text for call in calls for u in call.truth)
    live_text = " ".join(h.payload["text"] for call in calls for h in call.heard if h.payload["type"] == "transcript")
    summary = summarise(rows, truth_text, live_text)
    ok = summary["transcriptP95"] <= P95_LIMIT_MS and summary["dropped"] == 0
    late = max(call.late_ms for call in calls)
    return {"rooms": n, "loadAverage": load, **summary, **timings, **window, "lateMs": late, "ok": ok, "rows": rows}


def capacity_row(r: dict) -> str:
    n, cpu, rss = r["rooms"], r["agent"]["cpuPercent"], r["agent"]["rssMeanMB"]
    cells = [
        n,
        f"{ms(r['transcriptP50'])} / {ms(r['transcriptP95'])} / {ms(r['transcriptMax'])}",
        f"{ms(r['heardEndP50'])}, {ms(r['agentShareP50'])} / {ms(r['agentShareP95'])}",
        ms(r["speakingP95"]),
        r["dropped"],
        f"{r['wer']:.3f}",
        f"{cpu} ({cpu / n:.0f})",
        f"{rss} ({rss / n:.0f})",
        r["pssMB"],
        r["standin"]["cpuPercent"],
        r["driver"]["cpuPercent"],
        r["machineBusyPercent"],
        f"{r['loadAverage']:.2f}",
        "yes" if r["ok"] else "NO",
    ]
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


async def capacity(args: argparse.Namespace) -> None:
    store = redis.Redis.from_url(args.redis_url)
    rng = random.Random(args.seed)
    files = [speech_file(args.out, 100 + i) for i in range(max(args.rooms))]
    lines: list[str] = []
    show(lines, ["## Capacity on the real path", "", *environment(args), ""])
    show(
        lines,
        [
            "| N | caption p50 / p95 / max (ms) | room 1: audio end at a subscriber p50, caption minus that "
            "p50 / p95 (ms) | speaking p95 (ms) | dropped | WER | agent CPU % (per room) | agent RSS MB (per room) "
            "| agent PSS MB | stand-in CPU % | driver CPU % | machine busy % | load avg | ok |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ],
    )
    results = []
    async with livekit_and_agent(args.out, args.redis_url) as (standin, agent, port):
        roots = {"agent": agent.proc.pid, "standin": standin.proc.pid, "driver": os.getpid()}
        with TreeMonitor(roots) as monitor:
            start = monitor.mark()
            await asyncio.sleep(IDLE_SECONDS)
            idle = {**monitor.measure(start), "pssMB": monitor.pss_mb("agent")}
            idle["processes"] = len(psutil.Process(agent.proc.pid).children(recursive=True)) + 1
            for n in args.rooms:
                stagger = sorted(rng.uniform(0, args.stagger) for _ in range(n))
                result = await capacity_step(n, files, stagger, (port, agent, store, monitor))
                results.append(result)
                show(lines, [capacity_row(result)])
                if not result["ok"] and not args.keep_going:
                    break
    show(lines, ["", f"idle agent ({idle['processes']} processes): {idle}", ""])
    show(lines, [f"N={r['rooms']}: agent threads (CPU % of a core): {r['agentThreads']}" for r in results])
    (args.out / "results.json").write_text(json.dumps({"idle": idle, "steps": results}, indent=2))
    (args.out / "summary.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("latency", "capacity"))
    parser.add_argument("--runs", type=int, default=3, help="latency: live runs (one room each)")
    parser.add_argument("--simulate-runs", type=int, default=1, help="latency: simulate --realtime runs after")
    parser.add_argument("--rooms", type=lambda s: [int(n) for n in s.split(",")], default=[1, 2, 4, 6, 8, 10, 12])
    parser.add_argument("--stagger", type=float, default=3.0, help="capacity: rooms start within this many seconds")
    parser.add_argument("--keep-going", action="store_true", help="capacity: do not stop at the first failing N")
    parser.add_argument("--seed", type=int, default=7, help="seed of the pause lengths (latency) and start offsets")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/5"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / time.strftime("%Y%m%d-%H%M%S"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(latency(args) if args.mode == "latency" else capacity(args))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
