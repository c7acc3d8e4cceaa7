"""Rooms, participants and ingress through the real livekit-api client against the LiveKit stand-in."""

import pytest

from apps.rooms.models import Room
from tests.conftest import SignedClient, problem


def kind(response) -> str:
    return problem(response)["type"].rsplit("/", 1)[-1]


def test_create_room(api: SignedClient, livekit) -> None:
    response = api.post_json("/v1/rooms", {"name": "standup", "maxParticipants": 8, "emptyTimeout": 120,
                                           "metadata": {"team": "core"}})  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["roomId"] == "standup"
    assert body["maxParticipants"] == 8
    assert body["emptyTimeout"] == 120
    assert body["metadata"] == '{"team":"core"}'
    assert livekit.get_room("standup").max_participants == 8
    call = livekit.calls_to("CreateRoom")[0]
    assert call.claims.video.room_create is True
    room = Room.objects.get(name="standup")
    assert room.origin == Room.Origin.API
    assert room.sid == body["sid"]


def test_list_rooms_is_paginated(api: SignedClient, livekit) -> None:
    for name in ("a", "b", "c"):
        livekit.add_room(name)
    response = api.send("GET", "/v1/rooms?limit=2")
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 3
    assert len(body["rooms"]) == 2
    assert body["limit"] == 2
    assert api.send("GET", "/v1/rooms?limit=0").status_code == 400


def test_room_details_and_unknown_room(api: SignedClient, livekit) -> None:
    livekit.add_room("standup")
    livekit.add_participant("standup", "alice", name="Alice")
    details = api.send("GET", "/v1/rooms/standup").json()
    assert details["roomId"] == "standup"
    assert details["numParticipants"] == 1
    assert details["sessions"] == []
    missing = api.send("GET", "/v1/rooms/nope")
    assert missing.status_code == 404
    assert "nope" in problem(missing)["detail"]


def test_close_room(api: SignedClient, livekit) -> None:
    api.post_json("/v1/rooms", {"name": "standup"})
    response = api.send("DELETE", "/v1/rooms/standup")
    assert response.status_code == 200
    assert livekit.get_room("standup") is None
    assert Room.objects.get(name="standup").closed_at is not None
    assert api.send("DELETE", "/v1/rooms/standup").status_code == 404


def test_participants_list_kick_and_mute(api: SignedClient, livekit) -> None:
    livekit.add_participant("standup", "alice", name="Alice", tracks=["audio", "video"])
    livekit.add_participant("standup", "bob", name="Bob")
    listed = api.send("GET", "/v1/rooms/standup/participants").json()
    assert listed["total"] == 2
    alice = next(p for p in listed["participants"] if p["participantId"] == "alice")
    assert alice["name"] == "Alice"
    assert {t["type"] for t in alice["tracks"]} == {"audio", "video"}
    audio = next(t for t in alice["tracks"] if t["type"] == "audio")

    muted = api.post_json("/v1/rooms/standup/participants/alice/mute", {"trackSid": audio["trackSid"]})
    assert muted.status_code == 200, muted.content
    assert muted.json()["track"]["muted"] is True
    assert next(t for t in livekit.get_participant("standup", "alice").tracks if t.sid == audio["trackSid"]).muted

    kicked = api.send("DELETE", "/v1/rooms/standup/participants/bob")
    assert kicked.status_code == 200
    assert livekit.get_participant("standup", "bob") is None
    assert api.send("DELETE", "/v1/rooms/standup/participants/bob").status_code == 404


def test_participant_errors(api: SignedClient, livekit) -> None:
    livekit.add_participant("standup", "alice", tracks=["audio"])
    assert api.send("GET", "/v1/rooms/nope/participants").status_code == 404
    unknown_track = api.post_json("/v1/rooms/standup/participants/alice/mute", {"trackSid": "TR_nope"})
    assert unknown_track.status_code == 404
    unknown_person = api.post_json("/v1/rooms/standup/participants/zed/mute", {"trackSid": "TR_x"})
    assert unknown_person.status_code == 404
    bad_body = api.post_json("/v1/rooms/standup/participants/alice/mute", {"muted": "perhaps"})
    assert bad_body.status_code == 400
    assert set(problem(bad_body)["errors"]) == {"trackSid", "muted"}


def test_remote_unmute_refused_by_livekit_is_a_409(api: SignedClient, livekit) -> None:
    livekit.add_participant("standup", "alice", tracks=["audio"])
    track = livekit.get_participant("standup", "alice").tracks[0].sid
    response = api.post_json("/v1/rooms/standup/participants/alice/mute", {"trackSid": track, "muted": False})
    assert response.status_code == 409
    assert "unmute" in problem(response)["detail"]


@pytest.mark.parametrize("input_type", ["rtmp", "whip"])
def test_ingress_create_list_delete(api: SignedClient, livekit, input_type: str) -> None:
    livekit.add_room("stage")
    created = api.post_json("/v1/rooms/stage/ingress", {"type": input_type, "participantId": "obs", "name": "OBS"})
    assert created.status_code == 201, created.content
    ingress = created.json()
    assert ingress["type"] == input_type
    assert ingress["url"]
    assert ingress["roomId"] == "stage"
    listed = api.send("GET", "/v1/rooms/stage/ingress").json()
    assert [i["ingressId"] for i in listed["ingresses"]] == [ingress["ingressId"]]
    assert api.send("DELETE", f"/v1/rooms/stage/ingress/{ingress['ingressId']}").status_code == 200
    assert api.send("GET", "/v1/rooms/stage/ingress").json()["total"] == 0
    assert api.send("DELETE", f"/v1/rooms/stage/ingress/{ingress['ingressId']}").status_code == 404


def test_ingress_bad_type(api: SignedClient, livekit) -> None:
    response = api.post_json("/v1/rooms/stage/ingress", {"type": "srt"})
    assert response.status_code == 400
    assert "type" in problem(response)["errors"]


def test_livekit_down_is_503(api: SignedClient, livekit) -> None:
    livekit.stop()
    response = api.send("GET", "/v1/rooms")
    assert response.status_code == 503
    assert kind(response) == "livekit-unavailable"
    assert "unreachable" in problem(response)["detail"]


def test_livekit_slow_is_503_after_the_timeout(api: SignedClient, livekit, settings) -> None:
    settings.LIVEKIT_TIMEOUT_SECONDS = 1
    livekit.delay_seconds = 3
    response = api.send("GET", "/v1/rooms")
    assert response.status_code == 503
    assert "did not answer within 1 s" in problem(response)["detail"]


def test_livekit_not_configured_is_503(api: SignedClient, livekit, settings) -> None:
    settings.LIVEKIT_URL = ""
    response = api.send("GET", "/v1/rooms")
    assert response.status_code == 503
    assert "LIVEKIT_URL" in problem(response)["detail"]


def test_wrong_livekit_credentials_are_a_502(api: SignedClient, livekit, settings) -> None:
    settings.LIVEKIT_API_SECRET = "not-the-livekit-secret-at-all-0123456789"
    response = api.send("GET", "/v1/rooms")
    assert response.status_code == 502
    assert "LIVEKIT_API_SECRET" in problem(response)["detail"]


def test_livekit_internal_error_is_a_502(api: SignedClient, livekit) -> None:
    livekit.fail_next("ListRooms", "internal", "database on fire")
    response = api.send("GET", "/v1/rooms")
    assert response.status_code == 502
    assert "database on fire" in problem(response)["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/rooms"), ("POST", "/v1/rooms"), ("GET", "/v1/rooms/x/participants"), ("GET", "/v1/rooms/x/ingress")],
)
def test_rooms_need_the_rooms_scope(make_key, livekit, method: str, path: str) -> None:
    response = SignedClient(make_key(scopes=("token",))).send(method, path, b"{}" if method == "POST" else b"")
    assert response.status_code == 403
    assert kind(response) == "insufficient-scope"


def test_create_room_validation(api: SignedClient, livekit) -> None:
    response = api.post_json("/v1/rooms", {"maxParticipants": 0})
    assert response.status_code == 400
    assert set(problem(response)["errors"]) == {"name", "maxParticipants"}
    assert livekit.calls == []
