"""The live agent's tunables (SPEC §7), read once from the environment and checked up front.

A bad value is an envvars.ConfigError (a ValueError) naming the variable, so a misconfigured agent fails at start,
not mid-call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from envvars import ConfigError, env_float, env_int, env_list, env_optional, env_str
from speech.engine import normalise_language


@dataclass(frozen=True)
class AgentConfig:
    """Defaults are tuned for the live path on a 2-core CPU with tiny.en (bench/live_latency/README.md).

    The reference waited for a 1.5 s pause before transcribing, so a transcript could not appear sooner than
    ~2 s after the speaker stopped. Here an utterance ends after 0.7 s of silence (still longer than the pauses
    inside a sentence), and transcription already starts after a 0.25 s pause (SHORT_PAUSE_SECONDS), its result
    used if the pause lasts: Whisper (~0.45 s per chunk) finishes at about the time the pause is confirmed, and
    the final transcript lands ~0.8 s after the speech ends.
    """

    pause_threshold_seconds: float = 0.7
    short_pause_seconds: float = 0.25
    max_chunk_seconds: float = 30.0
    speech_rms_threshold: float = 0.01  # float samples in [-1, 1]: -40 dBFS
    whisper_max_concurrent: int = 1
    stt_language: str = "en"  # an ISO 639-1 code, or "auto" to detect per chunk
    filter_phrases: tuple[str, ...] = ()
    partial_interval_seconds: float = 1.0
    redis_url: str | None = None
    room_empty_timeout_seconds: float = 30.0
    # Rooms one worker takes at once. livekit-agents' own gate (the whole host's CPU under 70 %) refuses rooms
    # whenever Whisper or anything else sharing the host is busy, and LiveKit never offers a refused job again.
    max_rooms: int = 8

    def __post_init__(self) -> None:
        pause, short = self.pause_threshold_seconds, self.short_pause_seconds
        _check(pause > 0, "PAUSE_THRESHOLD_SECONDS", "must be positive", pause)
        _check(0 < short <= pause, "SHORT_PAUSE_SECONDS", "must be positive and at most PAUSE_THRESHOLD_SECONDS", short)
        _check(self.max_chunk_seconds >= 1, "MAX_CHUNK_SECONDS", "must be at least 1", self.max_chunk_seconds)
        _check(
            0 < self.speech_rms_threshold < 1, "SPEECH_RMS_THRESHOLD", "must be in (0, 1)", self.speech_rms_threshold
        )
        _check(
            self.whisper_max_concurrent >= 1,
            "WHISPER_MAX_CONCURRENT",
            "must be at least 1",
            self.whisper_max_concurrent,
        )
        _check(
            self.partial_interval_seconds > 0,
            "PARTIAL_INTERVAL_SECONDS",
            "must be positive",
            self.partial_interval_seconds,
        )
        _check(
            self.room_empty_timeout_seconds >= 0,
            "ROOM_EMPTY_TIMEOUT_SECONDS",
            "must not be negative",
            self.room_empty_timeout_seconds,
        )
        _check(self.max_rooms >= 1, "AGENT_MAX_ROOMS", "must be at least 1", self.max_rooms)
        try:
            language = normalise_language(self.stt_language) or "auto"
        except ValueError as exc:
            raise ConfigError(f"STT_LANGUAGE: {exc}") from None
        object.__setattr__(self, "stt_language", language)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AgentConfig:
        """Unset or empty variables keep the defaults above."""
        defaults = cls()

        def number(name: str, default: float) -> float:
            return env_float(name, default, environ=environ)

        return cls(
            pause_threshold_seconds=number("PAUSE_THRESHOLD_SECONDS", defaults.pause_threshold_seconds),
            short_pause_seconds=number("SHORT_PAUSE_SECONDS", defaults.short_pause_seconds),
            max_chunk_seconds=number("MAX_CHUNK_SECONDS", defaults.max_chunk_seconds),
            speech_rms_threshold=number("SPEECH_RMS_THRESHOLD", defaults.speech_rms_threshold),
            whisper_max_concurrent=env_int("WHISPER_MAX_CONCURRENT", defaults.whisper_max_concurrent, environ=environ),
            stt_language=env_str("STT_LANGUAGE", defaults.stt_language, environ=environ),
            filter_phrases=tuple(env_list("WHISPER_FILTER_PHRASES", environ=environ)),
            partial_interval_seconds=number("PARTIAL_INTERVAL_SECONDS", defaults.partial_interval_seconds),
            redis_url=env_optional("REDIS_URL", environ=environ),
            room_empty_timeout_seconds=number("ROOM_EMPTY_TIMEOUT_SECONDS", defaults.room_empty_timeout_seconds),
            max_rooms=env_int("AGENT_MAX_ROOMS", defaults.max_rooms, environ=environ),
        )


def _check(ok: bool, name: str, problem: str, value: float) -> None:
    if not ok:
        raise ConfigError(f"{name} {problem}, got {value!r}.")
