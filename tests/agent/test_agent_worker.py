"""The live agent's LiveKit glue (agent/worker.py, agent/sink.py), tested at its seams.

Redis is the machine's real Redis (the test settings' REDIS_URL, flushed before each test). LiveKit is the one
thing stood in for (tests/support/fakes.py): objects shaped like livekit.rtc's Room / RemoteParticipant /
publications / tracks (and real ``rtc.AudioFrame`` frames) drive ``LiveSession``, a recording fake stands in for the
local participant's ``publish_data``, and the worker process itself (``python -m agent``) talks to
tests/support/livekit_agent_standin.py over the real agent-worker protocol. What needs a real LiveKit server (media)
is listed in that stand-in.
"""

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import pytest
import redis
import redis.asyncio as aioredis
import requests
from django.conf import settings
from livekit import api, rtc
from livekit.agents import AutoSubscribe
from livekit.protocol import agent as agent_proto

from agent import messages, worker
from agent.config import AgentConfig
from agent.core import SessionCore
from agent.sink import DATA_TOPIC, SegmentWriter, TranscriptionSink
from speech.livestore import (
    NAME_MAX_CHARS,
    AgentStore,
    SegmentEntry,
    SessionRecord,
    client_db,
    events_channel,
    segments_key,
    session_key,
)
from tests.support.fakes import (
    ROOM,
    STARTED_AT_MS,
    TRANSCRIPTION,
    FakeCore,
    FakeJobContext,
    FakeWhisper,
    Harness,
    RecordingParticipant,
    final,
    store,
)
from tests.support.livekit_agent_standin import AgentWorkerStandIn
from tests.support.servers import ROOT, free_port

VIDEO = rtc.TrackKind.KIND_VIDEO
AGENT = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 20))


def redis_client() -> aioredis.Redis:
    return aioredis.Redis.from_url(settings.REDIS_URL)


def closed_port_url() -> str:
    """The test Redis database behind a port nobody listens on (Redis down)."""
    return f"redis://127.0.0.1:{free_port()}{urlsplit(settings.REDIS_URL).path}"


async def put_session(client: aioredis.Redis, room: str = ROOM, **fields) -> SessionRecord:
    fields.setdefault("transcription_id", TRANSCRIPTION)
    fields.setdefault("status", "active")
    fields.setdefault("started_at_ms", STARTED_AT_MS)
    record = SessionRecord(**fields)
    await client.hset(session_key(room), mapping=record.to_hash())
    return record


async def stream_entries(client: aioredis.Redis, room: str = ROOM) -> list[SegmentEntry]:
    return [SegmentEntry.from_fields(data) for _, data in await client.xrange(segments_key(room))]


async def eventually(probe, timeout: float = 3.0):
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
    return value


def tone(samples: int = 320, value: int = 1000) -> np.ndarray:
    return (np.arange(samples, dtype=np.int16) % 50 - 25) * (value // 25)


# ---------------------------------------------------------------------- the sink, against the real Redis


def test_final_transcript_goes_to_the_room_stream_and_the_data_channel() -> None:
    async def scenario():
        publisher, client = RecordingParticipant(), redis_client()
        sink = TranscriptionSink(publisher, store(), ROOM, TRANSCRIPTION)
        message = final(3, speaker="Bob Ünicode", text="Grüße, everyone.")
        await sink(message)
        assert await sink.writer.flush(5)
        entries = await stream_entries(client)
        await sink.aclose()
        await client.aclose()
        return publisher, message, entries

    publisher, message, entries = run(scenario())
    assert entries == [
        SegmentEntry(
            transcription_id=TRANSCRIPTION,
            segment_id="TR_B-3000",
            speaker_id="bob",
            speaker="Bob Ünicode",
            start_ms=3000,
            end_ms=3800,
            text="Grüße, everyone.",
            language="en",
        )
    ]
    [(payload, reliable, topic)] = publisher.sent
    assert (json.loads(payload), reliable, topic) == (message.payload, True, DATA_TOPIC)
    assert "Grüße".encode() in payload  # UTF-8 JSON, not \\u escapes


def test_the_stream_entry_fits_postgresql_names_clipped_and_nul_characters_removed() -> None:
    """A LiveKit display name can be any length and Whisper can return NUL; the segment columns refuse both."""

    async def scenario():
        publisher, client = RecordingParticipant(), redis_client()
        sink = TranscriptionSink(publisher, store(), ROOM, TRANSCRIPTION)
        await sink(final(1, speaker_id="b\x00" + "i" * 300, speaker="B" * 300, text="Nul\x00 here."))
        assert await sink.writer.flush(5)
        [(_, fields)] = await client.xrange(segments_key(ROOM))  # as written, before the platform reads it
        await sink.aclose()
        await client.aclose()
        return publisher, fields

    publisher, fields = run(scenario())
    assert fields[b"speaker"] == b"B" * NAME_MAX_CHARS
    assert fields[b"speakerId"] == b"b" + b"i" * (NAME_MAX_CHARS - 1)
    assert fields[b"text"] == b"Nul here."
    assert json.loads(publisher.sent[0][0])["speaker"] == "B" * 300  # the call's clients get the message as is


def test_speaking_goes_to_the_events_channel_unreliably_and_not_to_the_stream() -> None:
    async def scenario():
        publisher, client = RecordingParticipant(), redis_client()
        pubsub = client.pubsub()
        await pubsub.subscribe(events_channel(ROOM, client_db(client)))
        await pubsub.get_message(timeout=1)  # the subscribe confirmation
        sink = TranscriptionSink(publisher, store(), ROOM, TRANSCRIPTION)
        message = messages.speaking("bob", "Bob", 120)
        await sink(message)
        received = None
        deadline = time.monotonic() + 3
        while received is None and time.monotonic() < deadline:
            received = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        await sink.aclose()
        length = await client.xlen(segments_key(ROOM))
        await pubsub.aclose()
        await client.aclose()
        return publisher, message, received, length

    publisher, message, received, length = run(scenario())
    assert received is not None
    assert message.payload == {"type": "speaking", "speakerId": "bob", "speaker": "Bob", "startMs": 120}
    assert json.loads(received["data"]) == message.payload
    assert [(json.loads(p), reliable, topic) for p, reliable, topic in publisher.sent] == [
        (message.payload, False, DATA_TOPIC)
    ]
    assert length == 0


def test_a_livekit_failure_does_not_stop_the_redis_write_nor_the_reverse(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="agent.sink")

    async def scenario():
        client = redis_client()
        failing = TranscriptionSink(RecordingParticipant(fail=True), store(), ROOM, TRANSCRIPTION)
        await failing(final(0))
        assert await failing.writer.flush(5)
        await failing.aclose()
        written = await stream_entries(client)
        await client.aclose()

        publisher = RecordingParticipant()
        redis_down = TranscriptionSink(publisher, AgentStore.from_url(closed_port_url()), ROOM, TRANSCRIPTION)
        await redis_down(messages.speaking("bob", "Bob", 0))
        await redis_down(messages.speaking_stopped("bob", "Bob", 900))
        await redis_down.aclose(timeout=0.1)
        return written, publisher

    written, publisher = run(scenario())
    assert [entry.segment_id for entry in written] == ["TR_B-0"]
    assert "could not publish a transcript message to room room-1" in caplog.text
    assert [payload["type"] for payload in publisher.payloads()] == ["speaking", "speaking_stopped"]
    assert "event for room room-1 not published to Redis" in caplog.text


@contextlib.asynccontextmanager
async def redis_behind(port: int):
    """Redis reachable on ``port`` (a TCP relay to the real one) for the duration of the block."""
    target = urlsplit(settings.REDIS_URL)

    async def relay(reader, writer):
        upstream_reader, upstream_writer = await asyncio.open_connection(target.hostname, target.port or 6379)

        async def pipe(source, sink):
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True)

    server = await asyncio.start_server(relay, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


def test_finals_survive_a_redis_outage_in_order(caplog) -> None:
    caplog.set_level(logging.INFO, logger="agent.sink")

    async def scenario():
        port = free_port()
        outage_store = AgentStore.from_url(f"redis://127.0.0.1:{port}{urlsplit(settings.REDIS_URL).path}")
        writer = SegmentWriter(outage_store, ROOM, first_retry_seconds=0.05, max_retry_seconds=0.2)
        publisher = RecordingParticipant()
        sink = TranscriptionSink(publisher, outage_store, ROOM, TRANSCRIPTION, writer=writer)
        for index in range(3):
            await asyncio.wait_for(sink(final(index)), 1)  # the emit does not wait for Redis
        delivered_live = len(publisher.sent)
        await asyncio.sleep(0.5)
        queued_during_outage = writer.pending
        async with redis_behind(port):
            flushed = await writer.flush(10)
            client = redis_client()
            entries = await stream_entries(client)
            await client.aclose()
            await sink.aclose()
        return delivered_live, queued_during_outage, flushed, entries, writer.written

    delivered_live, queued_during_outage, flushed, entries, written = run(scenario())
    assert delivered_live == 3
    assert queued_during_outage == 3
    assert flushed
    assert [entry.segment_id for entry in entries] == ["TR_B-0", "TR_B-1000", "TR_B-2000"]
    assert written == 3
    assert "Redis unavailable" in caplog.text
    assert "Redis reachable again" in caplog.text


def test_finals_redis_never_took_are_logged_in_full_not_dropped_silently(caplog) -> None:
    async def scenario():
        sink = TranscriptionSink(RecordingParticipant(), AgentStore.from_url(closed_port_url()), ROOM, TRANSCRIPTION)
        await sink(final(7, text="Keep me."))
        await sink.aclose(timeout=0.3)

    run(scenario())
    [line] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "final segment NOT written to Redis (room room-1)" in line.getMessage()
    assert '"text": "Keep me."' in line.getMessage()
    assert '"segmentId": "TR_B-7000"' in line.getMessage()


# ---------------------------------------------------------------------- LiveSession: tracks, speakers, leaving


def test_remote_audio_tracks_feed_the_core_under_their_speaker_names() -> None:
    async def scenario():
        record = await put_session(redis_client(), speakers={"alice": "Alice (platform)"})
        h = Harness(record)
        alice = h.room.join("alice", "alice-livekit-name")
        h.room.publish(alice, "TR_A", announce=False)  # already subscribed when the agent starts
        other_agent = h.room.join("agent-x", "Other agent", kind=AGENT)
        h.launch()
        await asyncio.sleep(0)
        bob = h.room.join("bob", "Bob")
        h.room.publish(bob, "TR_B")
        h.room.publish(bob, "TR_BV", VIDEO)
        carol = h.room.join("carol", "")
        h.room.publish(carol, "TR_C")
        h.room.publish(other_agent, "TR_X")
        frames = {"TR_A": [tone(320, 800), tone(160, 1600)], "TR_B": [tone(480, 3000)], "TR_C": [tone(320, 50)]}
        for sid, chunks in frames.items():
            for chunk in chunks:
                h.streams[sid].send(chunk)
        await eventually(lambda: sum(len(v) for v in h.core.pushed.values()) == 4)
        h.session.end("test over")
        await h.finished()
        return h, frames

    h, frames = run(scenario())
    assert sorted(h.core.named("add_track")) == [
        ("add_track", "TR_A", "alice", "Alice (platform)", 1234),
        ("add_track", "TR_B", "bob", "Bob", 1234),
        ("add_track", "TR_C", "carol", "carol", 1234),
    ]
    assert set(h.streams) == {"TR_A", "TR_B", "TR_C"}  # no stream for the video track nor the other agent's
    for sid, chunks in frames.items():
        pushed = h.core.pushed[sid]
        assert [p.dtype for p in pushed] == [np.dtype(np.int16)] * len(chunks)
        assert all(np.array_equal(p, c) for p, c in zip(pushed, chunks, strict=True))
    assert sorted(h.core.named("end_track")) == [("end_track", "TR_A"), ("end_track", "TR_B"), ("end_track", "TR_C")]
    assert h.core.calls[-1] == ("aclose",)
    assert h.left == ["test over"]


def test_unsubscribe_unpublish_and_disconnect_end_the_core_track_after_its_frames() -> None:
    async def scenario():
        h = Harness(await put_session(redis_client()))
        h.launch()
        await asyncio.sleep(0)
        bob = h.room.join("bob", "Bob")
        carol = h.room.join("carol", "Carol")
        b, c1 = h.room.publish(bob, "TR_B"), h.room.publish(carol, "TR_C1")
        h.room.publish(carol, "TR_C2")
        for _ in range(3):
            h.streams["TR_B"].send(tone())
        h.room.emit("track_unsubscribed", b.track, b, bob)  # frames already received are still pushed
        await eventually(lambda: ("end_track", "TR_B") in h.core.calls)
        pushed_before_end = len(h.core.pushed["TR_B"])
        h.streams["TR_C1"].send(tone())
        h.room.emit("track_unpublished", c1, carol)
        await eventually(lambda: ("end_track", "TR_C1") in h.core.calls)
        h.streams["TR_C2"].send(tone())
        h.room.leave(carol)
        await eventually(lambda: ("end_track", "TR_C2") in h.core.calls)
        h.room.publish(bob, "TR_B")  # re-subscribed later: a fresh feed
        h.streams["TR_B"].send(tone())
        await eventually(lambda: len(h.core.pushed["TR_B"]) == 4)
        ended_before_close = list(h.core.named("end_track"))
        h.session.end("test over")
        await h.finished()
        return h, pushed_before_end, ended_before_close

    h, pushed_before_end, ended_before_close = run(scenario())
    assert pushed_before_end == 3
    assert ended_before_close == [("end_track", "TR_B"), ("end_track", "TR_C1"), ("end_track", "TR_C2")]
    assert h.core.named("add_track")[-1] == ("add_track", "TR_B", "bob", "Bob", 1234)
    assert h.core.calls[-2:] == [("end_track", "TR_B"), ("aclose",)]


def test_a_track_resubscribed_before_its_old_feed_ended_reaches_the_core_in_order() -> None:
    async def scenario():
        h = Harness(await put_session(redis_client()))
        h.launch()
        await asyncio.sleep(0)
        bob = h.room.join("bob", "Bob")
        old = h.room.publish(bob, "TR_B")
        first_stream = h.streams["TR_B"]
        first_stream.send(tone(value=100))
        first_stream.send(tone(value=200))
        h.room.emit("track_unsubscribed", old.track, old, bob)
        h.room.publish(bob, "TR_B")  # at once, while the first feed still holds unread frames
        h.room.publish(bob, "TR_B")  # a duplicate event for a live feed is ignored
        h.streams["TR_B"].send(tone(value=300))
        await eventually(lambda: len(h.core.pushed["TR_B"]) == 3)
        h.session.end("test over")
        await h.finished()
        return h, first_stream

    h, first_stream = run(scenario())
    assert first_stream.closed
    assert [int(np.abs(p).max()) for p in h.core.pushed["TR_B"]] == [100, 200, 300]
    assert [c[:2] for c in h.core.calls] == [
        ("add_track", "TR_B"),
        ("end_track", "TR_B"),
        ("add_track", "TR_B"),
        ("end_track", "TR_B"),
        ("aclose",),
    ]


def test_stop_in_redis_writes_every_final_then_leaves() -> None:
    async def scenario():
        client = redis_client()
        h = Harness(await put_session(client))
        h.core.on_close.append(final(0, text="The last words."))
        at_leave: list[tuple[int, int]] = []

        def leave(reason: str) -> None:
            at_leave.append((h.session.sink.writer.written, h.session.sink.writer.pending))
            h.left.append(reason)

        h.session.leave = leave
        h.launch()
        await asyncio.sleep(0)
        bob = h.room.join("bob", "Bob")
        h.room.publish(bob, "TR_B")
        h.streams["TR_B"].send(tone())
        await eventually(lambda: h.core.pushed["TR_B"])
        await client.hset(session_key(ROOM), "status", "stopped")
        reason = await h.finished()
        entries = await stream_entries(client)
        await client.aclose()
        return h, reason, at_leave, entries

    h, reason, at_leave, entries = run(scenario())
    assert reason == "the transcription is stopped"
    assert h.left == [reason]
    assert at_leave == [(1, 0)]  # the last final was in Redis before the agent left
    assert [entry.text for entry in entries] == ["The last words."]
    assert h.core.calls[-2:] == [("end_track", "TR_B"), ("aclose",)]
    assert h.room.local_participant.payloads()[-1]["text"] == "The last words."


def test_a_newer_transcription_in_the_record_ends_the_session() -> None:
    async def scenario():
        client = redis_client()
        h = Harness(await put_session(client))
        h.room.join("bob", "Bob")
        h.launch()
        await asyncio.sleep(0.1)
        await put_session(client, transcription_id="tr-2")
        reason = await h.finished()
        await client.aclose()
        return h, reason

    h, reason = run(scenario())
    assert reason == "superseded by transcription tr-2"
    assert h.left == [reason]
    assert h.core.calls == [("aclose",)]


def test_a_vanished_record_keeps_the_session_going_until_the_platform_writes_it_again(caplog) -> None:
    """Redis restarted without its data: PostgreSQL still says active, so the agent must keep transcribing."""

    async def scenario():
        client = redis_client()
        h = Harness(await put_session(client))
        bob = h.room.join("bob", "Bob")
        h.launch()
        await asyncio.sleep(0)
        h.room.publish(bob, "TR_B")
        h.streams["TR_B"].send(tone())
        await eventually(lambda: h.core.named("add_track"))
        await client.delete(session_key(ROOM))
        await asyncio.sleep(h.session.poll_seconds * 6)  # several polls find no record
        running = not h.task.done()
        await h.session.sink(final(0, text="Said while Redis had no record."))
        await put_session(client, speakers={"bob": "Robert"})  # the platform restores it from PostgreSQL
        await eventually(lambda: h.core.named("rename_speaker"))
        await client.hset(session_key(ROOM), "status", "stopped")
        reason = await h.finished()
        entries = await stream_entries(client)
        await client.aclose()
        return h, running, reason, entries

    h, running, reason, entries = run(scenario())
    assert running
    assert "the session record is missing" in caplog.text
    assert h.core.named("rename_speaker") == [("rename_speaker", "bob", "Robert")]
    assert reason == "the transcription is stopped"
    assert [entry.text for entry in entries] == ["Said while Redis had no record."]


def test_speaker_names_follow_the_session_record_and_livekit_renames() -> None:
    async def scenario():
        client = redis_client()
        h = Harness(await put_session(client, speakers={"carol": "Carol (platform)"}))
        h.launch()
        await asyncio.sleep(0)
        bob, carol = h.room.join("bob", "Bob"), h.room.join("carol", "carol-lk")
        h.room.publish(bob, "TR_B")
        h.room.publish(carol, "TR_C")
        h.streams["TR_B"].send(tone())
        h.streams["TR_C"].send(tone())
        await eventually(lambda: len(h.core.named("add_track")) == 2)
        await put_session(client, speakers={"bob": "Robert", "carol": "Carol (platform)"})
        await eventually(lambda: h.core.named("rename_speaker"))
        h.room.emit("participant_name_changed", carol, "carol-lk", "Caroline")  # the platform's name still wins
        bob.name = "Bobby"
        await put_session(client, speakers={})  # the map emptied: LiveKit's names again
        await eventually(lambda: len(h.core.named("rename_speaker")) == 3)
        h.session.end("test over")
        await h.finished()
        await client.aclose()
        return h

    h = run(scenario())
    assert sorted(h.core.named("add_track")) == [
        ("add_track", "TR_B", "bob", "Bob", 1234),
        ("add_track", "TR_C", "carol", "Carol (platform)", 1234),
    ]
    first, *rest = h.core.named("rename_speaker")
    assert first == ("rename_speaker", "bob", "Robert")
    assert sorted(rest) == [("rename_speaker", "bob", "Bob"), ("rename_speaker", "carol", "Caroline")]


def test_an_empty_room_ends_the_session_after_the_timeout_other_agents_do_not_count() -> None:
    async def scenario():
        h = Harness(await put_session(redis_client()), empty_timeout=0.3)
        bob = h.room.join("bob", "Bob")
        h.room.join("agent-x", "Other agent", kind=AGENT)
        h.launch()
        await asyncio.sleep(0.5)
        still_running = not h.task.done()
        h.room.leave(bob)
        left_at = time.monotonic()
        reason = await h.finished()
        return h, still_running, reason, time.monotonic() - left_at

    h, still_running, reason, waited = run(scenario())
    assert still_running
    assert reason == "nobody in the room for 0.3 s"
    assert 0.3 <= waited < 3
    assert h.left == [reason]


def test_losing_the_room_ends_the_session_and_close_runs_once() -> None:
    async def scenario():
        h = Harness(await put_session(redis_client()))
        h.room.join("bob", "Bob")
        h.launch()
        await asyncio.sleep(0.05)
        h.room.emit("disconnected", rtc.DisconnectReason.ROOM_DELETED)
        await asyncio.gather(h.session.close(), h.session.close())  # the job's shutdown callback, concurrently
        reason = await h.finished()
        await h.session.close()
        return h, reason

    h, reason = run(scenario())
    assert reason == "disconnected from the room"
    assert h.core.named("aclose") == [("aclose",)]
    assert h.left == [reason]


def test_with_the_real_core_speech_becomes_a_stored_final_and_data_messages() -> None:
    """LiveSession + the real SessionCore (VAD, cleaning, ordering) + the sink; only Whisper is faked."""
    whisper = FakeWhisper()

    def core_factory(emit):
        return SessionCore(AgentConfig(), whisper, emit, transcription_id=TRANSCRIPTION)

    async def scenario():
        client = redis_client()
        h = Harness(await put_session(client), core_factory=core_factory)
        h.launch()
        await asyncio.sleep(0)
        h.room.publish(h.room.join("bob", "Bob"), "TR_B")
        rng = np.random.default_rng(7)
        speech = (np.sin(np.arange(16_000) * 2 * np.pi * 220 / 16_000) * 12_000).astype(np.int16)
        quiet = rng.normal(0, 30, 16_000).astype(np.int16)
        audio = np.concatenate([quiet[:8000], speech, quiet])
        for start in range(0, len(audio), 320):  # 20 ms frames, as LiveKit delivers them
            h.streams["TR_B"].send(audio[start : start + 320])
        await eventually(lambda: any(p["type"] == "transcript" for p in h.room.local_participant.payloads()), 10)
        await client.hset(session_key(ROOM), "status", "stopped")
        reason = await h.finished()
        entries = await stream_entries(client)
        await client.aclose()
        return h, reason, entries

    h, reason, entries = run(scenario())
    assert reason == "the transcription is stopped"
    sent = h.room.local_participant.sent
    kinds = [(json.loads(payload)["type"], reliable) for payload, reliable, _ in sent]
    assert kinds[0] == ("speaking", False)
    assert ("transcript", True) in kinds
    [entry] = entries
    assert (entry.text, entry.speaker_id, entry.speaker, entry.transcription_id) == (
        "Hello there.",
        "bob",
        "Bob",
        TRANSCRIPTION,
    )
    assert 1234 + 400 <= entry.start_ms <= 1234 + 600  # the track's offset plus ~0.5 s of silence
    assert entry.end_ms > entry.start_ms
    assert whisper.calls >= 1


# ---------------------------------------------------------------------- the job: metadata, session, joining


def metadata(transcription_id: str = TRANSCRIPTION, room: str = ROOM) -> str:
    return json.dumps({"transcriptionId": transcription_id, "roomId": room})


@pytest.mark.parametrize(
    ("raw", "status", "why"),
    [
        ("", "active", "job metadata is not JSON"),
        ("{not json", "active", "job metadata is not JSON"),
        ('["tr-1"]', "active", "job metadata is not a JSON object"),
        ('{"roomId": "room-1"}', "active", "job metadata has no transcriptionId"),
        ('{"transcriptionId": 7}', "active", "job metadata has no transcriptionId"),
        (metadata(room="room-2"), "active", "dispatched to room 'room-1' but the metadata names 'room-2'"),
        (metadata(), None, "no live transcription session for this room"),
        (metadata(), "stopped", "the transcription is stopped"),
        (metadata("tr-0"), "active", "dispatched for transcription tr-0, the room's is tr-1"),
    ],
)
def test_a_job_that_should_not_run_leaves_at_once_with_a_log_line(raw, status, why, caplog) -> None:
    async def scenario():
        client = redis_client()
        if status is not None:
            await put_session(client, status=status)
        ctx = FakeJobContext(raw)
        live = await worker.run_job(ctx, store(), AgentConfig(), lambda record: FakeCore)
        await client.aclose()
        return ctx, live

    ctx, live = run(scenario())
    assert live is None
    assert ctx.shutdowns == [why]
    assert ctx.connected == []
    assert f"not transcribing room room-1: {why}" in caplog.text


def test_a_job_with_redis_down_leaves_at_once() -> None:
    ctx = FakeJobContext(metadata())
    live = run(worker.run_job(ctx, AgentStore.from_url(closed_port_url()), AgentConfig(), lambda record: FakeCore))
    assert live is None
    [reason] = ctx.shutdowns
    assert reason.startswith("cannot read the session record")


def test_a_dispatched_job_joins_audio_only_and_shuts_the_job_down_when_stopped() -> None:
    async def scenario():
        client = redis_client()
        await put_session(client, language="de", partial_results=True)
        ctx = FakeJobContext(metadata())
        ctx.room.join("bob", "Bob")
        seen: list[SessionRecord] = []

        def for_record(record):
            seen.append(record)
            return FakeCore

        live = await worker.run_job(ctx, store(), AgentConfig(), for_record)
        await asyncio.sleep(0.1)
        running = ctx.shutdowns == []
        await client.hset(session_key(ROOM), "status", "stopped")
        await eventually(lambda: ctx.shutdowns)
        for callback in ctx.shutdown_callbacks:  # what the job does after leaving: idempotent
            await callback()
        await client.aclose()
        return ctx, live, seen, running

    ctx, live, seen, running = run(scenario())
    assert ctx.connected == [AutoSubscribe.AUDIO_ONLY]
    assert running
    assert ctx.shutdowns == ["the transcription is stopped"]
    assert ctx.shutdown_callbacks == [live.close]
    assert [(r.transcription_id, r.language, r.partial_results) for r in seen] == [(TRANSCRIPTION, "de", True)]
    assert live.core.named("aclose") == [("aclose",)]


def test_the_audio_stream_asks_livekit_for_16_khz_mono(monkeypatch) -> None:
    opened = []
    monkeypatch.setattr(worker.rtc, "AudioStream", lambda track, **options: opened.append((track, options)))
    worker.open_audio_stream("track")
    assert opened == [("track", {"sample_rate": 16_000, "num_channels": 1})]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["start"]),
        (["--log-level", "debug"], ["start", "--log-level", "debug"]),
        (["start"], ["start"]),
        (["dev"], ["dev"]),
        (["--help"], ["--help"]),
    ],
)
def test_no_subcommand_means_production_start(argv, expected) -> None:
    assert worker.cli_arguments(argv) == expected


# ---------------------------------------------------------------------- the worker process, on the wire


def agent_environment(livekit_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LIVEKIT_URL=livekit_url,
        LIVEKIT_API_KEY=settings.LIVEKIT_API_KEY,
        LIVEKIT_API_SECRET=settings.LIVEKIT_API_SECRET,
        REDIS_URL=settings.REDIS_URL,
        AGENT_HEALTH_PORT="0",
        WHISPER_URL=f"http://127.0.0.1:{free_port()}",  # never reached by these jobs; no model loads
    )
    return env


@pytest.mark.slow  # a `python -m agent` process
def test_without_redis_the_agent_refuses_to_start_with_one_line() -> None:
    env = agent_environment("ws://127.0.0.1:9")
    env.pop("REDIS_URL")
    result = subprocess.run(
        [sys.executable, "-m", "agent", "start"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "python -m agent: REDIS_URL is not set; the live agent needs Redis to store final segments."
    ]


def test_the_standin_lets_only_agent_tokens_open_a_worker_socket() -> None:
    async def attempt(url: str, token: str | None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(f"{url}/agent", headers=headers) as ws:
                    await ws.close()
                    return 101
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    key, secret = settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET
    tokens = [
        None,
        api.AccessToken(key, secret).with_identity("bob").with_grants(api.VideoGrants(room_join=True, room=ROOM)),
        api.AccessToken(key, "another-secret-that-is-long-enough-0123456789").with_grants(api.VideoGrants(agent=True)),
        api.AccessToken(key, secret).with_grants(api.VideoGrants(agent=True)),
    ]
    with AgentWorkerStandIn(key, secret) as livekit:
        statuses = [run(attempt(livekit.url, token and token.to_jwt())) for token in tokens]
        plain_get = requests.get(f"http://127.0.0.1:{livekit.port}/agent", timeout=5).status_code
    assert statuses == [401, 401, 401, 101]
    assert plain_get == 404


def test_the_worker_counts_its_rooms_not_the_hosts_cpu(monkeypatch) -> None:
    """livekit-agents' default gate refuses every room while the host's CPU is over 70 %, which Whisper alone
    reaches: the worker's load is its rooms out of AGENT_MAX_ROOMS instead (LiveKit sees it full at 1.0)."""
    monkeypatch.setenv("AGENT_MAX_ROOMS", "4")
    load = worker.build_server().load_fnc
    running = [SimpleNamespace(active_jobs=[object()] * count) for count in (0, 3, 4)]
    assert [load(server) for server in running] == [0.0, 0.75, 1.0]


@pytest.mark.slow  # a `python -m agent` process
def test_the_worker_registers_as_stt_live_takes_dispatches_and_stops_cleanly(tmp_path: Path) -> None:
    """``python -m agent`` (no subcommand: production start) against the agent-worker stand-in."""
    log_path = tmp_path / "agent.log"
    with AgentWorkerStandIn(settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET) as livekit:
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "agent"], cwd=ROOT, env=agent_environment(livekit.url), stdout=log, stderr=log
            )
        try:
            [connected] = livekit.wait_for(livekit.registered, 30)
            registration = connected.registration
            assert registration.agent_name == "stt-live"
            assert registration.type == agent_proto.JT_ROOM
            assert connected.claims.video.agent
            permissions = registration.allowed_permissions
            assert (permissions.can_subscribe, permissions.can_publish_data, permissions.agent) == (True, True, True)

            # A dispatch for a room without an active session: accepted, run, left at once.
            idle = livekit.dispatch("quiet-room", metadata(room="quiet-room"))
            assert idle.availability.available
            assert idle.availability.participant_identity
            assert idle.assignment is not None
            livekit.wait_for(lambda: [u for u in idle.updates if u.status == agent_proto.JS_SUCCESS], 20)
            assert livekit.room_joins == []

            # A dispatch for the room's active transcription: the job joins the room with its assignment's token,
            # not auto-subscribing (it subscribes to audio only); the stand-in runs no rooms, so it stops there.
            record = SessionRecord(TRANSCRIPTION, "active", started_at_ms=STARTED_AT_MS)
            redis.Redis.from_url(settings.REDIS_URL).hset(session_key(ROOM), mapping=record.to_hash())
            job = livekit.dispatch(ROOM, metadata())
            # A job runs in a process of its own: on a loaded 2-core machine its start takes a while.
            try:
                join = livekit.wait_for(lambda: next((j for j in livekit.room_joins if j.join_request), None), 120)
            except AssertionError as error:
                raise AssertionError(f"{error}; the agent's log:\n{log_path.read_text()[-6000:]}") from None
            assert join.claims is not None
            assert (join.claims.video.room_join, join.claims.video.room) == (True, ROOM)
            assert join.claims.identity == job.availability.participant_identity
            assert join.claims.kind == "agent"
            assert not join.join_request.connection_settings.auto_subscribe
        finally:
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(30)
        assert returncode == 0
        livekit.wait_for(lambda: connected.closed, 10)

    output = log_path.read_text()
    assert "not transcribing room quiet-room: no live transcription session for this room" in output
    assert settings.LIVEKIT_API_SECRET not in output
    assert job.assignment.token not in output
