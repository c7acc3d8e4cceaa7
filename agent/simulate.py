"""`python -m agent simulate --wav FILE`: the live pipeline on a file, without a LiveKit server (SPEC §7).

The file goes in 20 ms frames (what LiveKit delivers) through the same SessionCore, VAD and Whisper client as
the live agent; every message the agent would publish is printed as one JSON line, its payload plus `emittedMs`
(wall-clock ms since the stream started). With --realtime a frame is pushed when it would have been captured,
so `emittedMs` can be compared with positions in the audio: that is how latency is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import TextIO

import numpy as np

from speech.client import UndecodableAudio, WhisperClient
from speech.engine import SAMPLE_RATE, decode

from .config import AgentConfig
from .core import SessionCore, warm_up
from .messages import Message

FRAME_SECONDS = 0.02


def read_audio(path: Path) -> np.ndarray:
    """16 kHz mono float32 samples; PyAV resamples and downmixes a file that is not (and reads other formats)."""
    samples = decode(path)
    if samples.size == 0 and path.stat().st_size == 0:
        raise UndecodableAudio("the file is empty")
    return samples


async def simulate(
    samples: np.ndarray,
    *,
    config: AgentConfig,
    whisper: WhisperClient,
    speaker_id: str = "speaker",
    realtime: bool = False,
    partial: bool = False,
    out: TextIO = sys.stdout,
) -> None:
    started = time.monotonic()

    async def emit(message: Message) -> None:
        line = {**message.payload, "emittedMs": round((time.monotonic() - started) * 1000)}
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
        out.flush()

    core = SessionCore(config, whisper, emit, partial_results=partial)
    core.add_track(speaker_id, speaker_id, speaker_id)
    step = round(FRAME_SECONDS * SAMPLE_RATE)
    for offset in range(0, len(samples), step):
        frame = samples[offset : offset + step]
        if realtime:  # sleep to the frame's capture time on the audio clock, so lateness never accumulates
            await asyncio.sleep(max(0.0, started + (offset + len(frame)) / SAMPLE_RATE - time.monotonic()))
        else:
            await asyncio.sleep(0)  # let Whisper calls start and messages go out between frames
        await core.push(speaker_id, frame)
    await core.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent simulate",
        description="Feed a WAV file through the live transcription pipeline; print the messages as JSON lines.",
    )
    parser.add_argument("--wav", required=True, type=Path, help="16-bit PCM WAV (other rates/channels are converted)")
    parser.add_argument("--speaker-id", default="speaker", help="speakerId (and speaker name) of the messages")
    parser.add_argument("--realtime", action="store_true", help="feed the audio at real-time pace")
    parser.add_argument("--partial", action="store_true", help="also publish transcript_partial messages")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    try:
        config = AgentConfig.from_env()
        whisper = WhisperClient.from_env()
    except ValueError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    try:
        samples = read_audio(args.wav)
    except (OSError, UndecodableAudio) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"simulate: cannot read {args.wav}: {reason}", file=sys.stderr)
        return 2
    warm_up(whisper)  # as the live worker does before taking jobs: the model load is not part of the latency
    asyncio.run(
        simulate(
            samples,
            config=config,
            whisper=whisper,
            speaker_id=args.speaker_id,
            realtime=args.realtime,
            partial=args.partial,
        )
    )
    return 0
