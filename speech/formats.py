"""Transcript renderers shared by the Whisper service and the API: text, SRT, WebVTT, TSV and JSON."""

from __future__ import annotations

from typing import Any

from .transcript import Transcript

__all__ = ["MEDIA_TYPES", "OUTPUTS", "render", "timestamp", "to_json", "to_srt", "to_text", "to_tsv", "to_vtt"]

MEDIA_TYPES = {
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
    "json": "application/json",
}
OUTPUTS = ("text", "srt", "vtt", "tsv", "json")


def timestamp(seconds: float, decimal_marker: str = ".") -> str:
    """HH:MM:SS.mmm (VTT) or HH:MM:SS,mmm (SRT); rounded to the millisecond, hours never wrap."""
    total_ms = max(0, round(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


def _cue_text(text: str) -> str:
    """A cue's text: no surrounding space, and no '-->' that would read as a timing line."""
    return text.strip().replace("-->", "->")


def _cues(transcript: Transcript) -> list[tuple[float, float, str]]:
    return [(s.start, s.end, _cue_text(s.text)) for s in transcript.segments if s.text.strip()]


def to_text(transcript: Transcript) -> str:
    """One line per segment, like whisper-asr-webservice's txt output."""
    return "".join(f"{text}\n" for _, _, text in _cues(transcript))


def to_srt(transcript: Transcript) -> str:
    """SubRip: 1-based indexes, HH:MM:SS,mmm, cues separated by a blank line."""
    blocks = [
        f"{index}\n{timestamp(start, ',')} --> {timestamp(end, ',')}\n{text}\n"
        for index, (start, end, text) in enumerate(_cues(transcript), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(transcript: Transcript) -> str:
    """WebVTT: the WEBVTT header, then HH:MM:SS.mmm cues separated by blank lines."""
    blocks = [f"{timestamp(start)} --> {timestamp(end)}\n{text}\n" for start, end, text in _cues(transcript)]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_tsv(transcript: Transcript) -> str:
    """whisper-asr-webservice's TSV: a header, then integer milliseconds and the text (tabs replaced)."""
    rows = [
        f"{round(start * 1000)}\t{round(end * 1000)}\t{text.replace(chr(9), ' ')}\n"
        for start, end, text in _cues(transcript)
    ]
    return "start\tend\ttext\n" + "".join(rows)


def to_json(transcript: Transcript) -> dict[str, Any]:
    """`{"text", "segments": [{"id", "start", "end", "text", "words"?}], "language", "duration"}`."""
    return transcript.as_json()


def render(transcript: Transcript, output: str) -> str | dict[str, Any]:
    """Render by name (json gives a dict; `txt` is an alias of text)."""
    name = "text" if output == "txt" else output
    if name == "json":
        return to_json(transcript)
    renderers = {"text": to_text, "srt": to_srt, "vtt": to_vtt, "tsv": to_tsv}
    if name not in renderers:
        raise ValueError(f"Unknown output format {output!r}; use one of json, text, srt, vtt, tsv.")
    return renderers[name](transcript)
