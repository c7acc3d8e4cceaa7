"""The LiveKit stand-in, driven by the real livekit-api client over real HTTP (no database needed)."""

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
import requests
from livekit import api
from livekit.protocol import models

from tests.support.fakes import Receiver
from tests.support.livekit_standin import PROTOBUF, WEBHOOK_CONTENT_TYPE, LiveKitStandIn

KEY = "APIstandin"
SECRET = "stand-in-secret-that-is-at-least-32-bytes-long"


@pytest.fixture
def lk() -> Iterator[LiveKitStandIn]:
    with LiveKitStandIn(KEY, SECRET) as standin:
        yield standin


def call(
    standin: LiveKitStandIn,
    operation: Callable[[api.LiveKitAPI], Awaitable[Any]],
    *,
    key: str = KEY,
    secret: str = SECRET,
    timeout: float = 5,
) -> Any:
    """One call through the real client, the way the platform makes them (own session, no failover)."""

    async def run() -> Any:
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with api.LiveKitAPI(standin.url, key, secret, timeout=client_timeout, failover=False) as client:
            return await operation(client)

    return asyncio.run(run())


def error_of(standin: LiveKitStandIn, operation: Callable[[api.LiveKitAPI], Awaitable[Any]], **kwargs: Any) -> Any:
    with pytest.raises(api.TwirpError) as raised:
        call(standin, operation, **kwargs)
    return raised.value


def raw_post(
    standin: LiveKitStandIn, path: str, body: bytes, token: str | None, content_type: str
) -> requests.Response:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(standin.url + path, data=body, headers=headers, timeout=5)


def token_with(**grants: Any) -> str:
    return api.AccessToken(KEY, SECRET).with_grants(api.VideoGrants(**grants)).to_jwt()


# ---------------------------------------------------------------------------- rooms


def test_rooms_create_list_delete(lk: LiveKitStandIn) -> None:
    created = call(lk, lambda c: c.room.create_room(api.CreateRoomRequest(name="standup", empty_timeout=120)))
    assert isinstance(created, models.Room)
    assert created.name == "standup"
    assert created.sid.startswith("RM_")
    assert created.empty_timeout == 120
    assert created.creation_time > 0

    again = call(lk, lambda c: c.room.create_room(api.CreateRoomRequest(name="standup", metadata='{"a":1}')))
    assert again.sid == created.sid, "CreateRoom on an existing room returns it"
    assert again.metadata == '{"a":1}'
    assert again.empty_timeout == 120

    call(lk, lambda c: c.room.create_room(api.CreateRoomRequest(name="retro", max_participants=4)))
    listed = call(lk, lambda c: c.room.list_rooms(api.ListRoomsRequest()))
    assert [r.name for r in listed.rooms] == ["standup", "retro"]
    only = call(lk, lambda c: c.room.list_rooms(api.ListRoomsRequest(names=["retro"])))
    assert [(r.name, r.max_participants) for r in only.rooms] == [("retro", 4)]

    call(lk, lambda c: c.room.delete_room(api.DeleteRoomRequest(room="standup")))
    assert lk.get_room("standup") is None
    gone = error_of(lk, lambda c: c.room.delete_room(api.DeleteRoomRequest(room="standup")))
    assert (gone.code, gone.status, gone.message) == ("not_found", 404, "requested room does not exist")

    # What reached the wire: protobuf, decoded into the real request messages, with livekit-api's grants.
    first = lk.calls_to("CreateRoom")[0]
    assert (first.service, first.encoding) == ("RoomService", PROTOBUF)
    assert isinstance(first.request, api.CreateRoomRequest)
    assert first.request.empty_timeout == 120
    assert first.claims is not None
    assert first.claims.video.room_create
    assert lk.calls_to("DeleteRoom")[0].claims.video.room_create


def test_update_room_metadata(lk: LiveKitStandIn) -> None:
    lk.add_room("board")
    updated = call(lk, lambda c: c.room.update_room_metadata(api.UpdateRoomMetadataRequest(room="board", metadata="x")))
    assert updated.metadata == "x"
    assert lk.get_room("board").metadata == "x"
    missing = error_of(
        lk, lambda c: c.room.update_room_metadata(api.UpdateRoomMetadataRequest(room="nope", metadata="x"))
    )
    assert missing.code == "not_found"


# ---------------------------------------------------------------------------- participants


def test_participants_list_get_remove_mute(lk: LiveKitStandIn) -> None:
    alice = lk.add_participant("class", "alice", name="Alice", tracks=["audio", "video"])
    lk.add_participant("class", "bob", name="Bob")
    assert alice.sid.startswith("PA_")
    assert lk.get_room("class").num_participants == 2

    listed = call(lk, lambda c: c.room.list_participants(api.ListParticipantsRequest(room="class")))
    assert [(p.identity, p.name) for p in listed.participants] == [("alice", "Alice"), ("bob", "Bob")]

    got = call(lk, lambda c: c.room.get_participant(api.RoomParticipantIdentity(room="class", identity="alice")))
    assert [t.type for t in got.tracks] == [models.AUDIO, models.VIDEO]
    audio_sid = got.tracks[0].sid
    assert audio_sid.startswith("TR_")

    muted = call(
        lk,
        lambda c: c.room.mute_published_track(
            api.MuteRoomTrackRequest(room="class", identity="alice", track_sid=audio_sid, muted=True)
        ),
    )
    assert (muted.track.sid, muted.track.muted) == (audio_sid, True)
    assert lk.get_participant("class", "alice").tracks[0].muted

    def unmute(c: api.LiveKitAPI) -> Awaitable[Any]:
        return c.room.mute_published_track(
            api.MuteRoomTrackRequest(room="class", identity="alice", track_sid=audio_sid, muted=False)
        )

    refused = error_of(lk, unmute)
    assert (refused.code, refused.message) == ("failed_precondition", "remote unmute not enabled")
    lk.enable_remote_unmute = True
    assert call(lk, unmute).track.muted is False

    call(lk, lambda c: c.room.remove_participant(api.RoomParticipantIdentity(room="class", identity="bob")))
    assert lk.get_participant("class", "bob") is None
    assert lk.get_room("class").num_participants == 1

    again = error_of(lk, lambda c: c.room.remove_participant(api.RoomParticipantIdentity(room="class", identity="bob")))
    assert (again.code, again.status, again.message) == ("not_found", 404, "participant not found")
    unknown = error_of(lk, lambda c: c.room.get_participant(api.RoomParticipantIdentity(room="class", identity="zed")))
    assert (unknown.code, unknown.message) == ("not_found", "participant does not exist")

    # LiveKit answers ListParticipants on an unknown room with an empty list, not an error.
    empty = call(lk, lambda c: c.room.list_participants(api.ListParticipantsRequest(room="ghost")))
    assert list(empty.participants) == []
    # Mute is forwarded to the participant's node; nobody answers for an absent participant.
    absent = error_of(
        lk,
        lambda c: c.room.mute_published_track(
            api.MuteRoomTrackRequest(room="class", identity="zed", track_sid=audio_sid, muted=True)
        ),
    )
    assert (absent.code, absent.status) == ("unavailable", 503)

    # Participant calls carry roomAdmin for exactly this room.
    claims = lk.calls_to("GetParticipant")[0].claims
    assert (claims.video.room_admin, claims.video.room) == (True, "class")


def test_update_participant(lk: LiveKitStandIn) -> None:
    lk.add_participant("r", "carol")
    updated = call(
        lk,
        lambda c: c.room.update_participant(
            api.UpdateParticipantRequest(room="r", identity="carol", name="Carol", metadata='{"role":"host"}')
        ),
    )
    assert (updated.name, updated.metadata) == ("Carol", '{"role":"host"}')


# ---------------------------------------------------------------------------- egress


def test_egress_start_stop_list_finish(lk: LiveKitStandIn) -> None:
    room = lk.add_room("meeting")
    request = api.RoomCompositeEgressRequest(
        room_name="meeting",
        audio_only=True,
        file=api.EncodedFileOutput(
            filepath="recordings/{room_name}-take1",
            s3=api.S3Upload(
                bucket="media",
                endpoint="http://127.0.0.1:9000",
                access_key="AKIA",
                secret="s3-secret",
                force_path_style=True,
            ),
        ),
    )
    started = call(lk, lambda c: c.egress.start_room_composite_egress(request))
    assert started.egress_id.startswith("EG_")
    assert started.status == api.EGRESS_STARTING
    assert (started.room_name, started.room_id) == ("meeting", room.sid)
    assert started.room_composite.audio_only
    assert started.room_composite.file.s3.bucket == "media"
    assert started.room_composite.file.s3.secret != "s3-secret", "credentials are not echoed back"
    # ...but the request that reached the wire had them.
    sent = lk.calls_to("StartRoomCompositeEgress")[0]
    assert sent.request.file.s3.secret == "s3-secret"
    assert sent.claims.video.room_record
    assert lk.get_room("meeting").active_recording

    active = call(lk, lambda c: c.egress.list_egress(api.ListEgressRequest(room_name="meeting", active=True)))
    assert [(e.egress_id, e.status) for e in active.items] == [(started.egress_id, api.EGRESS_ACTIVE)]

    stopped = call(lk, lambda c: c.egress.stop_egress(api.StopEgressRequest(egress_id=started.egress_id)))
    assert stopped.status == api.EGRESS_ENDING
    twice = error_of(lk, lambda c: c.egress.stop_egress(api.StopEgressRequest(egress_id=started.egress_id)))
    assert (twice.code, twice.message) == ("failed_precondition", "egress with status EGRESS_ENDING cannot be stopped")

    done = lk.finish_egress(started.egress_id, size=2048, duration_ns=5_000_000_000)
    assert done.status == api.EGRESS_COMPLETE
    result = done.file_results[0]
    assert result.filename == "recordings/meeting-take1.ogg"
    assert result.location == "http://127.0.0.1:9000/media/recordings/meeting-take1.ogg"
    assert (result.size, result.duration) == (2048, 5_000_000_000)
    assert done.file.filename == result.filename, "the legacy single-file result is filled too"

    listed = call(lk, lambda c: c.egress.list_egress(api.ListEgressRequest(egress_id=started.egress_id)))
    assert listed.items[0].status == api.EGRESS_COMPLETE
    assert listed.items[0].file_results[0].size == 2048
    still_active = call(lk, lambda c: c.egress.list_egress(api.ListEgressRequest(active=True)))
    assert list(still_active.items) == []

    unknown = error_of(lk, lambda c: c.egress.stop_egress(api.StopEgressRequest(egress_id="EG_nope")))
    assert (unknown.code, unknown.status, unknown.message) == ("not_found", 404, "egress does not exist")
    no_room = error_of(
        lk,
        lambda c: c.egress.start_room_composite_egress(
            api.RoomCompositeEgressRequest(room_name="ghost", file=api.EncodedFileOutput(filepath="x.mp4"))
        ),
    )
    assert no_room.code == "not_found"


def test_fail_egress(lk: LiveKitStandIn) -> None:
    lk.add_room("r")
    started = call(
        lk,
        lambda c: c.egress.start_room_composite_egress(
            api.RoomCompositeEgressRequest(room_name="r", file=api.EncodedFileOutput(filepath="r.mp4"))
        ),
    )
    failed = lk.fail_egress(started.egress_id, "upload failed")
    assert (failed.status, failed.error) == (api.EGRESS_FAILED, "upload failed")
    listed = call(lk, lambda c: c.egress.list_egress(api.ListEgressRequest(room_name="r")))
    assert listed.items[0].error == "upload failed"


# ---------------------------------------------------------------------------- ingress


def test_ingress_create_list_delete(lk: LiveKitStandIn) -> None:
    rtmp = call(
        lk,
        lambda c: c.ingress.create_ingress(
            api.CreateIngressRequest(
                input_type=api.RTMP_INPUT, name="obs", room_name="stage", participant_identity="streamer"
            )
        ),
    )
    assert rtmp.ingress_id.startswith("IN_")
    assert rtmp.url == lk.rtmp_base_url
    assert len(rtmp.stream_key) == 12
    assert (rtmp.reusable, rtmp.enable_transcoding) == (True, True)
    whip = call(
        lk,
        lambda c: c.ingress.create_ingress(
            api.CreateIngressRequest(input_type=api.WHIP_INPUT, room_name="stage", participant_identity="browser")
        ),
    )
    assert whip.url == lk.whip_base_url
    assert (whip.bypass_transcoding, whip.enable_transcoding) == (True, False)
    assert lk.calls_to("CreateIngress")[0].claims.video.ingress_admin

    listed = call(lk, lambda c: c.ingress.list_ingress(api.ListIngressRequest(room_name="stage")))
    assert {i.ingress_id for i in listed.items} == {rtmp.ingress_id, whip.ingress_id}

    deleted = call(lk, lambda c: c.ingress.delete_ingress(api.DeleteIngressRequest(ingress_id=rtmp.ingress_id)))
    assert deleted.ingress_id == rtmp.ingress_id
    gone = error_of(lk, lambda c: c.ingress.delete_ingress(api.DeleteIngressRequest(ingress_id=rtmp.ingress_id)))
    assert (gone.code, gone.message) == ("not_found", "ingress does not exist")

    anonymous = error_of(
        lk, lambda c: c.ingress.create_ingress(api.CreateIngressRequest(input_type=api.RTMP_INPUT, room_name="stage"))
    )
    assert (anonymous.code, anonymous.status) == ("invalid_argument", 400)


# ---------------------------------------------------------------------------- agent dispatch


def test_agent_dispatch_create_list_delete(lk: LiveKitStandIn) -> None:
    lk.add_room("call")
    dispatch = call(
        lk,
        lambda c: c.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="stt-live", room="call", metadata='{"language":"en"}')
        ),
    )
    assert dispatch.id.startswith("AD_")
    assert (dispatch.agent_name, dispatch.room, dispatch.metadata) == ("stt-live", "call", '{"language":"en"}')

    listed = call(lk, lambda c: c.agent_dispatch.list_dispatch("call"))
    assert [d.id for d in listed] == [dispatch.id]
    assert call(lk, lambda c: c.agent_dispatch.get_dispatch(dispatch.id, "call")).agent_name == "stt-live"
    claims = lk.calls_to("CreateDispatch")[0].claims
    assert (claims.video.room_admin, claims.video.room) == (True, "call")

    deleted = call(lk, lambda c: c.agent_dispatch.delete_dispatch(dispatch.id, "call"))
    assert deleted.state.deleted_at > 0
    assert call(lk, lambda c: c.agent_dispatch.list_dispatch("call")) == []

    # livekit-server (room.auto_create) creates the room a dispatch names; listing needs the room.
    absent = error_of(lk, lambda c: c.agent_dispatch.list_dispatch("ghost"))
    assert (absent.code, absent.status) == ("unavailable", 503)
    early = call(
        lk,
        lambda c: c.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="stt-live", room="ghost")),
    )
    assert lk.get_room("ghost") is not None
    assert [d.id for d in call(lk, lambda c: c.agent_dispatch.list_dispatch("ghost"))] == [early.id]


# ---------------------------------------------------------------------------- authentication and grants


def test_wrong_secret_is_refused_before_twirp(lk: LiveKitStandIn) -> None:
    """livekit-server's auth middleware answers a bad signature with plain-text 401, so the client's
    error has no Twirp code: livekit-api reports code "unknown" and status 401."""
    refused = error_of(
        lk, lambda c: c.room.list_rooms(api.ListRoomsRequest()), secret="not-the-secret-not-the-secret-000"
    )
    assert (refused.code, refused.status) == ("unknown", 401)
    wrong_key = error_of(lk, lambda c: c.room.list_rooms(api.ListRoomsRequest()), key="APIother")
    assert (wrong_key.code, wrong_key.status) == ("unknown", 401)

    raw = raw_post(lk, "/twirp/livekit.RoomService/ListRooms", b"", "not.a.jwt", PROTOBUF)
    assert raw.status_code == 401
    assert raw.headers["Content-Type"].startswith("text/plain")
    assert raw.text == "invalid authorization token"
    assert (lk.calls[-1].status, lk.calls[-1].claims) == (401, None)


def test_missing_grant_is_unauthenticated_permissions_denied(lk: LiveKitStandIn) -> None:
    lk.add_room("a")
    lister = token_with(room_list=True)
    body = api.CreateRoomRequest(name="x").SerializeToString()
    raw = raw_post(lk, "/twirp/livekit.RoomService/CreateRoom", body, lister, PROTOBUF)
    assert raw.status_code == 401
    assert raw.json() == {"code": "unauthenticated", "msg": "permissions denied"}

    # The same through livekit-api with a pre-signed token: a TwirpError with the Twirp code.
    async def create(token: str) -> Any:
        async with api.LiveKitAPI.with_token(token, lk.url, failover=False) as client:
            return await client.room.create_room(api.CreateRoomRequest(name="x"))

    with pytest.raises(api.TwirpError) as raised:
        asyncio.run(create(lister))
    assert (raised.value.code, raised.value.status, raised.value.message) == (
        "unauthenticated",
        401,
        "permissions denied",
    )
    assert lk.get_room("x") is None

    # roomAdmin only counts for the room named in the token.
    other_room = token_with(room_admin=True, room="b")
    listing = api.ListParticipantsRequest(room="a").SerializeToString()
    denied = raw_post(lk, "/twirp/livekit.RoomService/ListParticipants", listing, other_room, PROTOBUF)
    assert (denied.status_code, denied.json()["code"]) == (401, "unauthenticated")
    allowed = raw_post(
        lk, "/twirp/livekit.RoomService/ListParticipants", listing, token_with(room_admin=True, room="a"), PROTOBUF
    )
    assert allowed.status_code == 200

    # No Authorization header at all reaches Twirp without grants.
    anonymous = raw_post(lk, "/twirp/livekit.RoomService/ListRooms", b"", None, PROTOBUF)
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
    for method, grants in [
        ("Egress/ListEgress", {"room_list": True}),
        ("Ingress/ListIngress", {"room_record": True}),
        ("RoomService/ListRooms", {"room_create": True}),
    ]:
        refused = raw_post(lk, f"/twirp/livekit.{method}", b"", token_with(**grants), PROTOBUF)
        assert refused.status_code == 401, method


# ---------------------------------------------------------------------------- wire details


def test_json_encoding_is_served_too(lk: LiveKitStandIn) -> None:
    token = token_with(room_create=True)
    created = raw_post(
        lk,
        "/twirp/livekit.RoomService/CreateRoom",
        json.dumps({"name": "j", "emptyTimeout": 30}).encode(),
        token,
        "application/json",
    )
    assert created.status_code == 200
    assert created.headers["Content-Type"] == "application/json"
    body = created.json()
    assert (body["name"], body["empty_timeout"], body["metadata"]) == ("j", 30, "")
    assert lk.calls[-1].encoding == "application/json"

    missing = raw_post(
        lk, "/twirp/livekit.RoomService/DeleteRoom", json.dumps({"room": "nope"}).encode(), token, "application/json"
    )
    assert missing.status_code == 404
    assert missing.json() == {"code": "not_found", "msg": "requested room does not exist"}


def test_routes_and_unsimulated_methods(lk: LiveKitStandIn) -> None:
    token = token_with(room_admin=True, room="r")
    unknown = raw_post(lk, "/twirp/livekit.RoomService/Nope", b"", token, PROTOBUF)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "bad_route")
    wrong_type = raw_post(lk, "/twirp/livekit.RoomService/ListRooms", b"", token, "text/plain")
    assert (wrong_type.status_code, wrong_type.json()["code"]) == (404, "bad_route")
    assert requests.get(lk.url + "/", timeout=5).text == "OK"

    unsimulated = error_of(
        lk,
        lambda c: c.room.update_subscriptions(
            api.UpdateSubscriptionsRequest(room="r", identity="x", track_sids=["TR_1"])
        ),
    )
    assert (unsimulated.code, unsimulated.status) == ("unimplemented", 501)
    assert "stand-in" in unsimulated.message


def test_fail_next_injects_an_error(lk: LiveKitStandIn) -> None:
    lk.fail_next("ListRooms", "unavailable", "node draining")
    failed = error_of(lk, lambda c: c.room.list_rooms(api.ListRoomsRequest()))
    assert (failed.code, failed.status, failed.message) == ("unavailable", 503, "node draining")
    assert call(lk, lambda c: c.room.list_rooms(api.ListRoomsRequest())).rooms == []


def test_stopped_standin_is_unreachable_and_can_come_back(lk: LiveKitStandIn) -> None:
    lk.add_room("kept")
    url = lk.url
    lk.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        call(lk, lambda c: c.room.list_rooms(api.ListRoomsRequest()))
    lk.start()
    assert lk.url == url
    assert [r.name for r in call(lk, lambda c: c.room.list_rooms(api.ListRoomsRequest())).rooms] == ["kept"]


def test_slow_standin_and_client_timeouts(lk: LiveKitStandIn) -> None:
    """livekit-api 1.2.2 passes ``timeout=None`` to aiohttp on every request, which turns the session's
    ClientTimeout off: only an asyncio timeout around the call bounds a slow LiveKit."""
    lk.delay_seconds = 0.6
    assert call(lk, lambda c: c.room.list_rooms(api.ListRoomsRequest()), timeout=0.1).rooms == []

    async def bounded(client: api.LiveKitAPI) -> Any:
        async with asyncio.timeout(0.1):
            return await client.room.list_rooms(api.ListRoomsRequest())

    with pytest.raises(TimeoutError):
        call(lk, bounded)


# ---------------------------------------------------------------------------- webhooks


@pytest.fixture
def receiver(receiver_factory: Callable[..., Receiver]) -> Receiver:
    return receiver_factory([200])


def received(receiver: Receiver) -> list[tuple[dict[str, str], bytes]]:
    """Each POST's headers (names lowercased) and body, in order."""
    return [(request["headers"], request["body"]) for request in receiver.requests]


def verify(headers: dict[str, str], body: bytes, secret: str = SECRET) -> api.WebhookEvent:
    return api.WebhookReceiver(api.TokenVerifier(KEY, secret)).receive(body.decode(), headers["authorization"])


def test_webhooks_verify_with_livekit_apis_receiver(lk: LiveKitStandIn, receiver: Receiver) -> None:
    lk.webhook_url = receiver.url
    lk.add_room("weekly", metadata='{"title":"Réunion"}')
    lk.add_participant("weekly", "alice", name="Alice", tracks=["audio"])

    delivery = lk.room_started("weekly")
    assert delivery.status == 200
    headers, body = received(receiver)[-1]
    assert headers["content-type"] == WEBHOOK_CONTENT_TYPE
    assert not headers["authorization"].startswith("Bearer "), "LiveKit sends the bare JWT"
    assert body.decode() == delivery.body
    event = verify(headers, body)
    assert (event.event, event.room.name, event.room.metadata) == ("room_started", "weekly", '{"title":"Réunion"}')
    assert event.id.startswith("EV_")
    assert event.created_at > 0
    assert json.loads(body)["room"]["name"] == "weekly", "protobuf JSON with camelCase names"

    lk.participant_joined("weekly", "alice")
    joined = verify(*received(receiver)[-1])
    assert (joined.event, joined.participant.identity, joined.participant.name) == (
        "participant_joined",
        "alice",
        "Alice",
    )

    lk.remove_participant("weekly", "alice")
    lk.participant_left("weekly", "alice")
    left = verify(*received(receiver)[-1])
    assert left.participant.disconnect_reason == models.DisconnectReason.CLIENT_INITIATED

    call(lk, lambda c: c.room.delete_room(api.DeleteRoomRequest(room="weekly")))
    lk.room_finished("weekly")
    finished = verify(*received(receiver)[-1])
    assert (finished.event, finished.room.sid) == ("room_finished", lk.ended_rooms["weekly"].sid)
    assert finished.room_end_reason == models.ROOM_END_API_DELETE


def test_egress_webhooks_carry_the_file_results(lk: LiveKitStandIn, receiver: Receiver) -> None:
    lk.add_room("rec")
    started = call(
        lk,
        lambda c: c.egress.start_room_composite_egress(
            api.RoomCompositeEgressRequest(
                room_name="rec", file=api.EncodedFileOutput(filepath="rec.mp4", s3=api.S3Upload(bucket="b"))
            )
        ),
    )
    lk.egress_started(started.egress_id, url=receiver.url)
    assert verify(*received(receiver)[-1]).egress_info.status == api.EGRESS_ACTIVE

    lk.finish_egress(started.egress_id, size=999, location="s3://b/rec.mp4")
    lk.egress_ended(started.egress_id, url=receiver.url)
    ended = verify(*received(receiver)[-1])
    assert ended.event == "egress_ended"
    assert ended.egress_info.egress_id == started.egress_id
    assert ended.egress_info.status == api.EGRESS_COMPLETE
    assert (ended.egress_info.file_results[0].location, ended.egress_info.file_results[0].size) == (
        "s3://b/rec.mp4",
        999,
    )


def test_forged_webhook_fails_verification(lk: LiveKitStandIn, receiver: Receiver) -> None:
    lk.add_room("r")
    lk.room_started("r", url=receiver.url, api_secret="forger-secret-forger-secret-forger-00")
    headers, body = received(receiver)[-1]
    with pytest.raises(Exception, match="Signature verification failed"):
        verify(headers, body)

    # A body changed after signing: the signature verifies, the sha256 claim does not match.
    genuine = lk.room_started("r", url=receiver.url)
    tampered = genuine.body.replace('"r"', '"s"')
    with pytest.raises(Exception, match="hash mismatch"):
        api.WebhookReceiver(api.TokenVerifier(KEY, SECRET)).receive(tampered, genuine.authorization)

    lk.send_webhook(receiver.url, "room_started", room=lk.get_room("r"), authorization="")
    assert "authorization" not in received(receiver)[-1][0]


def test_replayed_webhook_has_the_same_id_and_body(
    lk: LiveKitStandIn, receiver_factory: Callable[..., Receiver]
) -> None:
    receiver = receiver_factory([500, 200])
    lk.add_room("r")
    first = lk.room_started("r", url=receiver.url)
    assert first.status == 500
    retry = lk.resend_webhook(first)
    assert retry.status == 200
    (h1, b1), (h2, b2) = received(receiver)
    assert b1 == b2
    assert h1["authorization"] == h2["authorization"]
    assert verify(h1, b1).id == verify(h2, b2).id == first.event.id

    same_id = lk.send_webhook(receiver.url, "room_started", id=first.event.id, room=lk.get_room("r"))
    assert verify(*received(receiver)[-1]).id == first.event.id
    assert same_id.event.id == first.event.id
    assert len(lk.webhooks_sent) == 3
