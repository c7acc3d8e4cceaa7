"""The one Whisper client: the REST service when WHISPER_URL is set, otherwise the in-process engine.

Used by the Celery worker and the live agent, so no Django here. Either way `transcribe()` has the same
signature and returns the same `Transcript`; `WhisperUnavailable` is the transient error callers retry.
"""

from __future__ import annotations

import io
import os
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import requests

from envvars import env_float, env_optional, env_str

from .engine import SAMPLE_RATE, AudioInput, Task, WhisperEngine, get_engine, normalise_language
from .transcript import ModelUnavailable, Transcript, TranscriptionError, UndecodableAudio

__all__ = [
    "ModelUnavailable",
    "TranscriptionError",
    "UndecodableAudio",
    "WhisperClient",
    "WhisperUnavailable",
    "wav_bytes",
]


class WhisperUnavailable(TranscriptionError):  # noqa: N818 - the name callers know
    """The Whisper service cannot answer now (down, overloaded, loading, timed out): retry later."""


def wav_bytes(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """float32 mono samples → a 16-bit PCM WAV file (what we upload for numpy input)."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


@dataclass
class WhisperClient:
    """`url=None` transcribes in this process (the shared engine); otherwise POSTs to `{url}/asr`."""

    url: str | None = None
    token: str | None = None
    timeout: float = 300.0
    connect_timeout: float = 5.0
    engine: WhisperEngine | None = None

    @classmethod
    def from_env(cls) -> WhisperClient:
        """WHISPER_URL, WHISPER_API_TOKEN, WHISPER_TIMEOUT_SECONDS (300), WHISPER_CONNECT_TIMEOUT_SECONDS (5)."""
        return cls(
            url=env_str("WHISPER_URL").rstrip("/") or None,
            token=env_optional("WHISPER_API_TOKEN"),
            timeout=env_float("WHISPER_TIMEOUT_SECONDS", 300.0),
            connect_timeout=env_float("WHISPER_CONNECT_TIMEOUT_SECONDS", 5.0),
        )

    @property
    def remote(self) -> bool:
        return self.url is not None

    def transcribe(
        self,
        audio: AudioInput,
        *,
        language: str | None = None,
        task: Task = "transcribe",
        word_timestamps: bool | None = None,
        vad_filter: bool | None = None,
    ) -> Transcript:
        """Same contract as `engine.transcribe`; None options mean the engine's (or service's) configured default."""
        if self.url is None:
            engine = self.engine or get_engine()
            return engine.transcribe(
                audio, language=language, task=task, word_timestamps=word_timestamps, vad_filter=vad_filter
            )
        params: dict[str, str] = {"output": "json", "task": task}
        if language is not None:  # validate here so a typo fails fast, without a round trip
            params["language"] = normalise_language(language) or "auto"
        if word_timestamps is not None:
            params["word_timestamps"] = str(word_timestamps).lower()
        if vad_filter is not None:
            params["vad_filter"] = str(vad_filter).lower()
        response = self._post("/asr", params, _upload_body(audio))
        try:
            return Transcript.from_json(response.json())
        except (ValueError, KeyError, TypeError) as exc:
            raise TranscriptionError(f"The Whisper service at {self.url} sent an unreadable response: {exc}") from exc

    def health(self) -> dict[str, Any]:
        """The service's /health body (or the local engine's state); raises WhisperUnavailable if it cannot answer."""
        if self.url is None:
            engine = self.engine or get_engine()
            return {"status": "ok" if engine.ready else "loading", "model": engine.config.model}
        try:
            response = requests.get(f"{self.url}/health", timeout=(self.connect_timeout, self.connect_timeout))
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise WhisperUnavailable(f"The Whisper service at {self.url} is unreachable: {exc}") from exc
        if response.status_code != 200:
            raise WhisperUnavailable(f"The Whisper service at {self.url} is not ready: {body}")
        return body

    def _post(self, path: str, params: dict[str, str], body: bytes | Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        url = f"{self.url}{path}"
        try:
            response = requests.post(
                url,
                params=params,
                files={"audio_file": ("audio", body, "application/octet-stream")},
                headers=headers,
                timeout=(self.connect_timeout, self.timeout),
            )
        except requests.Timeout as exc:
            raise WhisperUnavailable(f"The Whisper service at {self.url} timed out: {exc}") from exc
        except requests.RequestException as exc:
            raise WhisperUnavailable(f"The Whisper service at {self.url} is unreachable: {exc}") from exc
        if response.ok:
            return response
        detail, code = _error_detail(response)
        status = response.status_code
        if status >= 500 or status == 429:
            raise WhisperUnavailable(f"The Whisper service at {self.url} answered {status}: {detail}")
        if status == 400 and code == "invalid_request":
            raise ValueError(detail)
        if status in {400, 415, 422}:
            raise UndecodableAudio(detail)
        raise TranscriptionError(f"The Whisper service at {self.url} refused the request ({status}): {detail}")


def _upload_body(audio: AudioInput) -> bytes | Any:
    if isinstance(audio, np.ndarray):
        if audio.ndim != 1:
            raise ValueError("A numpy audio array must be 1-D (mono, 16 kHz).")
        return wav_bytes(audio)
    if isinstance(audio, str | os.PathLike):
        path = Path(audio)
        if not path.is_file():
            raise FileNotFoundError(f"No such audio file: {path}")
        return path.read_bytes()
    if isinstance(audio, bytes | bytearray | memoryview):
        if not len(audio):
            raise UndecodableAudio("The audio is empty.")
        return bytes(audio)
    if hasattr(audio, "read"):
        return audio.read()
    raise TypeError(f"Cannot transcribe a {type(audio).__name__}: pass a path, bytes, a file or a numpy array.")


def _error_detail(response: requests.Response) -> tuple[str, str | None]:
    """The service's `{"detail", "code"}` (or OpenAI's `{"error": {...}}`), else the raw body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason or "", None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message")), body["error"].get("code")
    if isinstance(body, dict):
        return str(body.get("detail", body)), body.get("code")
    return str(body)[:500], None
