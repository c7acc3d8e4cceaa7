"""Transcript renderers: SRT, WebVTT, TSV, text and JSON, parsed back."""

import re

import pytest

from speech.formats import render, timestamp, to_json, to_srt, to_text, to_tsv, to_vtt
from speech.transcript import Segment, Transcript, Word

TRANSCRIPT = Transcript(
    language="en",
    duration=3725.5,
    segments=[
        Segment(0.0, 2.5, " Hello there.", words=[Word(0.0, 0.4, " Hello", 0.9), Word(0.5, 2.5, " there.", 0.8)]),
        Segment(2.5, 61.0049, " A minute --> later."),
        Segment(10.0, 10.5, "   "),  # Whisper can emit an empty segment: it is not a cue
        Segment(3599.9996, 3725.25, " Over\tan hour."),
    ],
)

SRT_TIME = r"\d{2}:\d{2}:\d{2},\d{3}"
VTT_TIME = r"\d{2}:\d{2}:\d{2}\.\d{3}"


@pytest.mark.parametrize(
    ("seconds", "marker", "expected"),
    [
        (0, ",", "00:00:00,000"),
        (1.0005, ".", "00:00:01.000"),
        (61.0049, ",", "00:01:01,005"),
        (3599.9996, ".", "01:00:00.000"),
        (3725.25, ",", "01:02:05,250"),
        (100 * 3600 + 1.5, ".", "100:00:01.500"),
        (-0.2, ".", "00:00:00.000"),
    ],
)
def test_timestamp(seconds, marker, expected):
    assert timestamp(seconds, marker) == expected


def test_srt_parses_back():
    srt = to_srt(TRANSCRIPT)
    assert srt.endswith("\n")
    assert not srt.endswith("\n\n")
    blocks = srt.split("\n\n")
    assert len(blocks) == 3
    for index, block in enumerate(blocks, start=1):
        lines = block.strip("\n").split("\n")
        assert lines[0] == str(index)
        assert re.fullmatch(rf"{SRT_TIME} --> {SRT_TIME}", lines[1])
        assert len(lines) == 3
        assert lines[2]
        assert "-->" not in lines[2]
    assert blocks[0] == "1\n00:00:00,000 --> 00:00:02,500\nHello there."
    assert blocks[1].split("\n")[1] == "00:00:02,500 --> 00:01:01,005"
    assert blocks[2].split("\n")[1:3] == ["01:00:00,000 --> 01:02:05,250", "Over\tan hour."]


def test_vtt_parses_back():
    vtt = to_vtt(TRANSCRIPT)
    assert vtt.startswith("WEBVTT\n\n")
    cues = vtt.removeprefix("WEBVTT\n\n").split("\n\n")
    assert len(cues) == 3
    for cue in cues:
        timing, text = cue.strip("\n").split("\n")
        assert re.fullmatch(rf"{VTT_TIME} --> {VTT_TIME}", timing)
        assert text
        assert "-->" not in text
    assert cues[0] == "00:00:00.000 --> 00:00:02.500\nHello there."


def test_tsv_is_milliseconds():
    rows = [line.split("\t") for line in to_tsv(TRANSCRIPT).splitlines()]
    assert rows[0] == ["start", "end", "text"]
    assert rows[1] == ["0", "2500", "Hello there."]
    assert rows[2] == ["2500", "61005", "A minute -> later."]
    assert rows[3] == ["3600000", "3725250", "Over an hour."]  # the tab in the text is not a column
    assert len(rows) == 4


def test_text_and_json():
    assert to_text(TRANSCRIPT) == "Hello there.\nA minute -> later.\nOver\tan hour.\n"
    assert TRANSCRIPT.text == "Hello there. A minute --> later. Over\tan hour."
    data = to_json(TRANSCRIPT)
    assert data["language"] == "en"
    assert data["duration"] == 3725.5
    assert [s["id"] for s in data["segments"]] == [0, 1, 2, 3]
    assert data["segments"][0]["words"][0] == {"start": 0.0, "end": 0.4, "word": " Hello", "probability": 0.9}
    assert "words" not in data["segments"][1]
    assert Transcript.from_json(data) == TRANSCRIPT


def test_empty_transcript():
    empty = Transcript(language="en", duration=1.0, segments=[])
    assert (to_text(empty), to_srt(empty), to_vtt(empty), to_tsv(empty)) == ("", "", "WEBVTT\n\n", "start\tend\ttext\n")


def test_render_by_name():
    assert render(TRANSCRIPT, "txt") == render(TRANSCRIPT, "text") == to_text(TRANSCRIPT)
    assert render(TRANSCRIPT, "json") == to_json(TRANSCRIPT)
    with pytest.raises(ValueError, match="Unknown output format"):
        render(TRANSCRIPT, "docx")
