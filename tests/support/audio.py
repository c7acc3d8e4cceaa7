"""Speech fixtures: espeak-ng utterances at 16 kHz mono (via sox), cached for the session, and a WER helper."""

import atexit
import hashlib
import re
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import jiwer
import numpy as np

SAMPLE_RATE = 16_000
_CACHE = Path(tempfile.mkdtemp(prefix="rtcstack-speech-"))
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

SENTENCES = (
    "The meeting will start at ten o'clock tomorrow morning.",
    "Please send the quarterly report to the finance team before Friday.",
    "We need to review the budget and hire two new engineers next month.",
    "The weather today is sunny with a light breeze from the west.",
    "Can everyone hear me clearly? Let's begin with the first item on the agenda.",
)
_NUMBERS = dict(
    enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
    )
)


def speech(text: str, *, voice: str = "en-us", words_per_minute: int = 150) -> Path:
    """A 16 kHz mono 16-bit WAV of espeak-ng saying `text` (generated once per session)."""
    key = hashlib.sha256(f"{voice}|{words_per_minute}|{text}".encode()).hexdigest()[:16]
    out = _CACHE / f"{key}.wav"
    if not out.exists():
        raw = _CACHE / f"{key}.raw.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(raw), text], check=True)
        # -D: no dither, so every run renders the same samples (dither made tiny.en flip near-tie words).
        subprocess.run(["sox", "-D", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(out)], check=True)
        raw.unlink()
    return out


def read_wav(path: Path) -> np.ndarray:
    """float32 samples in [-1, 1] from a 16-bit mono WAV."""
    with wave.open(str(path), "rb") as source:
        assert source.getnchannels() == 1
        assert source.getsampwidth() == 2
        assert source.getframerate() == SAMPLE_RATE
        frames = source.readframes(source.getnframes())
    return np.frombuffer(frames, "<i2").astype(np.float32) / 32768.0


def write_wav(path: Path, samples: np.ndarray) -> Path:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return path


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def concat(*parts: np.ndarray | float) -> np.ndarray:
    """Utterances and pauses in order; a number is that many seconds of silence."""
    return np.concatenate([silence(part) if isinstance(part, int | float) else part for part in parts])


def utterances(*texts: str, pause: float = 1.0) -> np.ndarray:
    """The texts spoken one after another with `pause` seconds between them (and half a pause around)."""
    parts: list[np.ndarray | float] = [pause / 2]
    for text in texts:
        parts += [read_wav(speech(text)), pause]
    parts[-1] = pause / 2
    return concat(*parts)


def normalise(text: str) -> str:
    """Lowercase, no punctuation (apostrophes kept inside words), single spaces."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^\w\s']", " ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    return " ".join(_NUMBERS.get(int(word), word) if word.isdigit() else word for word in text.split())


def wer(reference: str, hypothesis: str) -> float:
    return jiwer.wer(normalise(reference), normalise(hypothesis) or "<empty>")
