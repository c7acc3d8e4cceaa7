"""One live session's pipeline: audio frames per track in, data-channel messages out.

No LiveKit and no Django here, so the live worker and the offline simulation (`python -m agent simulate`) run
the very same code. Per track: the VAD turns frames into onsets, chunks and ends (on the audio clock); chunks go
to Whisper in worker threads, bounded by one semaphore; results are cleaned and published in order.

Latency: when a speaker pauses briefly (SHORT_PAUSE_SECONDS) the chunk so far is transcribed at once, if Whisper
is idle. If the pause turns into the end of the utterance (PAUSE_THRESHOLD_SECONDS), that result is the final
transcript, ready about when the pause is confirmed instead of a whole Whisper call later. If the speaker goes
on, the result is only shown as a partial (when asked for) or dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from speech.client import TranscriptionError, WhisperClient, WhisperUnavailable
from speech.engine import SAMPLE_RATE, normalise_language
from speech.transcript import Transcript

from . import messages
from .cleaning import clean_transcript
from .config import AgentConfig
from .messages import Message
from .vad import Chunk, Event, SpeechStarted, SpeechStopped, VoiceActivityDetector

logger = logging.getLogger(__name__)

Emit = Callable[[Message], Awaitable[None]]
T = TypeVar("T")

# Pauses before the 2nd and 3rd attempt at a final chunk the Whisper service could not take (down, busy):
# short, because a transcript that arrives much later is of little use live.
RETRY_DELAYS = (0.25, 1.0)
_USERINFO = re.compile(r"(?<=//)[^/@\s]+@")


def warm_up(whisper: WhisperClient) -> None:
    """Load the model and run it once (the first inference is slow), so no caller waits for that mid-call.

    Twice: without Whisper's VAD filter, which decodes; with the configured one, which loads Silero's model.
    """
    try:
        for vad_filter in (False, None):
            whisper.transcribe(np.zeros(SAMPLE_RATE // 2, dtype=np.float32), vad_filter=vad_filter)
    except (TranscriptionError, OSError) as exc:
        logger.warning("Whisper warm-up failed (live transcription will retry per chunk): %s", _redact(exc))


def _redact(exc: BaseException) -> str:
    """The error for a log line, without credentials a service URL may carry."""
    return _USERINFO.sub("***@", f"{type(exc).__name__}: {exc}")


class _Audio:
    """A track's recent samples by absolute position; older ones are dropped once no chunk can need them."""

    def __init__(self) -> None:
        self._parts: deque[np.ndarray] = deque()
        self.start = 0

    def append(self, samples: np.ndarray) -> None:
        self._parts.append(samples)

    def forget_before(self, position: int) -> None:
        while self._parts and self.start + len(self._parts[0]) <= position:
            self.start += len(self._parts.popleft())

    def slice(self, start: int, end: int) -> np.ndarray:
        kept = np.concatenate(self._parts) if self._parts else np.empty(0, dtype=np.float32)
        return kept[start - self.start : end - self.start]


@dataclass(eq=False)
class _Preview:
    """A transcription of an open chunk: shown as a partial, and reused if the chunk ends right there."""

    chunk: Chunk
    task: asyncio.Task[Transcript | None]


@dataclass(eq=False)
class _Track:
    track_id: str
    speaker_id: str
    offset_ms: int
    vad: VoiceActivityDetector
    audio: _Audio = field(default_factory=_Audio)
    preview: _Preview | None = None
    last_final: asyncio.Task[None] | None = None
    last_posted: asyncio.Future[None] | None = None
    next_partial: int = 0  # sample position from which the next partial may be requested
    last_partial: str = ""

    def ms(self, sample: int) -> int:
        """Session milliseconds of a sample of this track."""
        return self.offset_ms + sample * 1000 // SAMPLE_RATE

    def segment_id(self, chunk: Chunk) -> str:
        """Stable for a chunk (so a partial and its final match, and a re-sent segment is recognised)."""
        return f"{self.track_id}-{self.ms(chunk.start)}"


class SessionCore:
    """One live session: `add_track`, `push` frames, `end_track`; `aclose` flushes everything.

    `emit` is awaited for every message, one at a time, from a single sender task: per track, messages go out
    in the order they happen (final transcripts in utterance order even when Whisper calls overlap), and a slow
    `emit` never holds up the audio. An emit failure is logged and the next message still goes out.

    Per utterance a track sends `speaking` at the onset, `transcript_partial`s if asked for, `speaking_stopped`
    once the pause threshold is reached, then the `transcript` (after it, for a chunk cut while the speaker
    goes on). An unknown `language` is a ValueError; None means STT_LANGUAGE.
    """

    def __init__(
        self,
        config: AgentConfig,
        whisper: WhisperClient,
        emit: Emit,
        *,
        language: str | None = None,
        partial_results: bool = False,
        transcription_id: str = "",
        semaphore: asyncio.Semaphore | None = None,
    ) -> None:
        self.config = config
        self.whisper = whisper
        self.transcription_id = transcription_id
        self.partial_results = partial_results
        self.language = normalise_language(language or config.stt_language) or "auto"
        self._emit = emit
        self._semaphore = semaphore or asyncio.Semaphore(config.whisper_max_concurrent)
        self._calls = 0  # this session's Whisper calls in progress, waiting ones included
        self._tracks: dict[str, _Track] = {}
        self._names: dict[str, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._outbox: asyncio.Queue[tuple[Message, asyncio.Future[None]]] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._closing: asyncio.Future[None] | None = None

    def add_track(self, track_id: str, speaker_id: str, speaker: str, start_offset_ms: int = 0) -> None:
        """`track_id`: the LiveKit track sid in the live worker; the track's messages carry it (`Message.track_id`).
        `start_offset_ms`: where the track's first sample sits on the session clock."""
        if self._closing is not None:
            logger.debug("Track %s added after the session closed: ignored", track_id)
            return
        if track_id in self._tracks:
            raise ValueError(f"Track {track_id!r} is already being transcribed.")
        self._names[speaker_id] = speaker
        self._tracks[track_id] = _Track(
            track_id, speaker_id, start_offset_ms, VoiceActivityDetector.from_config(self.config)
        )

    def rename_speaker(self, speaker_id: str, speaker: str) -> None:
        self._names[speaker_id] = speaker

    async def push(self, track_id: str, samples: np.ndarray) -> None:
        """16 kHz mono samples, float in [-1, 1] or int16, any frame size."""
        track = self._tracks.get(track_id)
        if track is None:  # e.g. a frame that raced the track's end
            logger.debug("Audio for unknown track %s ignored", track_id)
            return
        audio = np.asarray(samples).reshape(-1)
        audio = audio.astype(np.float32) / 32768.0 if audio.dtype == np.int16 else audio.astype(np.float32)
        track.audio.append(audio)
        for event in track.vad.process(audio):
            self._handle(track, event)
        if self.partial_results:
            self._request_partial(track)
        track.audio.forget_before(track.vad.keep_from)

    async def end_track(self, track_id: str) -> None:
        """Finish the track's utterance in progress; returns once all its messages are emitted."""
        track = self._tracks.pop(track_id, None)
        if track is None:
            return
        for event in track.vad.flush():
            self._handle(track, event)
        if track.last_final is not None:
            await asyncio.wait([track.last_final])
        if track.last_posted is not None:
            await track.last_posted

    async def aclose(self) -> None:
        """End every track, wait for Whisper and the emits, then stop. Safe to call more than once."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        await asyncio.gather(*(self.end_track(track_id) for track_id in list(self._tracks)))
        while self._tasks:  # previews nobody waits for still hold Whisper; let them finish
            await asyncio.wait(set(self._tasks))
        if self._sender is not None:
            await self._outbox.join()
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender

    def _handle(self, track: _Track, event: Event) -> None:
        if isinstance(event, SpeechStarted):
            self._post(track, messages.speaking(track.speaker_id, self._name(track), track.ms(event.at)))
            track.next_partial = event.at + round(self.config.partial_interval_seconds * SAMPLE_RATE)
        elif isinstance(event, SpeechStopped):
            self._post(track, messages.speaking_stopped(track.speaker_id, self._name(track), track.ms(event.at)))
        elif not event.final:
            if self._idle(track):
                self._preview(track, event)
            else:
                logger.debug(
                    "Track %s paused at %d ms, Whisper busy: no early transcription",
                    track.track_id,
                    track.ms(event.end),
                )
        else:
            preview, track.preview = track.preview, None  # the chunk is closed: no more partials for it
            matching = preview is not None and preview.chunk == dataclasses.replace(event, final=False)
            logger.debug(
                "Track %s chunk %d-%d ms final, early transcription %s",
                track.track_id,
                track.ms(event.start),
                track.ms(event.end),
                "reused" if matching else "none",
            )
            audio = track.audio.slice(event.audio_start, event.audio_end)
            track.last_final = self._spawn(
                self._finish(track, event, audio, preview.task if matching else None, track.last_final)
            )
            track.last_partial = ""
            track.next_partial = track.vad.position + round(self.config.partial_interval_seconds * SAMPLE_RATE)

    def _request_partial(self, track: _Track) -> None:
        """While the speaker talks, transcribe the chunk so far every PARTIAL_INTERVAL_SECONDS if Whisper is idle."""
        if track.vad.voiced_now and track.vad.position >= track.next_partial and self._idle(track):
            chunk = track.vad.current_chunk()
            if chunk is not None:
                self._preview(track, chunk)
                track.next_partial = track.vad.position + round(self.config.partial_interval_seconds * SAMPLE_RATE)

    def _idle(self, track: _Track) -> bool:
        """Speculative work only when it cannot delay a final transcript."""
        busy = track.preview is not None and not track.preview.task.done()
        return not busy and self._calls < self.config.whisper_max_concurrent and not self._semaphore.locked()

    def _preview(self, track: _Track, chunk: Chunk) -> None:
        audio = track.audio.slice(chunk.audio_start, chunk.audio_end)
        preview = _Preview(chunk, self._spawn(self._transcribe(audio, final=False)))
        track.preview = preview
        if self.partial_results:
            preview.task.add_done_callback(lambda _: self._show_partial(track, preview))

    def _show_partial(self, track: _Track, preview: _Preview) -> None:
        task = preview.task
        if track.preview is not preview or task.cancelled() or task.exception() is not None:
            return  # the chunk has ended since (its final follows), or the preview failed
        result = task.result()
        if result is None:
            return
        text = clean_transcript(result.text, self.config.filter_phrases)
        if text and text != track.last_partial:
            track.last_partial = text
            chunk = preview.chunk
            self._post(
                track,
                messages.transcript_partial(
                    text=text,
                    speaker_id=track.speaker_id,
                    speaker=self._name(track),
                    start_ms=track.ms(chunk.start),
                    segment_id=track.segment_id(chunk),
                ),
            )

    async def _finish(
        self,
        track: _Track,
        chunk: Chunk,
        audio: np.ndarray,
        preview: asyncio.Task[Transcript | None] | None,
        previous: asyncio.Task[None] | None,
    ) -> None:
        """Transcribe a final chunk (or take the preview of the same audio) and publish it after the previous one."""
        result = await preview if preview is not None else None
        if result is None:  # no preview, or it failed: previews are not retried, finals are
            result = await self._transcribe(audio, final=True)
        text = clean_transcript(result.text, self.config.filter_phrases) if result is not None else ""
        if previous is not None:
            await asyncio.wait([previous])
        if not text:
            return
        language = result.language if result is not None and result.language else self.language
        message = messages.transcript(
            text=text,
            speaker_id=track.speaker_id,
            speaker=self._name(track),
            start_ms=track.ms(chunk.start),
            end_ms=track.ms(chunk.end),
            segment_id=track.segment_id(chunk),
            language="" if language == "auto" else language,
            transcription_id=self.transcription_id,
        )
        await self._post(track, message)

    async def _transcribe(self, audio: np.ndarray, *, final: bool) -> Transcript | None:
        """Whisper in a worker thread under the semaphore; None when the chunk has to be given up.

        A final chunk the service could not take now is retried twice; other failures (bad audio, model
        missing) would fail again, so the chunk is dropped. Previews are never retried: the final will be.
        """
        log = logger.error if final else logger.debug  # a failed preview is redone by its final
        self._calls += 1
        try:
            for attempt, delay in enumerate((*RETRY_DELAYS, None) if final else (None,), start=1):
                try:
                    async with self._semaphore:
                        return await asyncio.to_thread(self.whisper.transcribe, audio, language=self.language)
                except WhisperUnavailable as exc:
                    if delay is None:
                        log("Whisper unavailable; %.1f s chunk dropped: %s", len(audio) / SAMPLE_RATE, _redact(exc))
                        return None
                    logger.warning(
                        "Whisper unavailable (attempt %d), retrying in %.2f s: %s", attempt, delay, _redact(exc)
                    )
                    await asyncio.sleep(delay)
                except (TranscriptionError, ValueError) as exc:
                    log("Whisper failed; %.1f s chunk dropped: %s", len(audio) / SAMPLE_RATE, _redact(exc))
                    return None
            return None
        finally:
            self._calls -= 1

    def _name(self, track: _Track) -> str:
        return self._names.get(track.speaker_id, track.speaker_id)

    def _spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("Live transcription task failed", exc_info=task.exception())

    def _post(self, track: _Track, message: Message) -> asyncio.Future[None]:
        """Queue a message, stamped with its track's id, for the sender; the future resolves once `emit` has
        returned (or failed)."""
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox.put_nowait((dataclasses.replace(message, track_id=track.track_id), sent))
        track.last_posted = sent
        if self._sender is None:
            self._sender = asyncio.ensure_future(self._send_all())
        return sent

    async def _send_all(self) -> None:
        while True:
            message, sent = await self._outbox.get()
            try:
                await self._emit(message)
            except Exception:
                logger.exception("Publishing a %s message failed", message.type)
            finally:
                if not sent.done():
                    sent.set_result(None)
                self._outbox.task_done()
