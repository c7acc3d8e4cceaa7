"""What the live agent publishes on the room's data channel (SPEC §7): the wire payloads, built in one place.

Field names are camelCase because they are the reference's wire format, which existing clients parse. Only
final transcripts are sent reliably: a lost speaking indicator or partial is superseded by the next message.
A final's fields are the Redis stream entry's (``SegmentEntry``), so the two are built from one another.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from speech.livestore import SegmentEntry

SPEAKING = "speaking"
SPEAKING_STOPPED = "speaking_stopped"
TRANSCRIPT = "transcript"
TRANSCRIPT_PARTIAL = "transcript_partial"


@dataclass(frozen=True)
class Message:
    payload: dict[str, Any]
    reliable: bool
    # The LiveKit track the message is about (its sid), set by the core. Not in the payload, whose fields SPEC §7
    # fixes: the sink names the transcribed track on LiveKit's own transcription stream with it.
    track_id: str = ""

    @property
    def type(self) -> str:
        return self.payload["type"]


def speaking(speaker_id: str, speaker: str, start_ms: int) -> Message:
    """Speech onset; `startMs` is an extra field (session ms of the onset)."""
    return Message({"type": SPEAKING, "speakerId": speaker_id, "speaker": speaker, "startMs": start_ms}, False)


def speaking_stopped(speaker_id: str, speaker: str, end_ms: int) -> Message:
    return Message({"type": SPEAKING_STOPPED, "speakerId": speaker_id, "speaker": speaker, "endMs": end_ms}, False)


def transcript(
    *,
    text: str,
    speaker_id: str,
    speaker: str,
    start_ms: int,
    end_ms: int,
    segment_id: str,
    language: str,
    transcription_id: str,
) -> Message:
    """A final segment; a partial with the same `segmentId` may have preceded it, which clients replace."""
    entry = SegmentEntry(transcription_id, segment_id, speaker_id, speaker, start_ms, end_ms, text, language)
    return Message({"type": TRANSCRIPT, **entry.to_payload()}, True)


def transcript_partial(*, text: str, speaker_id: str, speaker: str, start_ms: int, segment_id: str) -> Message:
    payload = {
        "type": TRANSCRIPT_PARTIAL,
        "text": text,
        "speakerId": speaker_id,
        "speaker": speaker,
        "startMs": start_ms,
        "segmentId": segment_id,
    }
    return Message(payload, False)


def to_segment_entry(message: Message, transcription_id: str) -> SegmentEntry:
    """The Redis stream entry for a final transcript (what the platform persists), clipped to what it stores."""
    if message.type != TRANSCRIPT:
        raise ValueError(f"Only final transcripts are stored, not {message.type!r} messages.")
    return replace(SegmentEntry.from_payload(message.payload), transcription_id=transcription_id).cleaned()
