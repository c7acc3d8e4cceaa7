"""The result types and errors shared by the engine, the client and the service (no heavy imports here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class TranscriptionError(Exception):
    """Base class: something went wrong transcribing; the message says what."""


class UndecodableAudio(TranscriptionError):  # noqa: N818 - the name callers know
    """The input is not audio we can decode (not a retryable error: the same bytes will fail again)."""


class ModelUnavailable(TranscriptionError):  # noqa: N818
    """The configured model cannot be loaded (e.g. a model name that is not available locally)."""


@dataclass(frozen=True, slots=True)
class Word:
    start: float
    end: float
    word: str
    probability: float

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "word": self.word, "probability": self.probability}


@dataclass(frozen=True, slots=True)
class Segment:
    start: float
    end: float
    text: str
    words: list[Word] | None = None

    def as_json(self, index: int) -> dict[str, Any]:
        data: dict[str, Any] = {"id": index, "start": self.start, "end": self.end, "text": self.text}
        if self.words is not None:
            data["words"] = [word.as_json() for word in self.words]
        return data


@dataclass(frozen=True, slots=True)
class Transcript:
    """One transcription: segment texts keep Whisper's leading space; `text` is their stripped join."""

    language: str
    duration: float
    segments: list[Segment] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(part for part in (segment.text.strip() for segment in self.segments) if part)

    def as_json(self) -> dict[str, Any]:
        """whisper-asr-webservice's JSON output, plus `duration`."""
        return {
            "text": self.text,
            "segments": [segment.as_json(index) for index, segment in enumerate(self.segments)],
            "language": self.language,
            "duration": self.duration,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Transcript:
        """Read back `as_json()` (what the REST service returns for output=json)."""
        segments = [
            Segment(
                start=float(item["start"]),
                end=float(item["end"]),
                text=str(item["text"]),
                words=None
                if item.get("words") is None
                else [
                    Word(float(w["start"]), float(w["end"]), str(w["word"]), float(w.get("probability", 0.0)))
                    for w in item["words"]
                ],
            )
            for item in data.get("segments") or []
        ]
        duration = data.get("duration")
        if duration is None:
            duration = segments[-1].end if segments else 0.0
        return cls(language=str(data.get("language") or ""), duration=float(duration), segments=segments)
