"""The live agent's wire format (SPEC §7), field by field, and the Redis entry built from a final transcript."""

import pytest

from agent import messages
from speech.livestore import SegmentEntry


def test_speaking_and_speaking_stopped_are_unreliable_indicators():
    started = messages.speaking("alice", "Alice", 1_250)
    assert (started.type, started.reliable) == ("speaking", False)
    assert started.payload == {"type": "speaking", "speakerId": "alice", "speaker": "Alice", "startMs": 1_250}
    stopped = messages.speaking_stopped("alice", "Alice", 4_000)
    assert (stopped.type, stopped.reliable) == ("speaking_stopped", False)
    assert stopped.payload == {"type": "speaking_stopped", "speakerId": "alice", "speaker": "Alice", "endMs": 4_000}


def test_transcript_is_reliable_with_the_reference_fields_first():
    final = messages.transcript(
        text="Hello there.",
        speaker_id="alice",
        speaker="Alice",
        start_ms=1_250,
        end_ms=2_500,
        segment_id="TR_a-1250",
        language="en",
        transcription_id="tr-1",
    )
    assert (final.type, final.reliable) == ("transcript", True)
    assert final.payload == {
        "type": "transcript",
        "text": "Hello there.",
        "speakerId": "alice",
        "speaker": "Alice",
        "startMs": 1_250,
        "endMs": 2_500,
        "segmentId": "TR_a-1250",
        "language": "en",
        "transcriptionId": "tr-1",
    }
    assert list(final.payload)[:5] == ["type", "text", "speakerId", "speaker", "startMs"]  # the reference's

    entry = messages.to_segment_entry(final, "tr-1")
    assert entry == SegmentEntry("tr-1", "TR_a-1250", "alice", "Alice", 1_250, 2_500, "Hello there.", "en")
    assert SegmentEntry.from_fields(entry.to_fields()) == entry


def test_partial_is_unreliable_and_shares_the_segment_id():
    partial = messages.transcript_partial(
        text="Hello", speaker_id="alice", speaker="Alice", start_ms=1_250, segment_id="TR_a-1250"
    )
    assert (partial.type, partial.reliable) == ("transcript_partial", False)
    assert partial.payload == {
        "type": "transcript_partial",
        "text": "Hello",
        "speakerId": "alice",
        "speaker": "Alice",
        "startMs": 1_250,
        "segmentId": "TR_a-1250",
    }
    with pytest.raises(ValueError, match="Only final transcripts"):
        messages.to_segment_entry(partial, "tr-1")
