"""The SFU stand-in (tests/sfu) against the unmodified LiveKit Python SDK: real WebRTC on loopback.

Every wait is on an SDK event or a stand-in event, with a timeout; nothing sleeps in place of synchronising.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import math
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from livekit import api, rtc
from livekit.agents import AgentServer, JobContext, JobExecutorType
from livekit.protocol import models

from tests.sfu import LiveKitServer, SFUStandIn
from tests.support.livekit_agent_standin import ConnectedWorker

pytestmark = pytest.mark.slow  # real WebRTC: seconds per test

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "APIsfustandin"
API_SECRET = "sfu-stand-in-secret-of-at-least-32-bytes"
RATE = 48_000
FRAME = RATE // 100  # 10 ms, the SDK's frame size
AMPLITUDE = 8_000
ROOM_EVENTS = (
    "participant_connected",
    "participant_disconnected",
    "participant_active",
    "track_published",
    "track_unpublished",
    "track_subscribed",
    "track_unsubscribed",
    "track_muted",
    "track_unmuted",
    "data_received",
    "participant_metadata_changed",
    "participant_attributes_changed",
    "disconnected",
)


@pytest.fixture(scope="module")
def sfu() -> Iterator[SFUStandIn]:
    with SFUStandIn(API_KEY, API_SECRET) as standin:
        yield standin


def run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, 60))


class Client:
    """An ``rtc.Room`` whose events are all kept, so a test awaits the one it needs instead of sleeping."""

    def __init__(self, identity: str) -> None:
        self.identity = identity
        self.room = rtc.Room()
        self.seen: list[tuple[str, tuple[Any, ...]]] = []
        self._changed = asyncio.Event()
        for name in ROOM_EVENTS:
            self.room.on(name, self._keeper(name))

    def _keeper(self, name: str) -> Callable[..., None]:
        def keep(*args: Any) -> None:
            self.seen.append((name, args))
            self._changed.set()

        return keep

    async def wait(
        self, name: str, match: Callable[..., bool] = lambda *_: True, *, since: int = 0, timeout: float = 15
    ) -> tuple:
        """The first ``name`` event (from the ``since``-th on) whose arguments satisfy ``match``, waiting for it."""

        async def first() -> tuple:
            while True:
                for seen, args in self.seen[since:]:
                    if seen == name and match(*args):
                        return args
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(first(), timeout)

    def events(self, name: str) -> list[tuple[Any, ...]]:
        return [args for seen, args in self.seen if seen == name]

    def data(self) -> list[rtc.DataPacket]:
        return [args[0] for args in self.events("data_received")]

    async def data_packet(self, payload: bytes) -> rtc.DataPacket:
        (packet,) = await self.wait("data_received", lambda p: p.data == payload)
        return packet


@contextlib.asynccontextmanager
async def joined(
    sfu: SFUStandIn | LiveKitServer, room: str, *identities: str, auto_subscribe: bool = True, **grants: Any
) -> AsyncIterator[list[Client]]:
    """Participants connected to ``room`` one after another (``grants`` for all of them), disconnected after."""
    clients = [Client(identity) for identity in identities]
    options = rtc.RoomOptions(auto_subscribe=auto_subscribe)
    try:
        for client in clients:
            await client.room.connect(sfu.url, sfu.token(client.identity, room, **grants), options)
        yield clients
    finally:
        for client in clients:
            await client.room.disconnect()


async def publish_tone(client: Client, frequency: float, name: str = "mic") -> tuple[rtc.LocalTrackPublication, Any]:
    """A microphone track carrying a sine, fed in real time (the source's queue paces it) until cancelled."""
    source = rtc.AudioSource(RATE, 1)
    track = rtc.LocalAudioTrack.create_audio_track(name, source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    publication = await client.room.local_participant.publish_track(track, options)

    async def feed() -> None:
        start = 0
        while True:
            t = (np.arange(FRAME) + start) / RATE
            samples = (np.sin(2 * np.pi * frequency * t) * AMPLITUDE).astype(np.int16)
            await source.capture_frame(rtc.AudioFrame(samples.tobytes(), RATE, 1, FRAME))
            start += FRAME

    return publication, asyncio.ensure_future(feed())


async def received_audio(track: rtc.Track, seconds: float = 1.0) -> np.ndarray:
    """``seconds`` of what the subscriber decodes, from the first frame that is not silence."""
    stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
    chunks: list[np.ndarray] = []
    async for event in stream:
        samples = np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float64)
        if chunks or np.abs(samples).max() > AMPLITUDE / 4:
            chunks.append(samples)
        if sum(len(c) for c in chunks) >= seconds * RATE:
            break
    await stream.aclose()
    return np.concatenate(chunks)


def dominant_frequency(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / RATE)[int(np.argmax(spectrum))])


def is_from(identity: str) -> Callable[..., bool]:
    """Matches events whose last argument is the participant ``identity`` (track and participant events)."""
    return lambda *args: getattr(args[-1], "identity", None) == identity


# ---------------------------------------------------------------- joining and leaving


def test_participants_join_see_each_other_and_leave(sfu: SFUStandIn) -> None:
    async def scenario() -> None:
        async with joined(sfu, "join-room", "alice", "bob") as (alice, bob):
            (bob_seen,) = await alice.wait("participant_connected", is_from("bob"))
            assert bob_seen.sid == sfu.participants("join-room")["bob"].sid
            assert set(bob.room.remote_participants) == {"alice"}
            assert bob.room.name == "join-room"
            assert bob.room.local_participant.sid.startswith("PA_")
            assert set(sfu.participants("join-room")) == {"alice", "bob"}
            await alice.wait("participant_active", lambda p: p.identity == "bob")

            await bob.room.disconnect()
            (bob_gone,) = await alice.wait("participant_disconnected", is_from("bob"))
            assert bob_gone.disconnect_reason == rtc.DisconnectReason.CLIENT_INITIATED
            assert set(alice.room.remote_participants) == set()
            await asyncio.to_thread(sfu.wait_event, "participant_left", "join-room", "bob")
            assert set(sfu.participants("join-room")) == {"alice"}

    run(scenario())


def test_a_hidden_participant_is_not_announced_but_sees_the_others(sfu: SFUStandIn) -> None:
    async def scenario() -> None:
        async with (
            joined(sfu, "hidden-room", "alice") as (alice,),
            joined(sfu, "hidden-room", "recorder", hidden=True) as (recorder,),
        ):
            assert set(recorder.room.remote_participants) == {"alice"}
            async with joined(sfu, "hidden-room", "dave"):
                # Updates travel in order on alice's signal connection: dave's comes after any about the recorder.
                await alice.wait("participant_connected", is_from("dave"))
                assert [p.identity for (p,) in alice.events("participant_connected")] == ["dave"]
                assert set(alice.room.remote_participants) == {"dave"}
                assert set(sfu.participants("hidden-room")) == {"alice", "recorder", "dave"}

    run(scenario())


def test_an_agent_joins_as_an_agent_participant(sfu: SFUStandIn) -> None:
    async def scenario() -> None:
        async with joined(sfu, "agent-room", "alice") as (alice,):
            agent = Client("agent-1")
            await agent.room.connect(sfu.url, sfu.token("agent-1", "agent-room", kind="agent", agent=True))
            try:
                (seen,) = await alice.wait("participant_connected", is_from("agent-1"))
                assert seen.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
                assert sfu.participants("agent-room")["agent-1"].permission.agent
            finally:
                await agent.room.disconnect()

    run(scenario())


# ---------------------------------------------------------------- media


def test_each_participant_hears_the_tone_the_other_publishes(sfu: SFUStandIn) -> None:
    async def scenario() -> None:
        async with joined(sfu, "audio-room", "alice", "bob") as (alice, bob):
            alice_publication, alice_feed = await publish_tone(alice, 440.0)
            bob_publication, bob_feed = await publish_tone(bob, 660.0)
            try:
                (track_at_bob, publication_at_bob, _) = await bob.wait("track_subscribed", is_from("alice"))
                (track_at_alice, _, _) = await alice.wait("track_subscribed", is_from("bob"))
                assert publication_at_bob.sid == alice_publication.sid
                assert publication_at_bob.source == rtc.TrackSource.SOURCE_MICROPHONE
                assert sfu.subscriptions("audio-room", "bob") == [alice_publication.sid]

                for track, frequency in ((track_at_bob, 440.0), (track_at_alice, 660.0)):
                    samples = await received_audio(track)
                    assert dominant_frequency(samples) == pytest.approx(frequency, abs=5)
                    rms = float(np.sqrt(np.mean(samples**2)))
                    assert rms == pytest.approx(AMPLITUDE / np.sqrt(2), rel=0.25)
            finally:
                alice_feed.cancel()
                bob_feed.cancel()
            assert bob_publication.sid != alice_publication.sid

    run(scenario())


def test_a_late_joiner_receives_the_tracks_published_before_it_came(sfu: SFUStandIn) -> None:
    async def scenario() -> None:
        async with joined(sfu, "late-room", "alice") as (alice,):
            publication, feed = await publish_tone(alice, 880.0)
            try:
                await asyncio.to_thread(sfu.wait_event, "track_published", "late-room", "alice")
                async with joined(sfu, "late-room", "bob") as (bob,):
                    assert publication.sid in bob.room.remote_participants["alice"].track_publications
                    (track, _, _) = await bob.wait("track_subscribed", is_from("alice"))
                    assert dominant_frequency(await received_audio(track, 0.5)) == pytest.approx(880, abs=10)
            finally:
                feed.cancel()

    run(scenario())


def test_mute_unmute_and_unpublish_reach_the_other_participant(sfu: SFUStandIn) -> None:
    async def scenario() -> None:
        async with joined(sfu, "mute-room", "alice", "bob") as (alice, bob):
            publication, feed = await publish_tone(alice, 440.0)
            try:
                (remote, _) = await bob.wait("track_published", is_from("alice"))
                assert remote.sid == publication.sid

                publication.track.mute()
                await bob.wait("track_muted", lambda _p, pub: pub.sid == publication.sid)
                assert bob.room.remote_participants["alice"].track_publications[publication.sid].muted
                publication.track.unmute()
                await bob.wait("track_unmuted", lambda _p, pub: pub.sid == publication.sid)

                await alice.room.local_participant.unpublish_track(publication.sid)
                await bob.wait("track_unpublished", lambda pub, _p: pub.sid == publication.sid)
                assert publication.sid not in bob.room.remote_participants["alice"].track_publications
                await asyncio.to_thread(sfu.wait_event, "track_unpublished", "mute-room", "alice")
                assert sfu.subscriptions("mute-room", "bob") == []
            finally:
                feed.cancel()

    run(scenario())


def test_leaving_unpublishes_the_tracks_for_the_others(sfu: SFUStandIn) -> None:
    async def scenario() -> None:
        async with joined(sfu, "leave-room", "alice", "bob") as (alice, bob):
            publication, feed = await publish_tone(alice, 440.0)
            try:
                await bob.wait("track_subscribed", is_from("alice"))
            finally:
                feed.cancel()
            await alice.room.disconnect()
            await bob.wait("track_unpublished", lambda pub, _p: pub.sid == publication.sid)
            await bob.wait("participant_disconnected", is_from("alice"))
            assert sfu.subscriptions("leave-room", "bob") == []

    run(scenario())


def test_subscriptions_follow_update_subscription_without_auto_subscribe(sfu: SFUStandIn) -> None:
    async def scenario() -> None:
        async with (
            joined(sfu, "manual-room", "alice") as (alice,),
            joined(sfu, "manual-room", "bob", auto_subscribe=False) as (bob,),
        ):
            publication, feed = await publish_tone(alice, 440.0)
            try:
                (remote, _) = await bob.wait("track_published", is_from("alice"))
                await asyncio.to_thread(sfu.wait_event, "track_published", "manual-room", "alice")
                assert sfu.subscriptions("manual-room", "bob") == []

                remote.set_subscribed(True)
                (track, _, _) = await bob.wait("track_subscribed", is_from("alice"))
                assert dominant_frequency(await received_audio(track, 0.5)) == pytest.approx(440, abs=10)

                remote.set_subscribed(False)
                await bob.wait("track_unsubscribed", is_from("alice"))
                await asyncio.to_thread(sfu.wait_event, "track_unsubscribed", "manual-room", "bob")
                assert sfu.subscriptions("manual-room", "bob") == []

                since = len(bob.seen)
                remote.set_subscribed(True)  # a new section on the same connection: renegotiated again
                (track, _, _) = await bob.wait("track_subscribed", is_from("alice"), since=since)
                assert dominant_frequency(await received_audio(track, 0.5)) == pytest.approx(440, abs=10)
                assert sfu.subscriptions("manual-room", "bob") == [publication.sid]
            finally:
                feed.cancel()

    run(scenario())


def test_the_same_identity_joining_again_replaces_the_first_connection(sfu: SFUStandIn) -> None:
    async def scenario() -> None:
        async with joined(sfu, "dup-room", "alice") as (first,), joined(sfu, "dup-room", "alice") as (second,):
            (reason,) = await first.wait("disconnected")
            assert reason == rtc.DisconnectReason.DUPLICATE_IDENTITY
            assert second.room.isconnected()
            assert sfu.participants("dup-room")["alice"].sid == second.room.local_participant.sid

    run(scenario())


# ---------------------------------------------------------------- data


def test_data_travels_both_ways_reliable_and_lossy_with_topics(sfu: SFUStandIn) -> None:
    async def scenario() -> None:
        async with joined(sfu, "data-room", "alice", "bob") as (alice, bob):
            await alice.room.local_participant.publish_data(b"reliable hello", topic="chat")
            await bob.room.local_participant.publish_data(b"lossy hello", reliable=False, topic="cursor")

            at_bob = await bob.data_packet(b"reliable hello")
            assert (at_bob.topic, at_bob.kind, at_bob.participant.identity) == (
                "chat",
                rtc.DataPacketKind.KIND_RELIABLE,
                "alice",
            )
            at_alice = await alice.data_packet(b"lossy hello")
            assert (at_alice.topic, at_alice.kind, at_alice.participant.identity) == (
                "cursor",
                rtc.DataPacketKind.KIND_LOSSY,
                "bob",
            )

    run(scenario())


def test_destination_identities_reach_only_the_participants_named(sfu: SFUStandIn) -> None:
    async def scenario() -> None:
        async with joined(sfu, "dest-room", "alice", "bob", "carol") as (alice, bob, carol):
            await alice.room.local_participant.publish_data(b"for bob", destination_identities=["bob"])
            await alice.room.local_participant.publish_data(b"for everyone")

            # alice's reliable packets reach each receiver in order: once carol has the second, she had the first.
            await carol.data_packet(b"for everyone")
            await bob.data_packet(b"for everyone")
            assert [p.data for p in carol.data()] == [b"for everyone"]
            assert [p.data for p in bob.data()] == [b"for bob", b"for everyone"]

    run(scenario())


def test_a_text_stream_arrives_with_its_topic_and_attributes(sfu: SFUStandIn) -> None:
    async def scenario() -> None:
        async with joined(sfu, "text-room", "alice", "bob") as (alice, bob):
            received: asyncio.Future[tuple[str, str, rtc.TextStreamInfo]] = asyncio.get_running_loop().create_future()

            async def read(reader: rtc.TextStreamReader, identity: str) -> None:
                received.set_result((identity, await reader.read_all(), reader.info))

            tasks: list[asyncio.Task[None]] = []
            bob.room.register_text_stream_handler(
                "lk.chat", lambda reader, identity: tasks.append(asyncio.ensure_future(read(reader, identity)))
            )
            text = "captions " * 2000  # several chunks
            await alice.room.local_participant.send_text(text, topic="lk.chat", attributes={"lk.segment_id": "S1"})

            identity, body, info = await asyncio.wait_for(received, 15)
            assert (identity, body, info.topic) == ("alice", text, "lk.chat")
            assert info.attributes == {"lk.segment_id": "S1"}

    run(scenario())


def test_a_byte_stream_arrives_whole(sfu: SFUStandIn) -> None:
    async def scenario() -> None:
        async with joined(sfu, "bytes-room", "alice", "bob") as (alice, bob):
            received: asyncio.Future[tuple[str, bytes, str]] = asyncio.get_running_loop().create_future()

            async def read(reader: rtc.ByteStreamReader, identity: str) -> None:
                body = b"".join([chunk async for chunk in reader])
                received.set_result((identity, body, reader.info.name))

            tasks: list[asyncio.Task[None]] = []
            bob.room.register_byte_stream_handler(
                "files", lambda reader, identity: tasks.append(asyncio.ensure_future(read(reader, identity)))
            )
            payload = bytes(range(256)) * 200
            await alice.room.local_participant.send_bytes(payload, topic="files", name="blob.bin")

            assert await asyncio.wait_for(received, 15) == ("alice", payload, "blob.bin")

    run(scenario())


# ---------------------------------------------------------------- grants refused


def expired_token(sfu: SFUStandIn) -> str:
    grants = api.VideoGrants(room_join=True, room="grant-room")
    token = api.AccessToken(sfu.api_key, sfu.api_secret).with_identity("late").with_grants(grants)
    return token.with_ttl(datetime.timedelta(minutes=-5)).to_jwt()


def wrong_secret_token(sfu: SFUStandIn) -> str:
    grants = api.VideoGrants(room_join=True, room="grant-room")
    return (
        api.AccessToken(sfu.api_key, "not-the-secret-but-just-as-long-!!")
        .with_identity("x")
        .with_grants(grants)
        .to_jwt()
    )


def no_join_token(sfu: SFUStandIn) -> str:
    grants = api.VideoGrants(room_join=False, room="grant-room", room_list=True)
    return api.AccessToken(sfu.api_key, sfu.api_secret).with_identity("lister").with_grants(grants).to_jwt()


@pytest.mark.parametrize(
    ("make_token", "message"),
    [
        (wrong_secret_token, "invalid authorization token: Signature verification failed"),
        (expired_token, "invalid authorization token: Signature has expired"),
        (no_join_token, "permissions denied"),
    ],
    ids=["wrong-secret", "expired", "no-room-join"],
)
def test_a_bad_token_is_refused_with_401_before_the_upgrade(
    sfu: SFUStandIn, make_token: Callable[[SFUStandIn], str], message: str
) -> None:
    async def scenario() -> None:
        room = rtc.Room()
        with pytest.raises(rtc.ConnectError, match="401"):
            await room.connect(sfu.url, make_token(sfu))
        refusal = await asyncio.to_thread(sfu.wait_event, "join_refused")
        assert any(e.detail == {"status": 401, "message": message} for e in sfu.find_events("join_refused"))
        assert refusal.detail["status"] == 401
        assert "grant-room" not in sfu.rooms()

    run(scenario())


def test_validate_answers_as_livekit_server_does(sfu: SFUStandIn) -> None:
    def get(path: str) -> tuple[int, str, str | None]:
        try:
            with urllib.request.urlopen(f"{sfu.http_url}{path}", timeout=10) as response:  # noqa: S310 (http://127.0.0.1)
                return response.status, response.read().decode(), response.headers["Access-Control-Allow-Origin"]
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), error.headers["Access-Control-Allow-Origin"]

    good = urllib.parse.quote(sfu.token("checker", "grant-room"))
    assert get(f"/rtc/validate?access_token={good}") == (200, "success", "*")
    assert get(f"/rtc/validate?access_token={urllib.parse.quote(expired_token(sfu))}")[:2] == (
        401,
        "invalid authorization token: Signature has expired",
    )
    assert get("/rtc/validate")[:2] == (401, "permissions denied")
    # No single peer connection protocol: SDKs fall back to /rtc (livekit-client decides from this validate).
    assert get(f"/rtc/v1/validate?access_token={good}") == (404, "404 page not found", "*")


def test_a_token_for_another_room_joins_that_room_only(sfu: SFUStandIn) -> None:
    async def scenario() -> None:
        async with joined(sfu, "room-a", "alice") as (alice,), joined(sfu, "room-b", "mallory") as (mallory,):
            assert (mallory.room.name, set(mallory.room.remote_participants)) == ("room-b", set())
            async with joined(sfu, "room-a", "bob"):
                await alice.wait("participant_connected", is_from("bob"))
            assert [p.identity for (p,) in alice.events("participant_connected")] == ["bob"]
            assert set(sfu.participants("room-b")) == {"mallory"}

    run(scenario())


@pytest.mark.parametrize(
    "grants", [{"can_publish": False}, {"can_publish_sources": ["camera"]}], ids=["no-publish", "camera-only"]
)
def test_publishing_without_the_grant_is_refused(sfu: SFUStandIn, grants: dict[str, Any]) -> None:
    """livekit-server answers a RequestResponse NOT_ALLOWED; the pinned SDK ignores it and would time out (10 s)."""
    room = f"nopub-{next(iter(grants))}"

    async def scenario() -> None:
        async with joined(sfu, room, "bob") as (bob,), joined(sfu, room, "carol", **grants) as (carol,):
            source = rtc.AudioSource(RATE, 1)
            track = rtc.LocalAudioTrack.create_audio_track("mic", source)
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            publishing = asyncio.ensure_future(carol.room.local_participant.publish_track(track, options))
            await asyncio.to_thread(sfu.wait_event, "publish_refused", room, "carol")
            publishing.cancel()
            assert not sfu.participants(room)["carol"].tracks
            assert not bob.room.remote_participants["carol"].track_publications

    run(scenario())


def test_a_participant_without_can_subscribe_gets_no_media(sfu: SFUStandIn) -> None:
    async def scenario() -> None:
        async with (
            joined(sfu, "nosub-room", "alice", "bob") as (alice, bob),
            joined(sfu, "nosub-room", "viewer", can_subscribe=False) as (viewer,),
        ):
            publication, feed = await publish_tone(alice, 440.0)
            try:
                await bob.wait("track_subscribed", is_from("alice"))
                (remote, _) = await viewer.wait("track_published", is_from("alice"))
                await asyncio.to_thread(sfu.wait_event, "track_published", "nosub-room", "alice")
                assert sfu.subscriptions("nosub-room", "viewer") == []
                assert sfu.find_events("subscription_refused", "nosub-room", "viewer")

                refusals = len(sfu.find_events("subscription_refused", "nosub-room", "viewer"))
                remote.set_subscribed(True)  # asking explicitly does not help either
                await asyncio.to_thread(
                    sfu.wait_for,
                    lambda: len(sfu.find_events("subscription_refused", "nosub-room", "viewer")) > refusals,
                )
                assert sfu.subscriptions("nosub-room", "viewer") == []
                assert not viewer.events("track_subscribed")
                assert publication.sid in sfu.subscriptions("nosub-room", "bob")
            finally:
                feed.cancel()

    run(scenario())


def test_data_without_can_publish_data_is_dropped(sfu: SFUStandIn) -> None:
    async def scenario() -> None:
        async with (
            joined(sfu, "nodata-room", "alice") as (alice,),
            joined(sfu, "nodata-room", "muted", can_publish_data=False) as (muted,),
        ):
            await muted.room.local_participant.publish_data(b"let me talk", topic="chat")
            dropped = await asyncio.to_thread(sfu.wait_event, "data_dropped", "nodata-room", "muted")
            assert dropped.detail["payload"] == "user"
            await muted.room.local_participant.send_text("nor this", topic="chat")
            await asyncio.to_thread(
                sfu.wait_for,
                lambda: any(
                    e.detail["payload"] == "stream_header" for e in sfu.find_events("data_dropped", "nodata-room")
                ),
            )

            await alice.room.local_participant.publish_data(b"still works the other way")
            await muted.data_packet(b"still works the other way")
            assert not alice.data()
            assert not sfu.find_events("data_forwarded", "nodata-room", "muted")

    run(scenario())


# ---------------------------------------------------------------- one server: /rtc, the server API, /agent, webhooks


@pytest.fixture(scope="module")
def server() -> Iterator[LiveKitServer]:
    with LiveKitServer(API_KEY, API_SECRET) as livekit:
        yield livekit


@contextlib.asynccontextmanager
async def server_api(server: LiveKitServer) -> AsyncIterator[api.LiveKitAPI]:
    """livekit-api's client, unmodified, given the same URL as the SDK clients."""
    client = api.LiveKitAPI(server.url, API_KEY, API_SECRET)
    try:
        yield client
    finally:
        await client.aclose()


def test_participants_joined_over_rtc_are_what_the_server_api_lists(server: LiveKitServer) -> None:
    async def scenario() -> None:
        async with joined(server, "listed-room", "alice", "bob") as (alice, _bob), server_api(server) as lk:
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room="listed-room"))
            assert {p.identity: p.sid for p in listed.participants} == {
                identity: info.sid for identity, info in server.sfu.participants("listed-room").items()
            }
            rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=["listed-room"]))
            assert [(r.sid, r.num_participants) for r in rooms.rooms] == [(await alice.room.sid, 2)]
            bob = await lk.room.get_participant(api.RoomParticipantIdentity(room="listed-room", identity="bob"))
            assert bob.sid == alice.room.remote_participants["bob"].sid

    run(scenario())


def test_a_room_created_over_the_server_api_is_the_room_participants_join(server: LiveKitServer) -> None:
    async def scenario() -> None:
        async with server_api(server) as lk:
            created = await lk.room.create_room(api.CreateRoomRequest(name="made-first", metadata="m"))
            async with joined(server, "made-first", "alice") as (alice,):
                assert await alice.room.sid == created.sid
                assert alice.room.metadata == "m"

    run(scenario())


def test_remove_participant_disconnects_the_client(server: LiveKitServer) -> None:
    async def scenario() -> None:
        async with joined(server, "remove-room", "alice", "bob") as (alice, bob), server_api(server) as lk:
            await lk.room.remove_participant(api.RoomParticipantIdentity(room="remove-room", identity="bob"))
            (reason,) = await bob.wait("disconnected")
            assert reason == rtc.DisconnectReason.PARTICIPANT_REMOVED
            (gone,) = await alice.wait("participant_disconnected", is_from("bob"))
            assert gone.disconnect_reason == rtc.DisconnectReason.PARTICIPANT_REMOVED
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room="remove-room"))
            assert [p.identity for p in listed.participants] == ["alice"]

    run(scenario())


def test_mute_published_track_mutes_the_publisher_for_everyone(server: LiveKitServer) -> None:
    async def scenario() -> None:
        async with joined(server, "remote-mute", "alice", "bob") as (alice, bob), server_api(server) as lk:
            publication, feed = await publish_tone(alice, 440.0)
            try:
                await bob.wait("track_published", is_from("alice"))
                request = api.MuteRoomTrackRequest(
                    room="remote-mute", identity="alice", track_sid=publication.sid, muted=True
                )
                answer = await lk.room.mute_published_track(request)
                assert (answer.track.sid, answer.track.muted) == (publication.sid, True)
                await bob.wait("track_muted", lambda _p, pub: pub.sid == publication.sid)
                await alice.wait("track_muted", lambda _p, pub: pub.sid == publication.sid)
                assert publication.muted
            finally:
                feed.cancel()

    run(scenario())


def test_update_participant_reaches_everyone(server: LiveKitServer) -> None:
    async def scenario() -> None:
        async with joined(server, "update-room", "alice", "bob") as (alice, bob), server_api(server) as lk:
            request = api.UpdateParticipantRequest(
                room="update-room", identity="bob", metadata='{"role":"host"}', attributes={"seat": "1"}
            )
            updated = await lk.room.update_participant(request)
            assert (updated.metadata, dict(updated.attributes)) == ('{"role":"host"}', {"seat": "1"})
            await alice.wait("participant_metadata_changed", lambda p, *_: p.identity == "bob")
            await bob.wait("participant_metadata_changed", lambda p, *_: p.identity == "bob")
            (changed, _) = await alice.wait("participant_attributes_changed", is_from("bob"))
            assert changed == {"seat": "1"}
            assert alice.room.remote_participants["bob"].attributes == {"seat": "1"}
            assert bob.room.local_participant.metadata == '{"role":"host"}'

    run(scenario())


def test_send_data_reaches_the_participants_named(server: LiveKitServer) -> None:
    async def scenario() -> None:
        async with joined(server, "server-data", "alice", "bob") as (alice, bob), server_api(server) as lk:
            to_bob = api.SendDataRequest(
                room="server-data", data=b"for bob", kind=models.DataPacket.RELIABLE, topic="notice"
            )
            to_bob.destination_identities.append("bob")
            await lk.room.send_data(to_bob)
            await lk.room.send_data(
                api.SendDataRequest(room="server-data", data=b"for all", kind=models.DataPacket.RELIABLE)
            )
            packet = await bob.data_packet(b"for bob")
            assert (packet.topic, packet.participant) == ("notice", None)
            await bob.data_packet(b"for all")
            await alice.data_packet(b"for all")
            assert [p.data for p in alice.data()] == [b"for all"]

    run(scenario())


def test_delete_room_disconnects_everyone(server: LiveKitServer) -> None:
    async def scenario() -> None:
        async with joined(server, "doomed", "alice", "bob") as (alice, bob), server_api(server) as lk:
            await lk.room.delete_room(api.DeleteRoomRequest(room="doomed"))
            for client in (alice, bob):
                (reason,) = await client.wait("disconnected")
                assert reason == rtc.DisconnectReason.ROOM_DELETED
            await asyncio.to_thread(server.sfu.wait_event, "room_finished", "doomed")
            assert (await lk.room.list_rooms(api.ListRoomsRequest(names=["doomed"]))).rooms == []

    run(scenario())


def test_webhooks_follow_the_room_and_verify_with_livekit_api(
    server: LiveKitServer, receiver_factory: Callable[..., Any]
) -> None:
    receiver = receiver_factory([200])
    expected = [
        "room_started",
        "participant_joined",
        "track_published",
        "track_unpublished",
        "participant_left",
        "room_finished",
    ]

    async def scenario() -> None:
        async with joined(server, "hooked", "alice") as (alice,):
            publication, feed = await publish_tone(alice, 440.0)
            await asyncio.to_thread(server.sfu.wait_event, "track_published", "hooked", "alice")
            feed.cancel()
            await alice.room.local_participant.unpublish_track(publication.sid)
        await asyncio.to_thread(server.sfu.wait_event, "room_finished", "hooked")

    server.twirp.webhook_url = receiver.url
    try:
        run(scenario())
        server.flush_webhooks()
    finally:
        server.twirp.webhook_url = None
    verifier = api.WebhookReceiver(api.TokenVerifier(API_KEY, API_SECRET))
    events = [verifier.receive(r["body"].decode(), r["headers"]["authorization"]) for r in receiver.requests]
    assert [e.event for e in events] == expected
    assert {e.room.name for e in events} == {"hooked"}
    assert len({e.room.sid for e in events}) == 1
    joined_event, published, unpublished, left = events[1:5]
    assert joined_event.participant.identity == left.participant.identity == "alice"
    assert published.track.sid == unpublished.track.sid
    assert published.track.source == models.MICROPHONE
    assert left.participant.disconnect_reason == models.CLIENT_INITIATED


@contextlib.asynccontextmanager
async def agent_server(server: LiveKitServer, agent_name: str) -> AsyncIterator[list[JobContext]]:
    """livekit-agents' own worker, unmodified, its jobs in threads of this process: it registers on ``/agent`` and
    each job joins its room over ``/rtc`` at the same URL, with the token of its assignment."""
    jobs: list[JobContext] = []

    async def entrypoint(ctx: JobContext) -> None:
        await ctx.connect()
        jobs.append(ctx)

    worker = AgentServer(
        job_executor_type=JobExecutorType.THREAD,
        ws_url=server.url,
        api_key=API_KEY,
        api_secret=API_SECRET,
        port=0,
        load_threshold=math.inf,
        num_idle_processes=0,
    )
    worker.rtc_session(entrypoint, agent_name=agent_name)

    def registered() -> list[ConnectedWorker]:
        return [w for w in server.agents.registered() if w.registration and w.registration.agent_name == agent_name]

    running = asyncio.ensure_future(worker.run(devmode=True))
    try:
        await asyncio.to_thread(server.agents.wait_for, registered, 20)
        yield jobs
    finally:
        await worker.aclose()
        await running


def test_create_dispatch_sends_a_registered_worker_into_the_room(server: LiveKitServer) -> None:
    async def scenario() -> None:
        async with (
            agent_server(server, "captions") as jobs,
            joined(server, "dispatched", "alice") as (alice,),
            server_api(server) as lk,
        ):
            request = api.CreateAgentDispatchRequest(agent_name="captions", room="dispatched", metadata='{"x":1}')
            dispatch = await lk.agent_dispatch.create_dispatch(request)
            (agent,) = await alice.wait("participant_connected", lambda p: p.identity.startswith("agent-"))
            assert agent.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
            assert agent.attributes["lk.agent_name"] == "captions"
            assigned = await asyncio.wrap_future(server.dispatched[-1])
            assert agent.identity == assigned.availability.participant_identity
            job = assigned.job
            assert (job.dispatch_id, job.metadata, job.room.sid) == (dispatch.id, '{"x":1}', await alice.room.sid)
            await asyncio.to_thread(server.agents.wait_for, lambda: jobs)
            assert jobs[0].room.local_participant.identity == agent.identity

    run(scenario())


def test_a_dispatch_to_an_empty_room_creates_it_and_the_agent_waits_there(server: LiveKitServer) -> None:
    """livekit-server (room.auto_create) creates the room a dispatch names; the agent is its first participant."""

    async def scenario() -> None:
        async with agent_server(server, "early-bird") as jobs, server_api(server) as lk:
            await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name="early-bird", room="early")
            )
            await asyncio.to_thread(server.agents.wait_for, lambda: jobs)
            async with joined(server, "early", "alice") as (alice,):
                (agent,) = alice.room.remote_participants.values()
                assert agent.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
                assert agent.identity == jobs[0].room.local_participant.identity

    run(scenario())


def test_python_m_tests_sfu_serves_twirp_rtc_and_agent_on_one_port(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "tests.sfu", "--port", str(port), "--api-key", API_KEY, "--api-secret", API_SECRET]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith(f"LiveKit stand-in: ws://127.0.0.1:{port}")
        url = f"ws://127.0.0.1:{port}"

        async def scenario() -> None:
            lk = api.LiveKitAPI(url, API_KEY, API_SECRET)
            alice = Client("alice")
            token = api.AccessToken(API_KEY, API_SECRET).with_identity("alice")
            token = token.with_grants(api.VideoGrants(room_join=True, room="standalone"))
            await alice.room.connect(url, token.to_jwt())
            worker_token = api.AccessToken(API_KEY, API_SECRET).with_grants(api.VideoGrants(agent=True)).to_jwt()
            try:
                listed = await lk.room.list_participants(api.ListParticipantsRequest(room="standalone"))
                assert [p.identity for p in listed.participants] == ["alice"]
                async with (
                    aiohttp.ClientSession() as session,
                    session.ws_connect(f"{url}/agent", headers={"Authorization": f"Bearer {worker_token}"}) as worker,
                ):
                    assert not worker.closed
            finally:
                await alice.room.disconnect()
                await lk.aclose()

        run(scenario())
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
