"""`python -m agent simulate`: the live pipeline on a WAV file, run exactly as documented (a subprocess)."""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.support.audio import SAMPLE_RATE, SENTENCES, utterances, wer, write_wav
from tests.support.servers import ROOT

pytestmark = pytest.mark.slow  # `python -m agent simulate` processes, which load the Whisper model

MAX_WER = 0.2  # see test_agent_core.py
TIMEOUT = 120


def simulate(*args, **env_vars):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **env_vars}
    env.pop("WHISPER_URL", None)  # the in-process engine
    command = [sys.executable, "-m", "agent", "simulate", *map(str, args)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)


def lines(done):
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture(scope="module")
def two_utterances(tmp_path_factory):
    return write_wav(tmp_path_factory.mktemp("sim") / "two.wav", utterances(SENTENCES[0], SENTENCES[3], pause=1.0))


def test_one_json_line_per_message_with_the_wire_fields(two_utterances):
    messages = lines(simulate("--wav", two_utterances, "--speaker-id", "alice"))

    assert sorted(m["type"] for m in messages) == ["speaking"] * 2 + ["speaking_stopped"] * 2 + ["transcript"] * 2
    emitted = [m["emittedMs"] for m in messages]
    assert all(isinstance(ms, int) and ms >= 0 for ms in emitted)
    assert emitted == sorted(emitted)
    for message in messages:
        assert message["speakerId"] == message["speaker"] == "alice"
        kind = message["type"]
        if kind == "speaking":
            assert set(message) == {"type", "speakerId", "speaker", "startMs", "emittedMs"}
            assert isinstance(message["startMs"], int)
        elif kind == "speaking_stopped":
            assert set(message) == {"type", "speakerId", "speaker", "endMs", "emittedMs"}
            assert isinstance(message["endMs"], int)
        else:
            assert set(message) == {
                "type",
                "text",
                "speakerId",
                "speaker",
                "startMs",
                "endMs",
                "segmentId",
                "language",
                "transcriptionId",
                "emittedMs",
            }
            assert isinstance(message["text"], str)
            assert message["text"]
            assert isinstance(message["startMs"], int)
            assert isinstance(message["endMs"], int)
            assert 0 < message["startMs"] < message["endMs"]
            assert message["segmentId"] == f"alice-{message['startMs']}"
            assert (message["language"], message["transcriptionId"]) == ("en", "")
    finals = [m for m in messages if m["type"] == "transcript"]
    assert [m["startMs"] for m in finals] == sorted(m["startMs"] for m in finals)
    hypothesis = " ".join(m["text"] for m in finals)
    assert wer(f"{SENTENCES[0]} {SENTENCES[3]}", hypothesis) <= MAX_WER, hypothesis


def test_realtime_paces_the_audio_and_partials_precede_the_final(tmp_path):
    audio = utterances(SENTENCES[0], pause=1.0)
    path = write_wav(tmp_path / "one.wav", audio)
    started = time.monotonic()
    # A partial every 0.5 s of speech: one lands before the 3 s utterance ends even if Whisper is slow here.
    messages = lines(simulate("--wav", path, "--realtime", "--partial", PARTIAL_INTERVAL_SECONDS="0.5"))
    assert time.monotonic() - started >= len(audio) / SAMPLE_RATE

    speaking = next(m for m in messages if m["type"] == "speaking")
    final = next(m for m in messages if m["type"] == "transcript")
    assert 0 <= speaking["emittedMs"] - speaking["startMs"] <= 300  # emittedMs is on the audio's time line
    assert final["emittedMs"] >= final["endMs"] + 700  # not before the pause that ends the utterance
    partials = [m for m in messages if m["type"] == "transcript_partial"]
    assert partials, messages
    assert all(p["segmentId"] == final["segmentId"] and p["emittedMs"] <= final["emittedMs"] for p in partials)


def test_other_rates_and_channels_are_converted(two_utterances, tmp_path):
    stereo = tmp_path / "stereo-44k.wav"
    subprocess.run(["sox", str(two_utterances), "-r", "44100", "-c", "2", str(stereo)], check=True)
    finals = [m for m in lines(simulate("--wav", stereo)) if m["type"] == "transcript"]
    assert [m["speakerId"] for m in finals] == ["speaker", "speaker"]
    assert wer(f"{SENTENCES[0]} {SENTENCES[3]}", " ".join(m["text"] for m in finals)) <= MAX_WER


@pytest.mark.parametrize("content", [b"this is not audio", b"", None])
def test_unreadable_files_exit_2_with_one_line(tmp_path, content):
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    done = simulate("--wav", path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"simulate: cannot read {path}: ")
    assert done.stderr.count("\n") == 1
