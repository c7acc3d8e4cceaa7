"""Per-track voice-activity detection and chunking, timed on the audio clock (sample counts).

The reference timed pauses with the wall clock, so a busy agent (late frames, a slow event loop) heard pauses
that were never there and drifted. Here every decision is a function of the samples alone: the same audio gives
the same events however fast or late it arrives, which also makes the detector testable without a clock.

Speech is a 10 ms frame whose RMS is above both `SPEECH_RMS_THRESHOLD` and FLOOR_RATIO times the noise floor,
the floor being the quietest frame of the last few seconds (minimum statistics: a steady hum or hiss raises the
floor, speech does not, because speech always has quiet gaps between words). A frame only counts as voice when
enough of the frames just before it are speech too, so a click or a keyboard tap does not start an utterance.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from speech.engine import SAMPLE_RATE

from .config import AgentConfig

FRAME_SECONDS = 0.01
ONSET_WINDOW_FRAMES = 8  # an utterance starts when ONSET_FRAMES of the last 8 frames (80 ms) are speech
ONSET_FRAMES = 4
NOISE_WINDOW_SECONDS = 3.0
FLOOR_RATIO = 2.5  # speech is at least 8 dB above the noise floor
# Whisper gets some audio around the detected speech: soft onsets ("f", "h") and word endings fall below the
# energy threshold but matter to the decoder, and tiny.en hears a chunk's first word better with some lead-in.
# Measured on the live-latency bench file (10 utterances, 5 renderings): mean WER 0.020 with a 0.4 s pre-roll,
# 0.031-0.037 with 0.1-0.25 s, 0.029 for each utterance transcribed alone.
PREROLL_SECONDS = 0.4
TAIL_SECONDS = 0.2
# A forced cut happens at the quietest 50 ms of the chunk's last quarter, most likely a gap between words.
CUT_SEARCH_FRACTION = 0.25
CUT_SMOOTHING_FRAMES = 5


@dataclass(frozen=True)
class SpeechStarted:
    at: int  # sample of the first speech frame


@dataclass(frozen=True)
class SpeechStopped:
    at: int  # sample just after the last voiced frame


@dataclass(frozen=True)
class Chunk:
    """Speech to transcribe: `start`-`end` is the speech (for timestamps), `audio_*` what to send to Whisper.

    `final=False` marks a short pause: the chunk is complete if the pause lasts, so transcription may start now.
    A final chunk with the same bounds follows if it does.
    """

    start: int
    end: int
    audio_start: int
    audio_end: int
    final: bool


Event = SpeechStarted | Chunk | SpeechStopped


class VoiceActivityDetector:
    """Feed samples with `process()`; get onsets, chunks and ends back, each stamped with sample positions.

    Utterances end after `pause_seconds` of silence. After `short_pause_seconds` a provisional chunk is
    announced, or, once a chunk has run for half of `max_chunk_seconds`, the chunk is cut there while the
    speaker keeps the floor. A chunk that reaches `max_chunk_seconds` is cut at its quietest recent moment.
    """

    def __init__(
        self,
        *,
        pause_seconds: float,
        short_pause_seconds: float,
        max_chunk_seconds: float,
        rms_threshold: float,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        self.frame = round(sample_rate * FRAME_SECONDS)
        frames = 1 / FRAME_SECONDS
        self.pause_frames = max(1, round(pause_seconds * frames))
        self.short_pause_frames = max(1, min(round(short_pause_seconds * frames), self.pause_frames))
        self.max_frames = max(ONSET_WINDOW_FRAMES, round(max_chunk_seconds * frames))
        self.rms_threshold = rms_threshold
        self.preroll = round(PREROLL_SECONDS * sample_rate)
        self.tail = min(round(TAIL_SECONDS * sample_rate), self.short_pause_frames * self.frame)
        self._noise_frames = round(NOISE_WINDOW_SECONDS * frames)
        self._search_frames = max(CUT_SMOOTHING_FRAMES, round(self.max_frames * CUT_SEARCH_FRACTION))

        self._pending = np.empty(0, dtype=np.float32)  # samples short of a whole frame
        self._next = 0  # index of the next frame to analyse
        self._floor: deque[tuple[int, float]] = deque()  # increasing levels: the window's minimum is first
        self._loud: deque[int] = deque()  # speech frames among the last ONSET_WINDOW_FRAMES
        self._levels: deque[float] = deque(maxlen=self._search_frames)  # for the forced cut
        self.speaking = False
        self._chunk_start: int | None = None  # frame; None while the speaker pauses after a cut
        self._last_voiced = -1  # frame
        self._audio_floor = 0  # sample: where the previous chunk's audio ended (chunks never overlap)

    @classmethod
    def from_config(cls, config: AgentConfig, sample_rate: int = SAMPLE_RATE) -> VoiceActivityDetector:
        return cls(
            pause_seconds=config.pause_threshold_seconds,
            short_pause_seconds=config.short_pause_seconds,
            max_chunk_seconds=config.max_chunk_seconds,
            rms_threshold=config.speech_rms_threshold,
            sample_rate=sample_rate,
        )

    @property
    def position(self) -> int:
        """Samples analysed so far (the audio clock)."""
        return self._next * self.frame

    @property
    def voiced_now(self) -> bool:
        return self.speaking and self._last_voiced == self._next - 1

    @property
    def keep_from(self) -> int:
        """The earliest sample a chunk still to come can include: older audio may be forgotten."""
        if self._chunk_start is not None:
            return self._audio_start(self._chunk_start)
        return max(self._audio_floor, (self._next - ONSET_WINDOW_FRAMES) * self.frame - self.preroll, 0)

    def process(self, samples: np.ndarray) -> list[Event]:
        data = np.concatenate([self._pending, samples]) if self._pending.size else samples
        whole = data.size // self.frame * self.frame
        self._pending = data[whole:].copy()
        if not whole:
            return []
        frames = data[:whole].astype(np.float64).reshape(-1, self.frame)
        events: list[Event] = []
        for level in np.sqrt(np.mean(frames * frames, axis=1)):
            self._analyse(float(level), events)
        return events

    def flush(self) -> list[Event]:
        """End of stream: close the utterance in progress (the partial last frame is too short to matter)."""
        events: list[Event] = []
        if self.speaking:
            self._stop(events)
        return events

    def current_chunk(self) -> Chunk | None:
        """The speech so far of the chunk in progress, with all audio up to now (for a partial transcript)."""
        if not self.speaking or self._chunk_start is None:
            return None
        start = self._chunk_start
        return Chunk(
            start * self.frame, (self._last_voiced + 1) * self.frame, self._audio_start(start), self.position, False
        )

    def _analyse(self, level: float, events: list[Event]) -> None:
        index = self._next
        self._next += 1
        self._levels.append(level)
        while self._floor and self._floor[-1][1] >= level:
            self._floor.pop()
        self._floor.append((index, level))
        while self._floor[0][0] <= index - self._noise_frames:
            self._floor.popleft()
        while self._loud and self._loud[0] <= index - ONSET_WINDOW_FRAMES:
            self._loud.popleft()
        if level >= max(self.rms_threshold, FLOOR_RATIO * self._floor[0][1]):
            self._loud.append(index)

        if self._loud and self._loud[-1] == index and len(self._loud) >= ONSET_FRAMES:
            if not self.speaking:
                self.speaking = True
                events.append(SpeechStarted(self._loud[0] * self.frame))
            if self._chunk_start is None:
                self._chunk_start = self._loud[0]
            self._last_voiced = index
        elif self.speaking:
            silent = index - self._last_voiced
            if silent >= self.pause_frames:
                self._stop(events)
                return
            start = self._chunk_start
            if silent == self.short_pause_frames and start is not None:
                events.append(self._close(start, final=self._last_voiced + 1 - start >= self.max_frames // 2))

        if self._chunk_start is not None and self._next - self._chunk_start >= self.max_frames:
            events.append(self._cut(self._chunk_start))

    def _stop(self, events: list[Event]) -> None:
        if self._chunk_start is not None:
            events.append(self._close(self._chunk_start, final=True))
        events.append(SpeechStopped((self._last_voiced + 1) * self.frame))
        self.speaking = False

    def _audio_start(self, start_frame: int) -> int:
        return max(start_frame * self.frame - self.preroll, self._audio_floor, 0)

    def _close(self, start: int, *, final: bool) -> Chunk:
        """The chunk up to the last voiced frame (closed if final), with the tail of silence after it."""
        end = (self._last_voiced + 1) * self.frame
        chunk = Chunk(start * self.frame, end, self._audio_start(start), min(end + self.tail, self.position), final)
        if final:
            self._chunk_start = None
            self._audio_floor = chunk.audio_end
        return chunk

    def _cut(self, start: int) -> Chunk:
        """Max length reached: cut at the quietest 50 ms of the last quarter; the speech goes on after it."""
        levels = np.asarray(self._levels)
        smoothed = np.convolve(levels, np.ones(CUT_SMOOTHING_FRAMES) / CUT_SMOOTHING_FRAMES, mode="valid")
        first = self._next - len(levels)  # frame index of levels[0]
        cut = first + int(np.argmin(smoothed)) + CUT_SMOOTHING_FRAMES // 2
        cut = max(cut, start + 1)
        end = min(cut, self._last_voiced + 1)
        chunk = Chunk(start * self.frame, end * self.frame, self._audio_start(start), cut * self.frame, True)
        self._audio_floor = chunk.audio_end
        self._chunk_start = cut if self._last_voiced >= cut else None
        return chunk
