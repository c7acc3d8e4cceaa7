"""Captions on LiveKit's own transcription channel: every final (and partial, when asked) also goes out as an
``lk.transcription`` text stream, as livekit-agents publishes a user's speech, next to the unchanged RTCstack data
messages (SPEC §7).

The fast tests run the sink and LiveSession on the recording fakes (tests/support/fakes.py) and the real Redis;
the slow one runs the sink on a real ``rtc.Room`` joined to the SFU stand-in (tests/sfu, real WebRTC) and reads
the captions with a second SDK participant's text-stream handler, as LiveKit's components do.
"""

import asyncio
import dataclasses
import json
import logging
from urllib.parse import urlsplit

import numpy as np
import pytest
import redis.asyncio as aioredis
from django.conf import settings
from livekit import rtc
from livekit.agents.types import (
    ATTRIBUTE_TRANSCRIPTION_FINAL,
    ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID,
    ATTRIBUTE_TRANSCRIPTION_TRACK_ID,
    TOPIC_TRANSCRIPTION,
)

from agent import messages
from agent.config import AgentConfig
from agent.core import SessionCore
from agent.sink import DATA_TOPIC, TranscriptionSink
from speech.livestore import AgentStore, SegmentEntry, SessionRecord, segments_key, session_key
from tests.sfu import SFUStandIn
from tests.support.fakes import (
    ROOM,
    STARTED_AT_MS,
    TRANSCRIPTION,
    FakeWhisper,
    Harness,
    RecordedStream,
    RecordingParticipant,
    final,
    store,
)
from tests.support.servers import free_port

API_KEY = "APIlktranscription"
API_SECRET = "lk-transcription-test-secret-of-32-bytes"


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def on_track(message: messages.Message, track_id: str = "TR_B") -> messages.Message:
    """The message as the core emits it: stamped with the sid of the track it transcribes."""
    return dataclasses.replace(message, track_id=track_id)


def partial(index: int = 0, text: str = "Segment") -> messages.Message:
    """A partial of Bob's ``final(index)``: same segment."""
    return messages.transcript_partial(
        text=text, speaker_id="bob", speaker="Bob", start_ms=1000 * index, segment_id=f"TR_B-{1000 * index}"
    )


def caption(segment_id: str, is_final: bool, track_id: str = "TR_B") -> dict[str, str]:
    """The attributes livekit-agents puts on a user's transcription stream."""
    return {
        ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID: segment_id,
        ATTRIBUTE_TRANSCRIPTION_FINAL: "true" if is_final else "false",
        ATTRIBUTE_TRANSCRIPTION_TRACK_ID: track_id,
    }


async def stream_entries(room: str = ROOM) -> list[SegmentEntry]:
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        return [SegmentEntry.from_fields(data) for _, data in await client.xrange(segments_key(room))]
    finally:
        await client.aclose()


# ---------------------------------------------------------------------- the sink


def test_a_final_goes_out_on_lk_transcription_for_the_speaker_and_the_data_message_stays_as_it_was() -> None:
    async def scenario():
        publisher = RecordingParticipant()
        sink = TranscriptionSink(publisher, store(), ROOM, TRANSCRIPTION)
        await sink(on_track(final(2, text="Grüße, everyone.")))
        assert await sink.writer.flush(5)
        await sink.aclose()
        return publisher, await stream_entries()

    publisher, entries = run(scenario())
    assert publisher.streams == [
        RecordedStream(TOPIC_TRANSCRIPTION, caption("TR_B-2000", True), "bob", "Grüße, everyone.", closed=True)
    ]
    assert publisher.sent == [
        (
            '{"type":"transcript","text":"Grüße, everyone.","speakerId":"bob","speaker":"Bob","startMs":2000,'
            '"endMs":2800,"segmentId":"TR_B-2000","language":"en","transcriptionId":"tr-1"}'.encode(),
            True,
            DATA_TOPIC,
        )
    ]
    assert [entry.text for entry in entries] == ["Grüße, everyone."]


def test_partials_and_their_final_share_one_segment_id_in_the_order_they_were_said() -> None:
    async def scenario():
        publisher = RecordingParticipant()
        sink = TranscriptionSink(publisher, store(), ROOM, TRANSCRIPTION)
        for message in (partial(1, "Segment"), partial(1, "Segment number"), final(1), partial(2, "Seg")):
            await sink(on_track(message))
        await sink.aclose()
        return publisher

    publisher = run(scenario())
    assert [(s.text, s.attributes, s.sender_identity) for s in publisher.streams] == [
        ("Segment", caption("TR_B-1000", False), "bob"),
        ("Segment number", caption("TR_B-1000", False), "bob"),
        ("Segment number 1.", caption("TR_B-1000", True), "bob"),
        ("Seg", caption("TR_B-2000", False), "bob"),
    ]
    assert {s.topic for s in publisher.streams} == {TOPIC_TRANSCRIPTION}
    kinds = ["transcript_partial", "transcript_partial", "transcript", "transcript_partial"]
    assert [p["type"] for p in publisher.payloads()] == kinds


def test_speaking_indicators_are_no_captions_and_a_message_without_a_track_names_none() -> None:
    async def scenario():
        publisher = RecordingParticipant()
        sink = TranscriptionSink(publisher, store(), ROOM, TRANSCRIPTION)
        await sink(on_track(messages.speaking("bob", "Bob", 0)))
        await sink(on_track(messages.speaking_stopped("bob", "Bob", 900)))
        await sink(final(0))
        await sink.aclose()
        return publisher

    publisher = run(scenario())
    [stream] = publisher.streams
    assert stream.attributes == {ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID: "TR_B-0", ATTRIBUTE_TRANSCRIPTION_FINAL: "true"}
    assert [p["type"] for p in publisher.payloads()] == ["speaking", "speaking_stopped", "transcript"]


@pytest.mark.parametrize("failure", ["open", "write", "hang"])
def test_a_failing_text_stream_stops_neither_the_data_message_nor_redis(failure: str, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="agent.sink")

    async def scenario():
        publisher = RecordingParticipant(stream_failure=failure)
        sink = TranscriptionSink(publisher, store(), ROOM, TRANSCRIPTION, publish_timeout_seconds=0.3)
        for message in (partial(0), final(0), final(1)):
            await asyncio.wait_for(sink(on_track(message)), 2)
        assert await sink.writer.flush(5)
        await sink.aclose()
        return publisher, await stream_entries()

    publisher, entries = run(scenario())
    assert [p["type"] for p in publisher.payloads()] == ["transcript_partial", "transcript", "transcript"]
    assert [entry.segment_id for entry in entries] == ["TR_B-0", "TR_B-1000"]
    assert publisher.streams == []
    assert caplog.text.count(f"could not publish a transcript on {TOPIC_TRANSCRIPTION} to room room-1") == 2
    assert f"could not publish a transcript_partial on {TOPIC_TRANSCRIPTION}" in caplog.text


def test_when_livekit_is_down_redis_still_gets_the_final() -> None:
    async def scenario():
        sink = TranscriptionSink(RecordingParticipant(fail=True), store(), ROOM, TRANSCRIPTION)
        await sink(on_track(final(0)))
        assert await sink.writer.flush(5)
        await sink.aclose()
        return await stream_entries()

    assert [entry.segment_id for entry in run(scenario())] == ["TR_B-0"]


def test_a_redis_outage_does_not_hold_up_the_captions() -> None:
    async def scenario():
        publisher = RecordingParticipant()
        down = AgentStore.from_url(f"redis://127.0.0.1:{free_port()}{urlsplit(settings.REDIS_URL).path}")
        sink = TranscriptionSink(publisher, down, ROOM, TRANSCRIPTION)
        await asyncio.wait_for(sink(on_track(final(0))), 1)
        streams = list(publisher.streams)
        await sink.aclose(timeout=0.1)
        return streams

    [stream] = run(scenario())
    assert stream.attributes == caption("TR_B-0", True)


# ---------------------------------------------------------------------- LiveSession + the real core: track sids


def speech_and_silence() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half a second of quiet, 2.5 s of a loud tone (speech to the VAD), then a second of quiet."""
    rng = np.random.default_rng(7)
    tone = (np.sin(np.arange(40_000) * 2 * np.pi * 220 / 16_000) * 12_000).astype(np.int16)
    quiet = rng.normal(0, 30, 16_000).astype(np.int16)
    return quiet[:8000], tone, quiet


async def session_captions(partial_results: bool) -> tuple[Harness, list[RecordedStream]]:
    """Bob speaks once into a LiveSession (real SessionCore, fake Whisper); the captions it published."""
    whisper = FakeWhisper()
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    record = SessionRecord(TRANSCRIPTION, "active", partial_results=partial_results, started_at_ms=STARTED_AT_MS)
    await client.hset(session_key(ROOM), mapping=record.to_hash())

    def core_factory(emit):
        config = AgentConfig(partial_interval_seconds=0.5)
        return SessionCore(config, whisper, emit, partial_results=partial_results, transcription_id=TRANSCRIPTION)

    h = Harness(record, core_factory=core_factory)
    h.launch()
    await asyncio.sleep(0)
    h.room.publish(h.room.join("bob", "Bob"), "TR_B")
    lead, tone, quiet = speech_and_silence()
    publisher = h.room.local_participant

    def send(samples: np.ndarray) -> None:
        for start in range(0, len(samples), 320):  # 20 ms frames, as LiveKit delivers them
            h.streams["TR_B"].send(samples[start : start + 320])

    send(lead)
    send(tone[:16_000])
    if partial_results:  # let the first partial out before the utterance ends (it would be superseded otherwise)
        first = await publisher.next_stream()
        assert first.attributes[ATTRIBUTE_TRANSCRIPTION_FINAL] == "false"
    send(tone[16_000:])
    send(quiet)
    while not any(s.attributes[ATTRIBUTE_TRANSCRIPTION_FINAL] == "true" for s in publisher.streams):
        await publisher.next_stream(len(publisher.streams), timeout=10)
    await client.hset(session_key(ROOM), "status", "stopped")
    await h.finished()
    await client.aclose()
    return h, publisher.streams


def test_the_live_session_captions_name_the_track_and_the_speaker_partials_first() -> None:
    h, streams = run(session_captions(partial_results=True))
    *partials, last = streams
    assert partials
    segment = last.attributes[ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID]
    assert segment.startswith("TR_B-")
    for stream in streams:
        assert (stream.topic, stream.sender_identity) == (TOPIC_TRANSCRIPTION, "bob")
        assert stream.attributes == caption(segment, stream is last)
    assert last.text == "Hello there."
    data = h.room.local_participant.payloads()
    assert [p["segmentId"] for p in data if p["type"] == "transcript_partial"] == [segment] * len(partials)
    assert [p["segmentId"] for p in data if p["type"] == "transcript"] == [segment]


def test_without_partial_results_only_finals_go_out_on_lk_transcription() -> None:
    h, streams = run(session_captions(partial_results=False))
    [stream] = streams
    assert stream.attributes == caption(stream.attributes[ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID], True)
    assert "transcript_partial" not in {p["type"] for p in h.room.local_participant.payloads()}


# ---------------------------------------------------------------------- real WebRTC: the SDK's text-stream handler


@pytest.mark.slow
def test_an_sdk_participant_receives_the_captions_through_its_text_stream_handler() -> None:
    """The sink on a real ``rtc.Room`` (the agent's LocalParticipant) in the SFU stand-in; Bob reads the captions
    as LiveKit's components do, with ``register_text_stream_handler("lk.transcription", ...)``: each caption is
    attributed to the speaker, not the agent (livekit-server keeps the identity an agent names on a text stream).
    """

    async def scenario(sfu: SFUStandIn) -> None:
        room = "captions-room"
        alice, bob, agent = rtc.Room(), rtc.Room(), rtc.Room()
        opened: asyncio.Queue[tuple[rtc.TextStreamReader, str]] = asyncio.Queue()
        bob.register_text_stream_handler(
            TOPIC_TRANSCRIPTION, lambda reader, identity: opened.put_nowait((reader, identity))
        )
        data: asyncio.Queue[rtc.DataPacket] = asyncio.Queue()
        bob.on("data_received", data.put_nowait)
        announced: asyncio.Queue[rtc.RemoteTrackPublication] = asyncio.Queue()
        agent.on("track_published", lambda publication, _participant: announced.put_nowait(publication))
        sink = None
        try:
            await bob.connect(sfu.url, sfu.token("bob", room))
            await agent.connect(
                sfu.url, sfu.token("stt-live", room, kind="agent", agent=True), rtc.RoomOptions(auto_subscribe=False)
            )
            await alice.connect(sfu.url, sfu.token("alice", room))
            microphone = rtc.LocalAudioTrack.create_audio_track("mic", rtc.AudioSource(48_000, 1))
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            await alice.local_participant.publish_track(microphone, options)
            track_sid = (await asyncio.wait_for(announced.get(), 15)).sid  # as the agent sees the speaker's track

            sink = TranscriptionSink(agent.local_participant, store(), room, TRANSCRIPTION)
            segment = f"{track_sid}-1000"
            said = [
                messages.transcript_partial(
                    text="Hello", speaker_id="alice", speaker="Alice", start_ms=1000, segment_id=segment
                ),
                messages.transcript(
                    text="Hello there.",
                    speaker_id="alice",
                    speaker="Alice",
                    start_ms=1000,
                    end_ms=1900,
                    segment_id=segment,
                    language="en",
                    transcription_id=TRANSCRIPTION,
                ),
            ]
            for message in said:
                await sink(on_track(message, track_sid))

            streams = [await asyncio.wait_for(opened.get(), 15) for _ in said]
            assert [identity for _, identity in streams] == ["alice", "alice"]
            readers = [reader for reader, _ in streams]
            texts = [await asyncio.wait_for(reader.read_all(), 15) for reader in readers]
            assert texts == ["Hello", "Hello there."]
            for reader, is_final in zip(readers, (False, True), strict=True):
                assert reader.info.topic == TOPIC_TRANSCRIPTION
                assert reader.info.attributes == caption(segment, is_final, track_sid)

            packets = [await asyncio.wait_for(data.get(), 15) for _ in said]
            expected = [json.dumps(m.payload, ensure_ascii=False, separators=(",", ":")).encode() for m in said]
            assert [(p.data, p.topic) for p in packets] == [(e, DATA_TOPIC) for e in expected]
            assert await sink.writer.flush(5)
            assert [entry.segment_id for entry in await stream_entries(room)] == [segment]
        finally:
            if sink is not None:
                await sink.aclose()
            for participant in (alice, bob, agent):
                await participant.disconnect()

    with SFUStandIn(API_KEY, API_SECRET) as sfu:
        run(scenario(sfu))
